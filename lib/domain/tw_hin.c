#include "tw_hin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Position patterns:
 *   L letter A-Z (digits fixed to letters)   S HIN serial [A-HJ-NPR-Z0-9]
 *   M month letter A-L                       X any letter (lenient month)
 *   D digit                                  m the literal 'M'
 *   A any character, never fixed */
static const char *pattern_set(char p)
{
    switch (p) {
    case 'L': case 'X': return "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    case 'S': return "ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    case 'M': return "ABCDEFGHIJKL";
    case 'D': return "0123456789";
    case 'm': return "M";
    default: return NULL;
    }
}

enum form { F_NONE, F_US, F_US_LENIENT, F_STRAIGHT, F_MODEL, F_CIN, F_CIN_LENIENT, F_RYA_SHORT };

typedef struct {
    enum form form;
    const char *pattern;
} form_spec;

/* Exact fits of these are mutually exclusive (position 9: A-L, digit, 'M';
 * position 11: A-L), which keeps decoding a key idempotent. */
static const form_spec forms12[] = {
    {F_US, "LLLSSSSSMDDD"},
    {F_STRAIGHT, "LLLAAAAADDDD"},
    {F_MODEL, "LLLAAAAAmDDM"},
};
static const form_spec lenient12 = {F_US_LENIENT, "LLLSSSSSXDDD"};
static const form_spec forms14[] = {{F_CIN, "LLAAASSSSSMDDD"}};
static const form_spec lenient14 = {F_CIN_LENIENT, "LLAAASSSSSXDDD"};
static const form_spec forms10[] = {{F_RYA_SHORT, "LLAAASSSSS"}};

typedef struct {
    char text[TW_HIN_KEY_MAX + 1];
    struct {
        unsigned pos;
        char from, to;
    } fixes[TW_HIN_KEY_MAX];
    unsigned nfix;
} fit_result;

static int fit(const char *s, const char *pattern, int allow_fix, fit_result *r)
{
    size_t n = strlen(pattern);
    if (strlen(s) != n)
        return 0;
    r->nfix = 0;
    for (size_t i = 0; i < n; i++) {
        const char *set = pattern_set(pattern[i]);
        char f = set ? tw_serial_fix_char(s[i], set) : s[i];
        if (!f || (f != s[i] && !allow_fix))
            return 0;
        if (f != s[i]) {
            r->fixes[r->nfix].pos = (unsigned)(i + 1);
            r->fixes[r->nfix].from = s[i];
            r->fixes[r->nfix].to = f;
            r->nfix++;
        }
        r->text[i] = f;
    }
    r->text[n] = 0;
    return 1;
}

