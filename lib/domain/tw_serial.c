#include "tw_serial.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

/* ---- characters -------------------------------------------------------- */

/* Confusable classes, representative first. The second member is the letter
 * a digit becomes in a letter position. */
static const char *const confusable_classes[] = {"0OQD", "1IL", "5S", "8B", "2Z", "6G"};

static const char *class_of(char c)
{
    if (c == 0)
        return NULL;
    for (size_t i = 0; i < sizeof confusable_classes / sizeof confusable_classes[0]; i++)
        if (strchr(confusable_classes[i], c))
            return confusable_classes[i];
    return NULL;
}

char tw_serial_fold_char(char c)
{
    const char *cls = class_of(c);
    return cls ? cls[0] : c;
}

int tw_serial_fold(const char *key, char *out, size_t out_size)
{
    if (!out || out_size == 0)
        return -1;
    out[0] = 0;
    if (!key)
        return -1;
    size_t n = strlen(key);
    if (n >= out_size)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = tw_serial_fold_char(key[i]);
    out[n] = 0;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

char tw_serial_fix_char(char c, const char *allowed)
{
    if (c == 0 || !allowed)
        return 0;
    if (c == '?' || strchr(allowed, c))
        return c;
    const char *cls = class_of(c);
    if (!cls)
        return 0;
    if (is_upper(c) && strchr(allowed, cls[0]))
        return cls[0];
    if (is_digit(c) && strchr(allowed, cls[1]))
        return cls[1];
    for (const char *p = cls; *p; p++)
        if (*p != c && strchr(allowed, *p))
            return *p;
    return 0;
}

bool tw_serial_match(const char *a, const char *b, size_t *agree)
{
    if (agree)
        *agree = 0;
    if (!a || !b)
        return false;
    size_t n = 0;
    for (; *a && *b; a++, b++) {
        char x = tw_serial_fold_char(*a), y = tw_serial_fold_char(*b);
        if (x == '?' || y == '?')
            continue;
        if (x != y)
            return false;
        n++;
    }
    if (*a || *b)
        return false;
    if (agree)
        *agree = n;
    return true;
}

/* Cyrillic and Greek capitals that look like a Latin capital (inputs are
 * upper-cased first, so small letters reach this table as capitals).
 * libunistring has no confusables data, hence this short table. */
static const struct {
    ucs4_t uc;
    char latin;
    char greek; /* 0 Cyrillic, 1 Greek */
} lookalikes[] = {
    {0x037F, 'J', 1}, {0x0391, 'A', 1}, {0x0392, 'B', 1}, {0x0395, 'E', 1}, {0x0396, 'Z', 1},
    {0x0397, 'H', 1}, {0x0399, 'I', 1}, {0x039A, 'K', 1}, {0x039C, 'M', 1}, {0x039D, 'N', 1},
    {0x039F, 'O', 1}, {0x03A1, 'P', 1}, {0x03A4, 'T', 1}, {0x03A5, 'Y', 1}, {0x03A7, 'X', 1},
    {0x03F9, 'C', 1}, {0x0405, 'S', 0}, {0x0406, 'I', 0}, {0x0408, 'J', 0}, {0x0410, 'A', 0},
    {0x0412, 'B', 0}, {0x0415, 'E', 0}, {0x041A, 'K', 0}, {0x041C, 'M', 0}, {0x041D, 'H', 0},
    {0x041E, 'O', 0}, {0x0420, 'P', 0}, {0x0421, 'C', 0}, {0x0422, 'T', 0}, {0x0423, 'Y', 0},
    {0x0425, 'X', 0}, {0x04AE, 'Y', 0}, {0x04C0, 'I', 0}, {0x051A, 'Q', 0}, {0x051C, 'W', 0},
};

enum { CH_KEEP, CH_SKIP, CH_BAD };

static int is_separator(ucs4_t u)
{
    switch (u) {
    case ' ': case '-': case '/': case '\\': case '.':
    case 0x00B7: /* middle dot */
    case 0x2022: /* bullet */
    case 0x2044: /* fraction slash */
    case 0x2215: /* division slash */
    case 0x3002: /* ideographic full stop */
    case 0x30FB: /* katakana middle dot */
        return 1;
    default:
        break;
    }
    return uc_is_general_category(u, UC_SPACE_SEPARATOR) ||
           uc_is_general_category(u, UC_DASH_PUNCTUATION) || uc_is_property_dash(u) ||
           uc_is_property_default_ignorable_code_point(u);
}

/* Classify one code point of the NFKC text: CH_KEEP with *c set (and
 * *script 1 for Cyrillic, 2 for Greek look-alikes), CH_SKIP for separators
 * and invisibles, CH_BAD otherwise. */
static int classify(ucs4_t uc, char *c, int *script)
{
    ucs4_t u = uc_toupper(uc);
    *script = 0;
    if ((u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9')) {
        *c = (char)u;
        return CH_KEEP;
    }
    if (u == '?' || u == '*' || u == '_' || u == 0xFFFD) {
        *c = '?';
        return CH_KEEP;
    }
    if (is_separator(u))
        return CH_SKIP;
    int dv = uc_digit_value(u);
    if (dv >= 0 && dv <= 9) {
        *c = (char)('0' + dv);
        return CH_KEEP;
    }
    for (size_t i = 0; i < sizeof lookalikes / sizeof lookalikes[0]; i++) {
        if (lookalikes[i].uc == u) {
            *c = lookalikes[i].latin;
            *script = lookalikes[i].greek ? 2 : 1;
            return CH_KEEP;
        }
    }
    return CH_BAD;
}

static void set_text(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_text(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, TW_SERIAL_TEXT_MAX, fmt, ap);
    va_end(ap);
}

tw_serial_status tw_serial_clean(const char *raw, size_t len, char *out, size_t out_size,
                                 tw_serial_clean_info *info)
{
    if (!info)
        return TW_SERIAL_ERR_ARG;
    memset(info, 0, sizeof *info);
    if (out && out_size > 0)
        out[0] = 0;
    if (!out || out_size == 0 || (!raw && len > 0)) {
        set_text(info->error_text, "invalid arguments");
        return TW_SERIAL_ERR_ARG;
    }
    if (len > TW_SERIAL_RAW_MAX) {
        set_text(info->error_text, "reading is %zu bytes long, more than %d", len,
                 TW_SERIAL_RAW_MAX);
        return TW_SERIAL_ERR_TOO_LONG;
    }
    if (len == 0) {
        set_text(info->error_text, "reading is empty");
        return TW_SERIAL_ERR_EMPTY;
    }
    const uint8_t *bad = u8_check((const uint8_t *)raw, len);
    if (bad) {
        set_text(info->error_text, "invalid UTF-8 at byte %zu",
                 (size_t)(bad - (const uint8_t *)raw) + 1);
        return TW_SERIAL_ERR_UTF8;
    }

    uint8_t nbuf[512];
    size_t nlen = sizeof nbuf;
    uint8_t *nfkc = u8_normalize(UNINORM_NFKC, (const uint8_t *)raw, len, nbuf, &nlen);
    if (!nfkc) {
        set_text(info->error_text, "cannot normalise: %s", strerror(errno));
        return TW_SERIAL_ERR_NOMEM;
    }

    tw_serial_status st = TW_SERIAL_OK;
    size_t n = 0, chars = 0;
    for (size_t i = 0; i < nlen;) {
        ucs4_t uc;
        int k = u8_mbtouc(&uc, nfkc + i, nlen - i);
        i += (size_t)(k > 0 ? k : 1);
        chars++;
        char c = 0;
        int script = 0;
        switch (classify(uc, &c, &script)) {
        case CH_SKIP:
            continue;
        case CH_BAD:
            if (uc_is_general_category(uc, UC_CONTROL))
                set_text(info->error_text, "control character U+%04X at character %zu",
                         (unsigned)uc, chars);
            else if (uc_is_general_category(uc, UC_LETTER))
                set_text(info->error_text,
                         "letter U+%04X at character %zu has no Latin look-alike",
                         (unsigned)uc, chars);
            else
                set_text(info->error_text,
                         "character U+%04X at character %zu is not a letter, digit, "
                         "separator or unknown marker",
                         (unsigned)uc, chars);
            st = TW_SERIAL_ERR_CHAR;
            goto done;
        default:
            break;
        }
        if (n + 1 >= out_size) {
            set_text(info->error_text, "normalised reading is longer than %zu characters",
                     out_size - 1);
            st = TW_SERIAL_ERR_TOO_LONG;
            goto done;
        }
        out[n++] = c;
        if (c == '?')
            info->unknown++;
        if (script == 1)
            info->cyrillic++;
        else if (script == 2)
            info->greek++;
    }
    out[n] = 0;
    info->len = n;
    if (n == info->unknown) {
        set_text(info->error_text, n ? "no readable character, only unknown markers"
                                     : "nothing left after removing separators");
        st = TW_SERIAL_ERR_EMPTY;
    }

done:
    if (nfkc != nbuf)
        free(nfkc);
    if (st != TW_SERIAL_OK) {
        out[0] = 0;
        info->len = info->unknown = info->cyrillic = info->greek = 0;
    }
    return st;
}

/* ---- makers and formats ------------------------------------------------ */

static const struct {
    const char *word;
    tw_serial_maker maker;
} maker_words[] = {
    {"YAMAHA", TW_SERIAL_MAKER_YAMAHA},   {"MERCURY", TW_SERIAL_MAKER_MERCURY},
    {"MARINER", TW_SERIAL_MAKER_MERCURY}, {"SUZUKI", TW_SERIAL_MAKER_SUZUKI},
    {"HONDA", TW_SERIAL_MAKER_HONDA},     {"TOHATSU", TW_SERIAL_MAKER_TOHATSU},
    {"PARSUN", TW_SERIAL_MAKER_PARSUN},   {"HIDEA", TW_SERIAL_MAKER_HIDEA},
};

/* *why: 0 fine, 1 invalid UTF-8, 2 several makers named. */
static tw_serial_maker maker_parse(const char *hint, int *why)
{
    *why = 0;
    if (!hint)
        return TW_SERIAL_MAKER_UNKNOWN;
    size_t len = strlen(hint);
    if (u8_check((const uint8_t *)hint, len)) {
        *why = 1;
        return TW_SERIAL_MAKER_UNKNOWN;
    }
    uint8_t ubuf[256];
    size_t ulen = sizeof ubuf;
    uint8_t *up = u8_toupper((const uint8_t *)hint, len, NULL, UNINORM_NFKC, ubuf, &ulen);
    if (!up)
        return TW_SERIAL_MAKER_UNKNOWN;

    tw_serial_maker found = TW_SERIAL_MAKER_UNKNOWN;
    int distinct = 0;
    for (size_t i = 0; i < sizeof maker_words / sizeof maker_words[0]; i++) {
        if (memmem(up, ulen, maker_words[i].word, strlen(maker_words[i].word)) &&
            maker_words[i].maker != found) {
            found = maker_words[i].maker;
            distinct++;
        }
    }
    /* Remaining ASCII letters and digits, to spot blank and "unknown" hints. */
    char word[16];
    size_t wn = 0;
    int long_word = 0;
    for (size_t i = 0; i < ulen; i++) {
        char c = (char)up[i];
        if (up[i] >= 0x80 || is_upper(c) || is_digit(c)) {
            if (wn + 1 < sizeof word)
                word[wn++] = c;
            else
                long_word = 1;
        }
    }
    word[wn] = 0;
    if (up != ubuf)
        free(up);

    if (distinct > 1) {
        *why = 2;
        return TW_SERIAL_MAKER_UNKNOWN;
    }
    if (distinct == 1)
        return found;
    if (!long_word && (wn == 0 || !strcmp(word, "UNKNOWN") || !strcmp(word, "NA") ||
                       !strcmp(word, "NONE")))
        return TW_SERIAL_MAKER_UNKNOWN;
    return TW_SERIAL_MAKER_OTHER;
}

tw_serial_maker tw_serial_maker_parse(const char *maker_hint)
{
    int why;
    return maker_parse(maker_hint, &why);
}

const char *tw_serial_maker_name(tw_serial_maker m)
{
    switch (m) {
    case TW_SERIAL_MAKER_UNKNOWN: return "unknown";
    case TW_SERIAL_MAKER_YAMAHA: return "Yamaha";
    case TW_SERIAL_MAKER_MERCURY: return "Mercury";
    case TW_SERIAL_MAKER_SUZUKI: return "Suzuki";
    case TW_SERIAL_MAKER_HONDA: return "Honda";
    case TW_SERIAL_MAKER_TOHATSU: return "Tohatsu";
    case TW_SERIAL_MAKER_PARSUN: return "Parsun";
    case TW_SERIAL_MAKER_HIDEA: return "Hidea";
    case TW_SERIAL_MAKER_OTHER: return "other";
    }
    return "?";
}

const char *tw_serial_format_name(tw_serial_format f)
{
    switch (f) {
    case TW_SERIAL_FORMAT_INVALID: return "invalid";
    case TW_SERIAL_FORMAT_FREE_FORM: return "free-form";
    case TW_SERIAL_FORMAT_YAMAHA: return "Yamaha";
    case TW_SERIAL_FORMAT_MERCURY: return "Mercury";
    case TW_SERIAL_FORMAT_SUZUKI: return "Suzuki";
    case TW_SERIAL_FORMAT_HONDA: return "Honda";
    }
    return "?";
}

const char *tw_serial_status_name(tw_serial_status s)
{
    switch (s) {
    case TW_SERIAL_OK: return "ok";
    case TW_SERIAL_ERR_ARG: return "invalid argument";
    case TW_SERIAL_ERR_UTF8: return "invalid UTF-8";
    case TW_SERIAL_ERR_TOO_LONG: return "too long";
    case TW_SERIAL_ERR_CHAR: return "character not allowed";
    case TW_SERIAL_ERR_EMPTY: return "empty";
    case TW_SERIAL_ERR_NOMEM: return "out of memory";
    }
    return "?";
}

/* Position patterns: 'A' any character (no fix), 'D' digit, 'L' letter,
 * 'T' Yamaha transom letter. */
static const char *pattern_set(char p)
{
    switch (p) {
    case 'D': return "0123456789";
    case 'L': return "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    case 'T': return "SLXUNJ";
    default: return NULL;
    }
}

static const char *pattern_what(char p)
{
    switch (p) {
    case 'D': return "a digit";
    case 'L': return "a letter";
    case 'T': return "a transom letter";
    default: return "a character";
    }
}

typedef struct {
    tw_serial_maker maker;
    tw_serial_format format;
    int weak;
    const char *desc;
    const char *patterns[2];
} format_spec;

static const format_spec formats[] = {
    {TW_SERIAL_MAKER_YAMAHA, TW_SERIAL_FORMAT_YAMAHA, 0,
     "3-character model prefix, transom letter S/L/X/U/N/J, 6-7 digits",
     {"AAATDDDDDD", "AAATDDDDDDD"}},
    {TW_SERIAL_MAKER_MERCURY, TW_SERIAL_FORMAT_MERCURY, 0, "digit, letter, 6 digits",
     {"DLDDDDDD", NULL}},
    {TW_SERIAL_MAKER_SUZUKI, TW_SERIAL_FORMAT_SUZUKI, 1,
     "5 digits, optional letter, 6 digits", {"DDDDDDDDDDD", "DDDDDLDDDDDD"}},
    {TW_SERIAL_MAKER_HONDA, TW_SERIAL_FORMAT_HONDA, 1, "4 letters, 7 digits",
     {"LLLLDDDDDDD", NULL}},
};

/* Does `clean` fit `pattern` (with fixes)? On success writes the fixed text
 * to `fixed` (strlen(pattern) + 1 bytes). */
static int fits(const char *clean, const char *pattern, char *fixed)
{
    size_t n = strlen(pattern);
    if (strlen(clean) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *set = pattern_set(pattern[i]);
        char f = set ? tw_serial_fix_char(clean[i], set) : clean[i];
        if (!f)
            return 0;
        fixed[i] = f;
    }
    fixed[n] = 0;
    return 1;
}

static void warn(tw_serial *s, tw_serial_warn code, unsigned pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn(tw_serial *s, tw_serial_warn code, unsigned pos, const char *fmt, ...)
{
    if (s->nwarnings == TW_SERIAL_WARN_MAX) {
        s->warnings_truncated = true;
        return;
    }
    tw_serial_warning *w = &s->warnings[s->nwarnings++];
    w->code = code;
    w->pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text, sizeof w->text, fmt, ap);
    va_end(ap);
}

static void check_free_form_length(tw_serial *s)
{
    if (s->len < 5 || s->len > 12)
        warn(s, TW_SERIAL_W_LENGTH, 0,
             "free-form serial of %zu characters, outside the usual 5-12", s->len);
}

static void apply_format(tw_serial *s, const format_spec *spec)
{
    const char *name = tw_serial_maker_name(spec->maker);
    char fixed[TW_SERIAL_KEY_MAX + 1];
    const char *pattern = NULL;
    for (size_t p = 0; p < 2 && !pattern; p++)
        if (spec->patterns[p] && fits(s->clean, spec->patterns[p], fixed))
            pattern = spec->patterns[p];
    if (!pattern) {
        s->format = TW_SERIAL_FORMAT_FREE_FORM;
        warn(s, TW_SERIAL_W_FORMAT_MISMATCH, 0, "does not match %s's format (%s)", name,
             spec->desc);
        check_free_form_length(s);
        return;
    }
    s->format = spec->format;
    if (spec->weak)
        warn(s, TW_SERIAL_W_WEAK_FORMAT,
             0, "weak format: %s serials are only loosely documented, not verified", name);
    for (size_t i = 0; i < s->len; i++) {
        if (fixed[i] == s->clean[i])
            continue;
        if (spec->weak) {
            warn(s, TW_SERIAL_W_OCR_SUSPECT, (unsigned)(i + 1),
                 "possible OCR confusion at position %zu ('%c' where %s has %s), "
                 "not fixed because the format is weak",
                 i + 1, s->clean[i], name, pattern_what(pattern[i]));
        } else {
            s->key[i] = fixed[i];
            s->fixes++;
            warn(s, TW_SERIAL_W_OCR_FIX, (unsigned)(i + 1),
                 "OCR fix applied at position %zu (%c\xe2\x86\x92%c)", i + 1, s->clean[i], fixed[i]);
        }
    }
}

tw_serial_status tw_serial_normalize(const char *raw, size_t len, const char *maker_hint,
                                     tw_serial *out)
{
    if (!out)
        return TW_SERIAL_ERR_ARG;
    memset(out, 0, sizeof *out);
    int why;
    out->maker = maker_parse(maker_hint, &why);

    tw_serial_clean_info info;
    tw_serial_status st = tw_serial_clean(raw, len, out->clean, sizeof out->clean, &info);
    if (st != TW_SERIAL_OK) {
        out->status = st;
        out->format = TW_SERIAL_FORMAT_INVALID;
        memcpy(out->error_text, info.error_text, sizeof out->error_text);
        return st;
    }
    out->len = info.len;
    out->unknown = info.unknown;
    out->partial = info.unknown > 0;
    memcpy(out->key, out->clean, out->len + 1);

    if (info.cyrillic)
        warn(out, TW_SERIAL_W_CYRILLIC, 0,
             "contains look-alike Cyrillic letters (%u mapped to Latin)", info.cyrillic);
    if (info.greek)
        warn(out, TW_SERIAL_W_GREEK, 0, "contains look-alike Greek letters (%u mapped to Latin)",
             info.greek);
    if (why == 1)
        warn(out, TW_SERIAL_W_MAKER_INVALID, 0, "maker hint is not valid UTF-8, ignored");
    else if (why == 2)
        warn(out, TW_SERIAL_W_MAKER_AMBIGUOUS, 0,
             "maker hint names several makers, treated as unknown");

    const format_spec *spec = NULL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].maker == out->maker)
            spec = &formats[i];
    if (spec) {
        apply_format(out, spec);
    } else {
        out->format = TW_SERIAL_FORMAT_FREE_FORM;
        check_free_form_length(out);
    }
    if (out->partial)
        warn(out, TW_SERIAL_W_PARTIAL, 0, "partial reading: %u of %zu characters unreadable",
             out->unknown, out->len);

    if (tw_serial_fold(out->key, out->loose_key, sizeof out->loose_key) != 0) {
        /* Cannot happen: both buffers have the same size. */
        memset(out, 0, sizeof *out);
        out->status = TW_SERIAL_ERR_TOO_LONG;
        set_text(out->error_text, "key does not fit");
        return TW_SERIAL_ERR_TOO_LONG;
    }
    out->status = TW_SERIAL_OK;
    return TW_SERIAL_OK;
}
