#include "tw_settings.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef TW_VERSION
#define TW_VERSION "unknown"
#endif

/* ---- Field access ----------------------------------------------------- */

static void *field(const tw_setting *s, void *cfg)
{
    return (char *)cfg + s->offset;
}

static const void *cfield(const tw_setting *s, const void *cfg)
{
    return (const char *)cfg + s->offset;
}

/* ---- Parsers ----------------------------------------------------------- */

/* Strict decimal: optional sign (if allow_sign), digits, then the rest is
 * returned in *end. No whitespace anywhere. */
static int parse_digits(const char *s, int allow_sign, int64_t *out, const char **end)
{
    const char *p = s;
    int neg = 0;
    if (allow_sign && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (*p < '0' || *p > '9')
        return -1;
    uint64_t v = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    *end = p;
    return 0;
}

static int parse_int(const char *s, int64_t *out)
{
    const char *end;
    if (parse_digits(s, 1, out, &end) != 0 || *end)
        return -1;
    return 0;
}

int tw_settings_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

typedef struct unit {
    const char *suffix;
    int64_t mult;
} unit;

static const unit duration_units[] = {
    {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}, {NULL, 0}};
static const unit size_units[] = {{"TiB", INT64_C(1) << 40},
                                  {"GiB", INT64_C(1) << 30},
                                  {"MiB", INT64_C(1) << 20},
                                  {"KiB", INT64_C(1) << 10},
                                  {"B", 1},
                                  {NULL, 0}};

/* Non-negative integer with an optional unit from `units` (bare = 1). */
static int parse_with_unit(const char *s, const unit *units, int case_insensitive, int64_t *out)
{
    const char *end;
    int64_t v;
    if (!s || parse_digits(s, 0, &v, &end) != 0)
        return -1;
    int64_t mult = 1;
    if (*end) {
        const unit *u = units;
        for (; u->suffix; u++) {
            if (case_insensitive ? strcasecmp(end, u->suffix) == 0 : strcmp(end, u->suffix) == 0)
                break;
        }
        if (!u->suffix)
            return -1;
        mult = u->mult;
    }
    if (v > INT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

int tw_settings_parse_duration_ms(const char *s, int64_t *out)
{
    return parse_with_unit(s, duration_units, 0, out);
}

int tw_settings_parse_size(const char *s, int64_t *out)
{
    return parse_with_unit(s, size_units, 1, out);
}

/* Largest unit dividing v exactly ("2m", "4MiB"); the last unit is 1. */
static void format_with_unit(int64_t v, const unit *units, char *buf, size_t len)
{
    const unit *u = units;
    if (v != 0) {
        while (u[1].suffix && v % u->mult != 0)
            u++;
    } else {
        while (u[1].suffix)
            u++;
    }
    snprintf(buf, len, "%" PRId64 "%s", v / u->mult, u->suffix);
}

static int has_bounds(const tw_setting *s)
{
    return s->min < s->max;
}

static void format_number(const tw_setting *s, int64_t v, char *buf, size_t len)
{
    if (s->type == TW_SET_DURATION_MS)
        format_with_unit(v, duration_units, buf, len);
    else if (s->type == TW_SET_SIZE)
        format_with_unit(v, size_units, buf, len);
    else
        snprintf(buf, len, "%" PRId64, v);
}

/* "expected ..." for a setting's type, written into why. */
static void expectation(const tw_setting *s, char *why, size_t whylen)
{
    char lo[32], hi[32], range[80] = "";
    if (has_bounds(s) && s->type != TW_SET_ENUM && s->type != TW_SET_BOOL) {
        format_number(s, s->min, lo, sizeof lo);
        format_number(s, s->max, hi, sizeof hi);
        snprintf(range, sizeof range, " between %s and %s", lo, hi);
    }
    switch (s->type) {
    case TW_SET_STRING:
        snprintf(why, whylen, "expected text");
        break;
    case TW_SET_INT:
        snprintf(why, whylen, "expected an integer%s", range);
        break;
    case TW_SET_BOOL:
        snprintf(why, whylen, "expected true or false (or 1/0, yes/no, on/off)");
        break;
    case TW_SET_DURATION_MS:
        if (range[0])
            snprintf(why, whylen,
                     "expected a duration%s (units ms, s, m, h; a bare number means "
                     "milliseconds)",
                     range);
        else
            snprintf(why, whylen, "expected a duration such as 250ms, 5s, 2m or 1h (a bare "
                                  "number means milliseconds)");
        break;
    case TW_SET_SIZE:
        if (range[0])
            snprintf(why, whylen,
                     "expected a size%s (units B, KiB, MiB, GiB, TiB; a bare number means "
                     "bytes)",
                     range);
        else
            snprintf(why, whylen, "expected a size such as 512KiB, 4MiB or 1GiB (binary "
                                  "suffixes only; a bare number means bytes)");
        break;
    case TW_SET_ENUM: {
        size_t off = (size_t)snprintf(why, whylen, "expected one of:");
        for (size_t i = 0; s->choices && s->choices[i] && off < whylen; i++)
            off += (size_t)snprintf(why + off, whylen - off, "%s %s", i ? "," : "", s->choices[i]);
        break;
    }
    }
}

int tw_settings_set(const tw_setting *s, void *cfg, const char *text, char *why, size_t whylen)
{
    char dummy[8];
    if (!why || whylen == 0) {
        why = dummy;
        whylen = sizeof dummy;
    }
    why[0] = '\0';
    if (!text) {
        expectation(s, why, whylen);
        return -1;
    }
    int64_t num = 0;
    int ival = 0;
    switch (s->type) {
    case TW_SET_STRING:
        break;
    case TW_SET_INT:
        if (parse_int(text, &num) != 0)
            goto bad;
        break;
    case TW_SET_DURATION_MS:
        if (tw_settings_parse_duration_ms(text, &num) != 0)
            goto bad;
        break;
    case TW_SET_SIZE:
        if (tw_settings_parse_size(text, &num) != 0)
            goto bad;
        break;
    case TW_SET_BOOL:
        if (tw_settings_parse_bool(text, &ival) != 0)
            goto bad;
        break;
    case TW_SET_ENUM:
        ival = -1;
        for (int i = 0; s->choices && s->choices[i]; i++) {
            if (strcasecmp(text, s->choices[i]) == 0) {
                ival = i;
                break;
            }
        }
        if (ival < 0)
            goto bad;
        break;
    default:
        snprintf(why, whylen, "unknown setting type %d", (int)s->type);
        return -1;
    }
    if ((s->type == TW_SET_INT || s->type == TW_SET_DURATION_MS || s->type == TW_SET_SIZE) &&
        has_bounds(s) && (num < s->min || num > s->max))
        goto bad;
    if (s->check && s->check(text, why, whylen) != 0) {
        if (!why[0])
            expectation(s, why, whylen);
        else if (strncmp(why, "expected", 8) != 0) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "expected %s", why);
            snprintf(why, whylen, "%s", tmp);
        }
        return -1;
    }
    switch (s->type) {
    case TW_SET_STRING: {
        char *copy = strdup(text);
        if (!copy) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        char **slot = field(s, cfg);
        free(*slot);
        *slot = copy;
        break;
    }
    case TW_SET_INT:
    case TW_SET_DURATION_MS:
    case TW_SET_SIZE:
        *(int64_t *)field(s, cfg) = num;
        break;
    case TW_SET_BOOL:
    case TW_SET_ENUM:
        *(int *)field(s, cfg) = ival;
        break;
    }
    return 0;
bad:
    expectation(s, why, whylen);
    return -1;
}

/* ---- Loading ----------------------------------------------------------- */

static void reset_field(const tw_setting *s, void *cfg)
{
    switch (s->type) {
    case TW_SET_STRING: {
        char **slot = field(s, cfg);
        free(*slot);
        *slot = NULL;
        break;
    }
    case TW_SET_INT:
    case TW_SET_DURATION_MS:
    case TW_SET_SIZE:
        *(int64_t *)field(s, cfg) = 0;
        break;
    case TW_SET_BOOL:
    case TW_SET_ENUM:
        *(int *)field(s, cfg) = 0;
        break;
    }
}

/* Apply text from `source` ("default", "TIDEWATCH_X", "--x"); on failure
 * write the full message into err and return -1. */
static int apply(const tw_setting *s, void *cfg, const char *text, const char *source, char *err,
                 size_t errlen)
{
    char why[256];
    if (tw_settings_set(s, cfg, text, why, sizeof why) == 0)
        return 0;
    if (s->secret)
        snprintf(err, errlen, "invalid value for %s (from %s): %s", s->name, source, why);
    else if (strlen(text) > 80)
        snprintf(err, errlen, "invalid value \"%.80s...\" for %s (from %s): %s", text, s->name,
                 source, why);
    else
        snprintf(err, errlen, "invalid value \"%s\" for %s (from %s): %s", text, s->name, source,
                 why);
    return -1;
}

static const char *default_getenv(void *arg, const char *name)
{
    (void)arg;
    return getenv(name);
}

static const char *program_name(const tw_settings_about *about, int argc, char **argv)
{
    if (about && about->program)
        return about->program;
    if (argc > 0 && argv && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        return slash ? slash + 1 : argv[0];
    }
    return "program";
}

static int check_table(const tw_setting *table, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const tw_setting *s = &table[i];
        const char *problem = NULL;
        if (!s->name)
            problem = "has no name";
        else if ((unsigned)s->type > TW_SET_ENUM)
            problem = "has an unknown type";
        else if (s->type == TW_SET_ENUM && (!s->choices || !s->choices[0]))
            problem = "is an enum without choices";
        else if (s->flag && (strcmp(s->flag, "help") == 0 || strcmp(s->flag, "version") == 0))
            problem = "uses a reserved flag";
        if (problem) {
            snprintf(err, errlen, "settings table: entry %zu (%s) %s", i,
                     s->name ? s->name : "?", problem);
            return -1;
        }
    }
    return 0;
}

