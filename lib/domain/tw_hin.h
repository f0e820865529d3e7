/* tw_hin: boat Hull Identification Numbers (US HIN, 33 CFR 181.25) and
 * Craft Identification Numbers (EU CIN, ISO 10087), decoded and checked.
 * Pure: values in, values out.
 *
 * The text is cleaned like an engine serial (tw_serial_clean: NFKC, upper
 * case, Cyrillic/Greek look-alikes, separators such as spaces, hyphens and
 * dashes dropped, unknown markers ? * _ as '?'), then matched against these
 * forms, first as written, then with position-aware OCR fixes:
 *
 *   US HIN (12, or 14 with a "US" prefix, which is not part of the key)
 *     1-3 manufacturer code (letters), 4-8 serial [A-HJ-NPR-Z0-9],
 *     9 month A-L, 10 production-year digit, 11-12 model year
 *   EU CIN (14)
 *     1-2 country letters, 3-5 manufacturer code (alnum), 6-10 serial,
 *     11 month A-L, 12 production-year digit, 13-14 model year
 *     ("GB-ABC00042-A3-99"). MIC "RYA" with country GB is a UK RYA one-off
 *     number (one_off); the short form "GB-RYAxxxxx" (10) is accepted too,
 *     without month and years.
 *   legacy, pre-1984 (12):
 *     straight-year form "ABC12345 1272": code, serial, production month
 *       01-12 and year (19)72, 72-84 only;
 *     model-year form "ABC12345 M73E": code, serial, 'M', model year
 *       (19)73, 72-85 only, month letter A-L.
 *     Other years do not make a text legacy: "ABC12345 0324" is a current
 *     HIN with a misread month (0->D).
 *
 * Fixes (recorded as warnings, positions 1-based in the key): in letter
 * positions (country, US manufacturer code) 0->O 1->I 5->S 8->B 2->Z 6->G;
 * in the serial the letters a HIN never uses become digits (I->1, O->0,
 * Q->0); in the month position a digit becomes the A-L letter of its class
 * (0->D, 1->I, 8->B, 6->G); in year positions O/Q/D->0 I/L->1 S->5 B->8
 * Z->2 G->6. A 12- or 14-character text whose month is a letter outside A-L
 * still decodes, with month 0 and a warning.
 *
 * Years. The two-digit model year is the latest year ending in those digits
 * that is not after ref_year + 1 (a boat may carry next year's model year):
 * with ref_year 2025, "26" is 2026 and "27" is 1927. The production year is
 * the decade of the model year plus the production-year digit, minus 10 if
 * that is after the model year (so it is 0-9 years before the model year); a
 * gap of more than one year is warned about as suspicious, as are a US model
 * year before 1984 and a production year after ref_year. Legacy years are
 * 19xx.
 *
 * Anything else that is made of letters, digits and separators is kind
 * UNKNOWN with a warning, never an error. Errors are only for text that is
 * not an identifier at all: invalid UTF-8, more than TW_HIN_RAW_MAX bytes,
 * characters that are not letters, digits, separators or unknown markers,
 * nothing readable. */
#ifndef TW_HIN_H
#define TW_HIN_H

#include <stdbool.h>
#include <stddef.h>

#include "tw_serial.h"

#define TW_HIN_RAW_MAX TW_SERIAL_RAW_MAX /* bytes of UTF-8 */
#define TW_HIN_KEY_MAX TW_SERIAL_KEY_MAX /* characters in a key (UNKNOWN kind) */
#define TW_HIN_TEXT_MAX TW_SERIAL_TEXT_MAX
#define TW_HIN_WARN_MAX 16

typedef enum {
    TW_HIN_OK = 0,
    TW_HIN_ERR_ARG,      /* NULL output, NULL input with a length, ref_year not 1000-9999 */
    TW_HIN_ERR_UTF8,     /* not valid UTF-8 */
    TW_HIN_ERR_TOO_LONG, /* over TW_HIN_RAW_MAX bytes */
    TW_HIN_ERR_CHAR,     /* a character that is not allowed */
    TW_HIN_ERR_EMPTY,    /* nothing readable */
    TW_HIN_ERR_NOMEM,
} tw_hin_status;

