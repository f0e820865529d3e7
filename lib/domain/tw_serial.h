/* tw_serial: engine and outboard serial normalisation (pure, no I/O).
 *
 * A reading is the text as a person or an OCR engine copied it from a plate,
 * a block stamp or an acid-etch recovery. Normalising it gives two keys:
 *
 *   key        the strict key: NFKC, upper case, Cyrillic and Greek
 *              look-alike letters mapped to Latin, digits of any script as
 *              ASCII digits, separators dropped, unreadable characters as
 *              '?'. Where the maker's format is known and strong (Yamaha,
 *              Mercury) and the reading fits it, OCR/hand-copy confusions
 *              are fixed by position (see below). Only [A-Z0-9?].
 *   loose_key  the key with every confusable folded to one class
 *              representative, whatever the maker, for fuzzy matching. The
 *              classes (representative first):
 *                  0 O Q D  -> 0      5 S -> 5      2 Z -> 2
 *                  1 I L    -> 1      8 B -> 8      6 G -> 6
 *              Only [0-9A-Z?] minus the folded letters (O Q D I L S B Z G).
 *
 * Position-aware fixes (strict key only, strong formats only): in a digit
 * position a letter of a class becomes the class digit (O/Q/D->0, I/L->1,
 * S->5, B->8, Z->2, G->6); in a letter position a digit becomes the class
 * letter (0->O, 1->I, 5->S, 8->B, 2->Z, 6->G), or, where only some letters
 * are allowed, the class member that is allowed (Yamaha transom: 1->L). Every
 * fix stays inside its class, so loose_key == fold(key) always. Weak formats
 * (Suzuki, Honda) are detected but never fixed: a warning names each
 * suspicious position instead.
 *
 * Formats (on the key, separators already dropped):
 *   Yamaha   3 alnum model prefix, transom letter S L X U N J, 6-7 digits
 *            ("6E5-X-1016523" -> "6E5X1016523")
 *   Mercury  digit, letter, 6 digits ("0P096282"); Mariner is Mercury-made
 *   Suzuki   5 digits, optional letter, 6 digits (weak)
 *   Honda    4 letters, 7 digits (weak)
 *   others   free-form alnum; a warning outside 5-12 characters
 * A reading that does not fit its maker's format is kept as cleaned, with
 * format FREE_FORM and a warning: a weak or unknown format is never an
 * error.
 *
 * Input characters: letters and digits (after NFKC, upper case and the
 * look-alike map), separators (Unicode space separators, every Unicode dash
 * (general category Pd and the Dash property, so also U+2212 minus), slashes
 * / \ U+2044 U+2215, dots . U+00B7 U+2022 U+3002 U+30FB), invisible
 * default-ignorable code points such as ZWSP, soft hyphen and BOM (dropped),
 * and unknown markers ? * _ U+FFFD (-> '?'). Anything else (control
 * characters including tab and newline, emoji, punctuation such as ':' or
 * '#', letters with no Latin look-alike such as Cyrillic 'Ж') is an error, as
 * are invalid UTF-8, more than TW_SERIAL_RAW_MAX bytes, and a reading with
 * no readable character. */
#ifndef TW_SERIAL_H
#define TW_SERIAL_H

#include <stdbool.h>
#include <stddef.h>

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

/* Raw readings longer than this many bytes of UTF-8 are rejected (64 bytes:
 * 21 fullwidth or 32 Cyrillic characters, far beyond any real serial). */
#define TW_SERIAL_RAW_MAX 64
/* Most characters in a key (NFKC can expand, e.g. U+3389 -> "KCAL"; a key
 * that would be longer is TW_SERIAL_ERR_TOO_LONG). Buffers are one more. */
#define TW_SERIAL_KEY_MAX 64
/* Room for one warning or error text, NUL included. */
#define TW_SERIAL_TEXT_MAX 128
/* At most this many warnings are kept; further ones set warnings_truncated. */
#define TW_SERIAL_WARN_MAX 16