static const tw_setting *find_flag(const tw_setting *table, size_t n, const char *name,
                                   size_t len)
{
    for (size_t i = 0; i < n; i++) {
        const char *f = table[i].flag;
        if (f && strlen(f) == len && memcmp(f, name, len) == 0)
            return &table[i];
    }
    return NULL;
}

int tw_settings_load(const tw_setting *table, size_t n, void *cfg, int argc, char **argv,
                     const tw_settings_about *about, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (check_table(table, n, err, errlen) != 0)
        return -1;

    /* --help and --version win over everything, even malformed input. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            tw_settings_about named = about ? *about : (tw_settings_about){0};
            named.program = program_name(about, argc, argv);
            tw_settings_help(table, n, &named, about && about->out ? about->out : stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            FILE *out = about && about->out ? about->out : stdout;
            fprintf(out, "%s %s\n", program_name(about, argc, argv),
                    about && about->version ? about->version : TW_VERSION);
            return 1;
        }
    }

    for (size_t i = 0; i < n; i++) {
        if (table[i].def) {
            if (apply(&table[i], cfg, table[i].def, "default", err, errlen) != 0)
                return -1;
        } else {
            reset_field(&table[i], cfg);
        }
    }

    const char *(*get)(void *, const char *) =
        about && about->getenv_fn ? about->getenv_fn : default_getenv;
    void *get_arg = about ? about->getenv_arg : NULL;
    for (size_t i = 0; i < n; i++) {
        if (!table[i].env)
            continue;
        const char *v = get(get_arg, table[i].env);
        if (v && apply(&table[i], cfg, v, table[i].env, err, errlen) != 0)
            return -1;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) {
                snprintf(err, errlen, "unexpected argument \"%s\"", argv[i + 1]);
                return -1;
            }
            break;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (a[0] == '-')
                snprintf(err, errlen, "unknown flag \"%s\" (flags start with --; see --help)", a);
            else
                snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const tw_setting *s = find_flag(table, n, name, len);
        const char *value = eq ? eq + 1 : NULL;
        if (!s && !eq && len > 3 && strncmp(name, "no-", 3) == 0) {
            s = find_flag(table, n, name + 3, len - 3);
            if (s && s->type != TW_SET_BOOL)
                s = NULL;
            else if (s)
                value = "false";
        }
        if (!s) {
            snprintf(err, errlen, "unknown flag \"--%.*s\" (see --help)", (int)len, name);
            return -1;
        }
        if (!value) {
            if (s->type == TW_SET_BOOL) {
                value = "true";
            } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                value = argv[++i];
            } else {
                snprintf(err, errlen, "missing value for --%s (%s)", s->flag, s->name);
                return -1;
            }
        }
        char source[128];
        snprintf(source, sizeof source, "--%s", s->flag);
        if (apply(s, cfg, value, source, err, errlen) != 0)
            return -1;
    }
    return 0;
}

void tw_settings_free(const tw_setting *table, size_t n, void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        if (table[i].type == TW_SET_STRING) {
            char **slot = field(&table[i], cfg);
            free(*slot);
            *slot = NULL;
        }
    }
}

/* ---- Help -------------------------------------------------------------- */

static void metavar(const tw_setting *s, char *buf, size_t len)
{
    static const char *const names[] = {"STRING", "INT", "[=BOOL]", "DURATION", "SIZE"};
    if (s->type == TW_SET_ENUM) {
        size_t off = (size_t)snprintf(buf, len, "{");
        for (size_t i = 0; s->choices[i] && off < len; i++)
            off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "|" : "", s->choices[i]);
        if (off < len)
            snprintf(buf + off, len - off, "}");
    } else {
        snprintf(buf, len, "%s", names[s->type]);
    }
}

