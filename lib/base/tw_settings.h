/* tw_settings: a binary's configuration declared as one table.
 *
 * Each row names a setting, where it comes from (an environment variable,
 * a --flag, or both), its type, its default in text form, its help text and
 * where it lives in the binary's config struct (offsetof). tw_settings_load
 * applies, in order, the defaults, the environment and the command line, so
 * flags override environment variables, which override defaults. Every
 * source goes through the same parser, so a default is written exactly like
 * a user would write it.
 *
 * Field types and accepted text:
 *   TW_SET_STRING       char *   any text; malloc'd, owned by the config
 *   TW_SET_INT          int64_t  decimal integer, optional sign
 *   TW_SET_BOOL         int      true/false, 1/0, yes/no, on/off (any case)
 *   TW_SET_DURATION_MS  int64_t  milliseconds: "250ms", "5s", "2m", "1h";
 *                                a bare number means milliseconds
 *   TW_SET_SIZE         int64_t  bytes: binary IEC suffixes only, "512KiB",
 *                                "4MiB", "1GiB", "1TiB", or "B"; a bare number
 *                                means bytes. SI-looking suffixes ("4MB",
 *                                "4M") are REJECTED because readers disagree
 *                                on whether they mean 10^6 or 2^20.
 *   TW_SET_ENUM         int      index into `choices` (case-insensitive)
 * Durations and sizes are non-negative integers (no fractions).
 *
 * Flags: "--name VALUE" or "--name=VALUE". Booleans take no separate value:
 * "--name" sets true, "--name=false" or "--no-name" sets false. "--help"
 * ("-h") and "--version" are built in; "--" ends option parsing. Unknown
 * flags and positional arguments are errors. */
#ifndef TW_SETTINGS_H
#define TW_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    TW_SET_STRING,
    TW_SET_INT,
    TW_SET_BOOL,
    TW_SET_DURATION_MS,
    TW_SET_SIZE,
    TW_SET_ENUM,
} tw_setting_type;

typedef struct tw_setting {
    const char *name;  /* "listen": used in messages and dumps */
    const char *env;   /* "TIDEWATCH_LISTEN", or NULL */
    const char *flag;  /* "listen" for --listen; NULL = environment only */
    tw_setting_type type;
    const char *def;   /* default as text; NULL = unset (NULL string, 0) */
    const char *help;
    size_t offset;     /* offsetof(config struct, field) */
    int64_t min, max;  /* inclusive bounds for INT/DURATION/SIZE when min < max */
    const char *const *choices; /* ENUM: NULL-terminated names */
    int reloadable;    /* shown in --help */
    int secret;        /* value hidden in tw_settings_dump (passwords, URLs) */
    /* Optional extra validation of the raw text after the type parsed:
     * return 0 if fine, else -1 with what was expected in why (e.g.
     * tw_hostport_check). */
    int (*check)(const char *text, char *why, size_t whylen);
} tw_setting;

/* How the binary describes itself, and the injectable environment. */
typedef struct tw_settings_about {
    const char *program; /* "tidewatch-ingest"; NULL: argv[0] */
    const char *summary; /* one line for --help; may be NULL */
    const char *version; /* for --version; NULL: the build's TW_VERSION */
    /* Environment lookup; NULL uses getenv. Tests pass a fake so the
     * process environment stays untouched. */
    const char *(*getenv_fn)(void *arg, const char *name);
    void *getenv_arg;
    FILE *out; /* where --help/--version print; NULL: stdout */
} tw_settings_about;

/* Fill `cfg` from the table: defaults, then the environment, then argv[1..]
 * (flags win). `about` may be NULL.
 *
 * `cfg` must be zeroed or previously loaded with the same table: string
 * fields are freed before being replaced. Whatever the result, the caller
 * eventually calls tw_settings_free to release the strings.
 *
 * Returns 0 on success; 1 when --help or --version was found anywhere
 * before "--" (the text went to about->out and nothing else was parsed; the
 * caller exits 0); -1 on error with a message in err naming the setting and
 * its source, e.g.
 *   invalid value "abc" for port (from TIDEWATCH_PORT): expected an integer between 1 and 65535
 * On error cfg may hold a mix of old and new values. */
int tw_settings_load(const tw_setting *table, size_t n, void *cfg, int argc, char **argv,
                     const tw_settings_about *about, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Parse one setting's text (as from any source) and store it into cfg.
 * Returns 0, or -1 with "expected ..." in why. The building block of
 * tw_settings_load, exposed for reload and tests. */
int tw_settings_set(const tw_setting *s, void *cfg, const char *text, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* Write the --help text for the table to `out`. */
void tw_settings_help(const tw_setting *table, size_t n, const tw_settings_about *about,
                      FILE *out);

/* A one-line "name=value name=value ..." rendering of cfg for debug logs.
 * Strings are quoted, durations and sizes use the largest exact unit, ENUMs
 * their name, secrets print as "***" (or "" when unset). Returns a malloc'd
 * string, or NULL on ENOMEM. */
char *tw_settings_dump(const tw_setting *table, size_t n, const void *cfg)
    __attribute__((warn_unused_result));

/* Free the string fields of cfg and set them to NULL. */
void tw_settings_free(const tw_setting *table, size_t n, void *cfg);

/* The parsers behind the types, for code that reads such values elsewhere.
 * Each returns 0 and sets *out, or -1 for malformed/out-of-range text. */
int tw_settings_parse_bool(const char *s, int *out) __attribute__((warn_unused_result));
int tw_settings_parse_duration_ms(const char *s, int64_t *out) __attribute__((warn_unused_result));
int tw_settings_parse_size(const char *s, int64_t *out) __attribute__((warn_unused_result));

#endif