typedef enum {
    TW_HIN_KIND_UNKNOWN = 0, /* not a recognised form (a warning says so); also on error */
    TW_HIN_KIND_US,          /* US HIN, current (1984-) form */
    TW_HIN_KIND_EU_CIN,      /* ISO 10087 CIN */
    TW_HIN_KIND_LEGACY,      /* US pre-1984 form */
} tw_hin_kind;

typedef enum {
    TW_HIN_LEGACY_NONE = 0,
    TW_HIN_LEGACY_STRAIGHT_YEAR, /* "ABC12345 1272" */
    TW_HIN_LEGACY_MODEL_YEAR,    /* "ABC12345 M73E" */
} tw_hin_legacy_form;

typedef enum {
    TW_HIN_W_OCR_FIX = 1,   /* a confusion was fixed (pos set) */
    TW_HIN_W_MONTH_RANGE,   /* month letter outside A-L (pos set) */
    TW_HIN_W_YEAR_GAP,      /* model year more than 1 after the production year */
    TW_HIN_W_YEAR_RANGE,    /* US model year before 1984 */
    TW_HIN_W_FUTURE,        /* production year after ref_year */
    TW_HIN_W_LEGACY,        /* pre-1984 form */
    TW_HIN_W_ONE_OFF,       /* UK RYA one-off number */
    TW_HIN_W_INCOMPLETE,    /* short RYA form, no month or years */
    TW_HIN_W_UNKNOWN_FORMAT,
    TW_HIN_W_PARTIAL,       /* contains '?' */
    TW_HIN_W_CYRILLIC,
    TW_HIN_W_GREEK,
} tw_hin_warn;

typedef struct {
    tw_hin_warn code;
    unsigned pos; /* 1-based position in the key, 0 when not about one position */
    char text[TW_HIN_TEXT_MAX];
} tw_hin_warning;

typedef struct {
    char key[TW_HIN_KEY_MAX + 1]; /* [A-Z0-9?]; US: the 12 characters without "US" */
    tw_hin_kind kind;
    tw_hin_legacy_form legacy_form;
    char country[3];  /* "US" for US and legacy, ISO 3166 alpha-2 for CIN (not checked), "" unknown */
    char maker[4];    /* manufacturer identification code, "" unknown */
    char serial[6];   /* "" unknown */
    int month;        /* 1-12, 0 unknown or out of range */
    int production_year; /* 4 digits, 0 unknown */
    int model_year;      /* 4 digits, 0 unknown */
    bool one_off;        /* UK RYA one-off number */
    bool partial;        /* unknown > 0 */
    unsigned unknown;    /* '?' in the key */
    unsigned fixes;      /* OCR fixes applied */
    size_t nwarnings;
    bool warnings_truncated;
    tw_hin_warning warnings[TW_HIN_WARN_MAX];
    tw_hin_status status;
    char error_text[TW_HIN_TEXT_MAX]; /* reason when status != OK, else "" */
} tw_hin;

/* Decode the hull or craft number raw[0..len) (UTF-8, need not be
 * NUL-terminated) into *out, which the caller owns; nothing outlives the
 * call. ref_year (1000-9999) is the year the number was recorded, e.g. the
 * record's event time, and anchors the two-digit model year (see above).
 *
 * Returns TW_HIN_OK with every field set (kind UNKNOWN and a warning for
 * text that is no known form), or an error status (also in out->status)
 * with out->error_text saying why; on error the key is empty and the kind
 * UNKNOWN. A NULL `out` returns TW_HIN_ERR_ARG. Decoding out->key again with
 * the same ref_year gives the same key, kind and fields. */
tw_hin_status tw_hin_decode(const char *raw, size_t len, int ref_year, tw_hin *out) TW_WUR;

/* Static names: "US HIN", "EU CIN", "legacy HIN", "unknown"; "ok", ... */
const char *tw_hin_kind_name(tw_hin_kind k);
const char *tw_hin_status_name(tw_hin_status s);

#endif