typedef enum {
    TW_SERIAL_OK = 0,
    TW_SERIAL_ERR_ARG,      /* NULL output or NULL input with a length */
    TW_SERIAL_ERR_UTF8,     /* not valid UTF-8 */
    TW_SERIAL_ERR_TOO_LONG, /* over TW_SERIAL_RAW_MAX bytes or TW_SERIAL_KEY_MAX chars */
    TW_SERIAL_ERR_CHAR,     /* a character that is not allowed (see above) */
    TW_SERIAL_ERR_EMPTY,    /* nothing readable left after cleaning */
    TW_SERIAL_ERR_NOMEM,
} tw_serial_status;

typedef enum {
    TW_SERIAL_FORMAT_INVALID = 0, /* only on error */
    TW_SERIAL_FORMAT_FREE_FORM,
    TW_SERIAL_FORMAT_YAMAHA,
    TW_SERIAL_FORMAT_MERCURY,
    TW_SERIAL_FORMAT_SUZUKI,
    TW_SERIAL_FORMAT_HONDA,
} tw_serial_format;

typedef enum {
    TW_SERIAL_MAKER_UNKNOWN = 0, /* no hint, empty, "unknown", or several makers named */
    TW_SERIAL_MAKER_YAMAHA,
    TW_SERIAL_MAKER_MERCURY, /* also Mariner */
    TW_SERIAL_MAKER_SUZUKI,
    TW_SERIAL_MAKER_HONDA,
    TW_SERIAL_MAKER_TOHATSU,
    TW_SERIAL_MAKER_PARSUN,
    TW_SERIAL_MAKER_HIDEA,
    TW_SERIAL_MAKER_OTHER, /* a name we have no format for */
} tw_serial_maker;

typedef enum {
    TW_SERIAL_W_OCR_FIX = 1,     /* a confusion was fixed in the key (pos set) */
    TW_SERIAL_W_OCR_SUSPECT,     /* weak format: a confusion left unfixed (pos set) */
    TW_SERIAL_W_WEAK_FORMAT,     /* matched a weak format (Suzuki, Honda) */
    TW_SERIAL_W_FORMAT_MISMATCH, /* maker known, reading does not fit its format */
    TW_SERIAL_W_LENGTH,          /* free-form key outside 5-12 characters */
    TW_SERIAL_W_PARTIAL,         /* the key contains '?' */
    TW_SERIAL_W_CYRILLIC,        /* Cyrillic look-alikes were mapped to Latin */
    TW_SERIAL_W_GREEK,           /* Greek look-alikes were mapped to Latin */
    TW_SERIAL_W_MAKER_AMBIGUOUS, /* the hint names several makers */
    TW_SERIAL_W_MAKER_INVALID,   /* the hint is not valid UTF-8 (ignored) */
} tw_serial_warn;

typedef struct {
    tw_serial_warn code;
    unsigned pos; /* 1-based position in the key, 0 when not about one position */
    char text[TW_SERIAL_TEXT_MAX];
} tw_serial_warning;

/* What tw_serial_clean saw besides the text. */
typedef struct {
    size_t len;        /* characters written */
    unsigned unknown;  /* '?' written */
    unsigned cyrillic; /* Cyrillic look-alikes mapped */
    unsigned greek;    /* Greek look-alikes mapped */
    char error_text[TW_SERIAL_TEXT_MAX]; /* reason, set on error */
} tw_serial_clean_info;

typedef struct {
    char key[TW_SERIAL_KEY_MAX + 1];
    char loose_key[TW_SERIAL_KEY_MAX + 1];
    char clean[TW_SERIAL_KEY_MAX + 1]; /* key before position fixes */
    size_t len;                        /* strlen(key) == strlen(loose_key) */
    tw_serial_format format;
    tw_serial_maker maker;
    bool partial;     /* unknown > 0 */
    unsigned unknown; /* '?' in the key */
    unsigned fixes;   /* position fixes applied to the key */
    size_t nwarnings;
    bool warnings_truncated;
    tw_serial_warning warnings[TW_SERIAL_WARN_MAX];
    tw_serial_status status;
    char error_text[TW_SERIAL_TEXT_MAX]; /* reason when status != OK, else "" */
} tw_serial;