static void left_column(const tw_setting *s, char *buf, size_t len)
{
    char mv[256];
    metavar(s, mv, sizeof mv);
    if (!s->flag)
        snprintf(buf, len, "(env only) %s", s->type == TW_SET_BOOL ? "BOOL" : mv);
    else if (s->type == TW_SET_BOOL)
        snprintf(buf, len, "--%s%s", s->flag, mv);
    else
        snprintf(buf, len, "--%s %s", s->flag, mv);
}

#define HELP_COL1_MAX 36
#define HELP_COL2_MAX 34

void tw_settings_help(const tw_setting *table, size_t n, const tw_settings_about *about, FILE *out)
{
    const char *prog = about && about->program ? about->program : "program";
    fprintf(out, "Usage: %s [OPTIONS]\n", prog);
    if (about && about->summary)
        fprintf(out, "%s\n", about->summary);
    fprintf(out, "\nSettings (command-line flags override environment variables, which override "
                 "defaults):\n\n");

    int w1 = (int)strlen("FLAG"), w2 = (int)strlen("ENVIRONMENT");
    int has_dur = 0, has_size = 0, has_bool = 0;
    char col1[320];
    for (size_t i = 0; i < n; i++) {
        left_column(&table[i], col1, sizeof col1);
        int l1 = (int)strlen(col1);
        if (l1 > w1 && l1 <= HELP_COL1_MAX)
            w1 = l1;
        int l2 = table[i].env ? (int)strlen(table[i].env) : 1;
        if (l2 > w2 && l2 <= HELP_COL2_MAX)
            w2 = l2;
        has_dur |= table[i].type == TW_SET_DURATION_MS;
        has_size |= table[i].type == TW_SET_SIZE;
        has_bool |= table[i].type == TW_SET_BOOL;
    }
    fprintf(out, "  %-*s  %-*s  %s\n", w1, "FLAG", w2, "ENVIRONMENT", "DEFAULT");
    for (size_t i = 0; i < n; i++) {
        const tw_setting *s = &table[i];
        left_column(s, col1, sizeof col1);
        if ((int)strlen(col1) > w1)
            fprintf(out, "  %s\n  %-*s", col1, w1, "");
        else
            fprintf(out, "  %-*s", w1, col1);
        const char *env = s->env ? s->env : "-";
        if ((int)strlen(env) > w2)
            fprintf(out, "  %s\n  %-*s  %-*s", env, w1, "", w2, "");
        else
            fprintf(out, "  %-*s", w2, env);
        if (!s->def)
            fprintf(out, "  (none)");
        else if (!s->def[0])
            fprintf(out, "  \"\"");
        else
            fprintf(out, "  %s", s->def);
        fprintf(out, "%s\n", s->reloadable ? "  [reloadable]" : "");
        fprintf(out, "      %s", s->help ? s->help : "");
        if (has_bounds(s) &&
            (s->type == TW_SET_INT || s->type == TW_SET_DURATION_MS || s->type == TW_SET_SIZE)) {
            char lo[32], hi[32];
            format_number(s, s->min, lo, sizeof lo);
            format_number(s, s->max, hi, sizeof hi);
            fprintf(out, "%sRange: %s to %s.", s->help && s->help[0] ? " " : "", lo, hi);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "  -h, --help\n      Show this help and exit.\n");
    fprintf(out, "  --version\n      Show the version and exit.\n");

    if (has_dur || has_size || has_bool)
        fprintf(out, "\n");
    if (has_dur)
        fprintf(out, "DURATION: 250ms, 5s, 2m, 1h; a bare number means milliseconds.\n");
    if (has_size)
        fprintf(out, "SIZE: 512KiB, 4MiB, 1GiB, 1TiB (binary units; MB/GB are rejected); a bare "
                     "number means bytes.\n");
    if (has_bool)
        fprintf(out, "BOOL: --flag sets true, --no-flag or --flag=false sets false; the "
                     "environment takes true/false, 1/0, yes/no, on/off.\n");
}

/* ---- Dump -------------------------------------------------------------- */

static void dump_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

char *tw_settings_dump(const tw_setting *table, size_t n, const void *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const tw_setting *s = &table[i];
        fprintf(f, "%s%s=", i ? " " : "", s->name);
        if (s->type == TW_SET_STRING) {
            const char *v = *(char *const *)cfield(s, cfg);
            if (s->secret)
                fputs(v && v[0] ? "***" : "\"\"", f);
            else
                dump_string(f, v ? v : "");
            continue;
        }
        if (s->secret) {
            fputs("***", f);
            continue;
        }
        char num[48];
        switch (s->type) {
        case TW_SET_INT:
        case TW_SET_DURATION_MS:
        case TW_SET_SIZE:
            format_number(s, *(const int64_t *)cfield(s, cfg), num, sizeof num);
            fputs(num, f);
            break;
        case TW_SET_BOOL:
            fputs(*(const int *)cfield(s, cfg) ? "true" : "false", f);
            break;
        case TW_SET_ENUM: {
            int idx = *(const int *)cfield(s, cfg);
            int count = 0;
            while (s->choices && s->choices[count])
                count++;
            if (idx >= 0 && idx < count)
                fputs(s->choices[idx], f);
            else
                fprintf(f, "#%d", idx);
            break;
        }
        default:
            break;
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