static int two_digits(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* A legacy year (two digits at t[at]) is 1972-`last` or has unknown digits. */
static int legacy_year_ok(const char *t, int at, int last)
{
    if (t[at] == '?' || t[at + 1] == '?')
        return 1;
    int yy = two_digits(t + at);
    return yy >= 72 && yy <= last;
}

/* Checks beyond the pattern. Legacy forms were used from 1972 until the
 * current form in August 1984, so only those years (model years to 1985)
 * make a text legacy; "ABC12345 0324" is then a current HIN whose month was
 * misread, not a 1924 legacy number. */
static int valid_form(enum form f, const char *t)
{
    if (f == F_STRAIGHT) {
        if (!legacy_year_ok(t, 10, 84))
            return 0;
        /* Production month 01-12; unknown digits may stand for any. */
        char a = t[8], b = t[9];
        if (a == '?')
            return 1;
        if (a != '0' && a != '1')
            return 0;
        if (b == '?')
            return 1;
        int m = two_digits(t + 8);
        return m >= 1 && m <= 12;
    }
    if (f == F_MODEL)
        return legacy_year_ok(t, 9, 85);
    if (f == F_RYA_SHORT)
        return !strncmp(t, "GBRYA", 5);
    return 1;
}

/* Try `forms` as written, then with fixes, then `lenient` (may be NULL). */
static enum form match(const char *s, const form_spec *forms, size_t nforms,
                       const form_spec *lenient, fit_result *r)
{
    for (int allow_fix = 0; allow_fix <= 1; allow_fix++)
        for (size_t i = 0; i < nforms; i++)
            if (fit(s, forms[i].pattern, allow_fix, r) && valid_form(forms[i].form, r->text))
                return forms[i].form;
    if (lenient && fit(s, lenient->pattern, 1, r))
        return lenient->form;
    return F_NONE;
}

static void warn(tw_hin *h, tw_hin_warn code, unsigned pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn(tw_hin *h, tw_hin_warn code, unsigned pos, const char *fmt, ...)
{
    if (h->nwarnings == TW_HIN_WARN_MAX) {
        h->warnings_truncated = true;
        return;
    }
    tw_hin_warning *w = &h->warnings[h->nwarnings++];
    w->code = code;
    w->pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text, sizeof w->text, fmt, ap);
    va_end(ap);
}

/* One warning per fix; `where` replaces "at position N" when not NULL. */
static void warn_fixes(tw_hin *h, const fit_result *r, const char *where)
{
    for (unsigned i = 0; i < r->nfix; i++) {
        h->fixes++;
        if (where)
            warn(h, TW_HIN_W_OCR_FIX, 0, "OCR fix applied %s (%c\xe2\x86\x92%c)", where,
                 r->fixes[i].from, r->fixes[i].to);
        else
            warn(h, TW_HIN_W_OCR_FIX, r->fixes[i].pos,
                 "OCR fix applied at position %u (%c\xe2\x86\x92%c)", r->fixes[i].pos,
                 r->fixes[i].from, r->fixes[i].to);
    }
}

static void copy_field(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int month_of(char c)
{
    return (c >= 'A' && c <= 'L') ? c - 'A' + 1 : 0;
}

/* Latest year ending in yy that is not after ref + 1. */
static int model_year_of(int yy, int ref)
{
    int top = ref + 1;
    int y = top / 100 * 100 + yy;
    return y > top ? y - 100 : y;
}

/* Decode the current US/CIN layout: `off` is where the manufacturer code
 * starts in the key (0 US, 2 CIN). */
static void decode_current(tw_hin *h, size_t off, int ref_year)
{
    const char *k = h->key + off;
    copy_field(h->maker, k, 3);
    copy_field(h->serial, k + 3, 5);
    h->month = month_of(k[8]);
    if (!h->month && k[8] != '?')
        warn(h, TW_HIN_W_MONTH_RANGE, (unsigned)(off + 9),
             "month letter '%c' at position %zu is outside A-L", k[8], off + 9);
    int yy = two_digits(k + 10);
    if (yy >= 0) {
        h->model_year = model_year_of(yy, ref_year);
        if (k[9] >= '0' && k[9] <= '9') {
            int y = h->model_year / 10 * 10 + (k[9] - '0');
            h->production_year = y > h->model_year ? y - 10 : y;
        }
    }
    if (h->kind == TW_HIN_KIND_US && h->model_year && h->model_year < 1984)
        warn(h, TW_HIN_W_YEAR_RANGE, 0,
             "model year %d is before 1984, when this HIN format began", h->model_year);
    if (h->production_year && h->model_year - h->production_year > 1)
        warn(h, TW_HIN_W_YEAR_GAP, 0,
             "production year %d and model year %d are %d years apart (more than 1 is "
             "suspicious)",
             h->production_year, h->model_year, h->model_year - h->production_year);
    if (h->production_year > ref_year)
        warn(h, TW_HIN_W_FUTURE, 0, "production year %d is after the reference year %d",
             h->production_year, ref_year);
}

static void decode_legacy(tw_hin *h, enum form f)
{
    const char *k = h->key;
    strcpy(h->country, "US");
    copy_field(h->maker, k, 3);
    copy_field(h->serial, k + 3, 5);
    const char *what;
    if (f == F_STRAIGHT) {
        h->legacy_form = TW_HIN_LEGACY_STRAIGHT_YEAR;
        int m = two_digits(k + 8);
        h->month = m >= 1 && m <= 12 ? m : 0;
        int yy = two_digits(k + 10);
        if (yy >= 0)
            h->production_year = 1900 + yy;
        what = "straight-year";
    } else {
        h->legacy_form = TW_HIN_LEGACY_MODEL_YEAR;
        int yy = two_digits(k + 9);
        if (yy >= 0)
            h->model_year = 1900 + yy;
        h->month = month_of(k[11]);
        what = "model-year";
    }
    warn(h, TW_HIN_W_LEGACY, 0, "pre-1984 legacy HIN (%s form)", what);
}

static tw_hin_status fail(tw_hin *h, tw_hin_status st, const char *why)
{
    memset(h, 0, sizeof *h);
    h->status = st;
    snprintf(h->error_text, sizeof h->error_text, "%s", why);
    return st;
}

static tw_hin_status from_serial_status(tw_serial_status st)
{
    switch (st) {
    case TW_SERIAL_OK: return TW_HIN_OK;
    case TW_SERIAL_ERR_ARG: return TW_HIN_ERR_ARG;
    case TW_SERIAL_ERR_UTF8: return TW_HIN_ERR_UTF8;
    case TW_SERIAL_ERR_TOO_LONG: return TW_HIN_ERR_TOO_LONG;
    case TW_SERIAL_ERR_CHAR: return TW_HIN_ERR_CHAR;
    case TW_SERIAL_ERR_EMPTY: return TW_HIN_ERR_EMPTY;
    case TW_SERIAL_ERR_NOMEM: return TW_HIN_ERR_NOMEM;
    }
    return TW_HIN_ERR_ARG;
}

tw_hin_status tw_hin_decode(const char *raw, size_t len, int ref_year, tw_hin *out)
{
    if (!out)
        return TW_HIN_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (ref_year < 1000 || ref_year > 9999)
        return fail(out, TW_HIN_ERR_ARG, "reference year must be 1000-9999");

    char clean[TW_HIN_KEY_MAX + 1];
    tw_serial_clean_info info;
    tw_serial_status sst = tw_serial_clean(raw, len, clean, sizeof clean, &info);
    if (sst != TW_SERIAL_OK)
        return fail(out, from_serial_status(sst), info.error_text);

    if (info.cyrillic)
        warn(out, TW_HIN_W_CYRILLIC, 0,
             "contains look-alike Cyrillic letters (%u mapped to Latin)", info.cyrillic);
    if (info.greek)
        warn(out, TW_HIN_W_GREEK, 0, "contains look-alike Greek letters (%u mapped to Latin)",
             info.greek);

    fit_result r;
    enum form f = F_NONE;
    size_t n = info.len;
    if (n == 14) {
        /* A "US" prefix, possibly misread ("U5"), makes the rest a US HIN. */
        const char *letters = pattern_set('L');
        char c0 = tw_serial_fix_char(clean[0], letters), c1 = tw_serial_fix_char(clean[1], letters);
        /* The number itself must have a readable character: "US" and twelve
         * unknowns would decode to a key that is no HIN on its own. */
        int readable = 0;
        for (size_t i = 2; i < n; i++)
            readable |= clean[i] != '?';
        if (c0 == 'U' && c1 == 'S' && readable) {
            f = match(clean + 2, forms12, 3, &lenient12, &r);
            if (f != F_NONE) {
                fit_result pr = {.nfix = 0};
                for (int i = 0; i < 2; i++) {
                    if (clean[i] != "US"[i]) {
                        pr.fixes[pr.nfix].from = clean[i];
                        pr.fixes[pr.nfix].to = "US"[i];
                        pr.nfix++;
                    }
                }
                warn_fixes(out, &pr, "in the US prefix");
            }
        }
        if (f == F_NONE)
            f = match(clean, forms14, 1, &lenient14, &r);
    } else if (n == 12) {
        f = match(clean, forms12, 3, &lenient12, &r);
    } else if (n == 10) {
        f = match(clean, forms10, 1, NULL, &r);
    }

    if (f == F_NONE) {
        memcpy(out->key, clean, n + 1);
        out->kind = TW_HIN_KIND_UNKNOWN;
        warn(out, TW_HIN_W_UNKNOWN_FORMAT, 0,
             "not a recognised HIN or CIN form (%zu characters; expected 12 for a US HIN, "
             "14 for a CIN)",
             n);
    } else {
        memcpy(out->key, r.text, strlen(r.text) + 1);
        warn_fixes(out, &r, NULL);
        switch (f) {
        case F_US:
        case F_US_LENIENT:
            out->kind = TW_HIN_KIND_US;
            strcpy(out->country, "US");
            decode_current(out, 0, ref_year);
            break;
        case F_CIN:
        case F_CIN_LENIENT:
            out->kind = TW_HIN_KIND_EU_CIN;
            copy_field(out->country, out->key, 2);
            decode_current(out, 2, ref_year);
            break;
        case F_RYA_SHORT:
            out->kind = TW_HIN_KIND_EU_CIN;
            copy_field(out->country, out->key, 2);
            copy_field(out->maker, out->key + 2, 3);
            copy_field(out->serial, out->key + 5, 5);
            warn(out, TW_HIN_W_INCOMPLETE, 0,
                 "RYA one-off number without month, production year and model year");
            break;
        case F_STRAIGHT:
        case F_MODEL:
            out->kind = TW_HIN_KIND_LEGACY;
            decode_legacy(out, f);
            break;
        case F_NONE:
            break;
        }
        if (out->kind == TW_HIN_KIND_EU_CIN && !strcmp(out->country, "GB") &&
            !strcmp(out->maker, "RYA")) {
            out->one_off = true;
            warn(out, TW_HIN_W_ONE_OFF, 0, "UK RYA one-off number");
        }
    }

    for (const char *p = out->key; *p; p++)
        out->unknown += *p == '?';
    out->partial = out->unknown > 0;
    if (out->partial)
        warn(out, TW_HIN_W_PARTIAL, 0, "partial reading: %u of %zu characters unreadable",
             out->unknown, strlen(out->key));
    out->status = TW_HIN_OK;
    return TW_HIN_OK;
}

const char *tw_hin_kind_name(tw_hin_kind k)
{
    switch (k) {
    case TW_HIN_KIND_UNKNOWN: return "unknown";
    case TW_HIN_KIND_US: return "US HIN";
    case TW_HIN_KIND_EU_CIN: return "EU CIN";
    case TW_HIN_KIND_LEGACY: return "legacy HIN";
    }
    return "?";
}

const char *tw_hin_status_name(tw_hin_status s)
{
    switch (s) {
    case TW_HIN_OK: return "ok";
    case TW_HIN_ERR_ARG: return "invalid argument";
    case TW_HIN_ERR_UTF8: return "invalid UTF-8";
    case TW_HIN_ERR_TOO_LONG: return "too long";
    case TW_HIN_ERR_CHAR: return "character not allowed";
    case TW_HIN_ERR_EMPTY: return "empty";
    case TW_HIN_ERR_NOMEM: return "out of memory";
    }
    return "?";
}