/* Normalise the reading raw[0..len) (UTF-8, need not be NUL-terminated) for
 * the maker named by `maker_hint` (free text, may be NULL; see
 * tw_serial_maker_parse) into *out, which the caller owns; nothing is
 * allocated that outlives the call.
 *
 * Returns TW_SERIAL_OK and fills every field, or an error status (also in
 * out->status) with out->error_text saying why and where; on error the keys
 * are empty, format is TW_SERIAL_FORMAT_INVALID and no warnings are set
 * (a NULL `out` returns TW_SERIAL_ERR_ARG and writes nothing). Weak or
 * unknown formats are OK with warnings. Normalising out->key again with the
 * same hint gives the same key, loose key and format. */
tw_serial_status tw_serial_normalize(const char *raw, size_t len, const char *maker_hint,
                                     tw_serial *out) TW_WUR;

/* The maker named in free text ("Yamaha", "YAMAHA MOTOR", "mercury
 * marine"...): NFKC, case-insensitive, by substring. NULL, empty, "unknown",
 * invalid UTF-8 and text naming several makers give TW_SERIAL_MAKER_UNKNOWN
 * (tw_serial_normalize adds a warning for the last two). Other non-empty
 * text gives TW_SERIAL_MAKER_OTHER. */
tw_serial_maker tw_serial_maker_parse(const char *maker_hint);

/* Static, human-readable names ("Yamaha", "free-form", ...). */
const char *tw_serial_maker_name(tw_serial_maker m);
const char *tw_serial_format_name(tw_serial_format f);
const char *tw_serial_status_name(tw_serial_status s);

/* The first step of tw_serial_normalize, shared with tw_hin: check UTF-8 and
 * length (TW_SERIAL_RAW_MAX), NFKC, upper case, map look-alikes and digits of
 * any script, drop separators, write unknown markers as '?'. Writes a
 * NUL-terminated string of [A-Z0-9?] to out[out_size] and returns
 * TW_SERIAL_OK, or returns an error with info->error_text set (out is then
 * ""). `info` must not be NULL. A text with no readable character is
 * TW_SERIAL_ERR_EMPTY. Output longer than out_size - 1 is
 * TW_SERIAL_ERR_TOO_LONG. */
tw_serial_status tw_serial_clean(const char *raw, size_t len, char *out, size_t out_size,
                                 tw_serial_clean_info *info) TW_WUR;

/* The representative of c's confusable class ('O' -> '0', 'S' -> '5', ...);
 * any other character is returned unchanged. */
char tw_serial_fold_char(char c);

/* Fold every character of the NUL-terminated `key` with tw_serial_fold_char
 * into out[out_size]. Returns 0, or -1 (out set to "" if out_size > 0) when
 * it does not fit or an argument is NULL. */
int tw_serial_fold(const char *key, char *out, size_t out_size) TW_WUR;

/* Fix character c for a position that allows only the characters in
 * `allowed` (a NUL-terminated set, e.g. "0123456789"). Returns c itself when
 * c is allowed or is '?'; the member of c's confusable class that is allowed
 * when there is one (a letter prefers the class digit, a digit prefers the
 * class letter listed above, then class order); 0 when c cannot be fixed.
 * Used by tw_hin for its positions. */
char tw_serial_fix_char(char c, const char *allowed);

/* Could keys a and b (NUL-terminated, strict or loose: both are folded) be
 * readings of the same serial? True when they have the same length and at
 * every position the folded characters are equal or one of them is '?'.
 * When `agree` is not NULL it receives the number of positions where both
 * are known and equal: callers should ask for a minimum (a key of all but
 * one '?' matches almost anything). Keys of different lengths never match
 * (a missing leading or trailing part is not handled here). NULL keys never
 * match. */
bool tw_serial_match(const char *a, const char *b, size_t *agree);

#endif
