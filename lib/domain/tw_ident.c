#include "tw_ident.h"

#include <stdbool.h>
#include <string.h>

/* ---- the calling-code table ------------------------------------------------
 *
 * ITU-T E.164 country codes (ITU "List of ITU-T Recommendation E.164
 * assigned country codes") with the national trunk prefix (ITU-T E.129
 * national dialling plans as published by each regulator). Trunk "" means
 * the country dials no prefix before national numbers, which then never
 * start with one (Italy keeps its leading 0 in E.164). Lithuania changed
 * its trunk prefix from 8 to 0 in 2025: both are accepted. Sorted by
 * country. */
typedef struct {
    char cc[3];
    const char *code;
    const char *trunk;  /* "" for none */
    const char *trunk2; /* a second accepted trunk prefix, or NULL */
} calling;

static const calling table[] = {
    {"AD", "376", "", NULL},  {"AF", "93", "0", NULL},   {"AL", "355", "0", NULL},
    {"AM", "374", "0", NULL}, {"AT", "43", "0", NULL},   {"AX", "358", "0", NULL},
    {"AZ", "994", "0", NULL}, {"BA", "387", "0", NULL},  {"BE", "32", "0", NULL},
    {"BG", "359", "0", NULL}, {"BY", "375", "8", NULL},  {"CA", "1", "1", NULL},
    {"CH", "41", "0", NULL},  {"CN", "86", "0", NULL},   {"CY", "357", "", NULL},
    {"CZ", "420", "", NULL},  {"DE", "49", "0", NULL},   {"DK", "45", "", NULL},
    {"DZ", "213", "0", NULL}, {"EE", "372", "", NULL},   {"EG", "20", "0", NULL},
    {"ER", "291", "0", NULL}, {"ES", "34", "", NULL},    {"ET", "251", "0", NULL},
    {"FI", "358", "0", NULL}, {"FO", "298", "", NULL},   {"FR", "33", "0", NULL},
    {"GB", "44", "0", NULL},  {"GE", "995", "0", NULL},  {"GG", "44", "0", NULL},
    {"GI", "350", "", NULL},  {"GR", "30", "", NULL},    {"HR", "385", "0", NULL},
    {"HU", "36", "06", NULL}, {"IE", "353", "0", NULL},  {"IM", "44", "0", NULL},
    {"IN", "91", "0", NULL},  {"IQ", "964", "0", NULL},  {"IR", "98", "0", NULL},
    {"IS", "354", "", NULL},  {"IT", "39", "", NULL},    {"JE", "44", "0", NULL},
    {"KW", "965", "", NULL},  {"LI", "423", "", NULL},   {"LT", "370", "0", "8"},
    {"LU", "352", "", NULL},  {"LV", "371", "", NULL},   {"LY", "218", "0", NULL},
    {"MA", "212", "0", NULL}, {"MC", "377", "", NULL},   {"MD", "373", "0", NULL},
    {"ME", "382", "0", NULL}, {"MK", "389", "0", NULL},  {"MT", "356", "", NULL},
    {"NL", "31", "0", NULL},  {"NO", "47", "", NULL},    {"PK", "92", "0", NULL},
    {"PL", "48", "", NULL},   {"PT", "351", "", NULL},   {"RO", "40", "0", NULL},
    {"RS", "381", "0", NULL}, {"RU", "7", "8", NULL},    {"SD", "249", "0", NULL},
    {"SE", "46", "0", NULL},  {"SI", "386", "0", NULL},  {"SK", "421", "0", NULL},
    {"SM", "378", "", NULL},  {"SO", "252", "0", NULL},  {"SY", "963", "0", NULL},
    {"TN", "216", "", NULL},  {"TR", "90", "0", NULL},   {"UA", "380", "0", NULL},
    {"US", "1", "1", NULL},   {"VN", "84", "0", NULL},   {"XK", "383", "0", NULL},
    {"YE", "967", "0", NULL},
};
#define NTABLE (sizeof table / sizeof table[0])

static char up(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char low(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const calling *by_country(const char *country)
{
    if (!country || strlen(country) != 2)
        return NULL;
    char cc0 = up(country[0]), cc1 = up(country[1]);
    for (size_t i = 0; i < NTABLE; i++)
        if (table[i].cc[0] == cc0 && table[i].cc[1] == cc1)
            return &table[i];
    return NULL;
}

/* The table entry whose calling code starts the digits d (E.164 codes are
 * prefix-free, so at most one code matches). */
static const calling *by_code(const char *d)
{
    for (size_t i = 0; i < NTABLE; i++)
        if (strncmp(d, table[i].code, strlen(table[i].code)) == 0)
            return &table[i];
    return NULL;
}

const char *tw_ident_calling_code(const char *country)
{
    const calling *c = by_country(country);
    return c ? c->code : NULL;
}

const char *tw_ident_status_name(tw_ident_status st)
{
    switch (st) {
    case TW_IDENT_OK: return "ok";
    case TW_IDENT_EMPTY: return "empty";
    case TW_IDENT_TOO_LONG: return "too_long";
    case TW_IDENT_BAD_CHARS: return "bad_chars";
    case TW_IDENT_NEEDS_COUNTRY: return "needs_country";
    case TW_IDENT_UNKNOWN_COUNTRY: return "unknown_country";
    case TW_IDENT_BAD_LENGTH: return "bad_length";
    case TW_IDENT_COUNTRY_MISMATCH: return "country_mismatch";
    case TW_IDENT_BAD_EMAIL: return "bad_email";
    case TW_IDENT_NO_TRUNK: return "no_trunk";
    }
    return "unknown";
}

/* Common start: clear out, check the sizes. */
static tw_ident_status begin(const char *in, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return TW_IDENT_TOO_LONG;
    out[0] = '\0';
    if (!in)
        return TW_IDENT_EMPTY;
    if (strlen(in) > TW_IDENT_MAX || outlen < TW_IDENT_OUT)
        return TW_IDENT_TOO_LONG;
    return TW_IDENT_OK;
}

static tw_ident_status fail(char *out, tw_ident_status st)
{
    out[0] = '\0';
    return st;
}

/* Upper-case alphanumerics of in into buf without blanks, dots, dashes and
 * slashes; anything else is BAD_CHARS. */
static tw_ident_status compact(const char *in, char *buf, size_t *n)
{
    *n = 0;
    for (const char *s = in; *s; s++) {
        char c = *s;
        if (is_blank(c) || c == '.' || c == '-' || c == '/')
            continue;
        c = up(c);
        if (!is_digit(c) && !is_upper(c))
            return TW_IDENT_BAD_CHARS;
        buf[(*n)++] = c;
    }
    buf[*n] = '\0';
    return *n ? TW_IDENT_OK : TW_IDENT_EMPTY;
}

tw_ident_status tw_ident_code(const char *in, char *out, size_t outlen)
{
    tw_ident_status st = begin(in, out, outlen);
    if (st != TW_IDENT_OK)
        return st;
    size_t n;
    st = compact(in, out, &n);
    return st == TW_IDENT_OK ? st : fail(out, st);
}

/* VAT prefix of an ISO country: Greece files as EL; others as themselves. */
static void vat_prefix(const char *cc, char pre[3])
{
    pre[0] = up(cc[0]);
    pre[1] = up(cc[1]);
    pre[2] = '\0';
    if (strcmp(pre, "GR") == 0)
        memcpy(pre, "EL", 3);
}

tw_ident_status tw_ident_vat(const char *in, const char *country, char *out, size_t outlen)
{
    tw_ident_status st = begin(in, out, outlen);
    if (st != TW_IDENT_OK)
        return st;
    char buf[TW_IDENT_MAX + 1];
    size_t n;
    st = compact(in, buf, &n);
    if (st != TW_IDENT_OK)
        return fail(out, st);
    bool have_cc = country && strlen(country) == 2 && is_upper(up(country[0])) &&
                   is_upper(up(country[1]));
    char want[3] = "";
    if (have_cc)
        vat_prefix(country, want);
    char pre[3];
    const char *rest;
    if (n >= 2 && is_upper(buf[0]) && is_upper(buf[1])) {
        vat_prefix(buf, pre); /* "GR" written for Greece becomes EL */
        rest = buf + 2;
    } else {
        if (!have_cc)
            return fail(out, TW_IDENT_NEEDS_COUNTRY);
        memcpy(pre, want, 3);
        rest = buf;
    }
    size_t rl = strlen(rest);
    if (rl < 2 || rl > 14 || !strpbrk(rest, "0123456789"))
        return fail(out, TW_IDENT_BAD_LENGTH);
    memcpy(out, pre, 2);
    memcpy(out + 2, rest, rl + 1);
    if (have_cc && strcmp(pre, want) != 0 && !(strcmp(pre, "XI") == 0 && strcmp(want, "GB") == 0))
        return TW_IDENT_COUNTRY_MISMATCH;
    return TW_IDENT_OK;
}

tw_ident_status tw_ident_phone(const char *in, const char *country, char *out, size_t outlen)
{
    tw_ident_status st = begin(in, out, outlen);
    if (st != TW_IDENT_OK)
        return st;
    /* Digits only, noting a leading '+' and where a "(0)" stood. */
    char d[TW_IDENT_MAX + 1];
    size_t n = 0, zero_at = (size_t)-1;
    bool plus = false, any = false;
    const char *s = in;
    while (is_blank(*s))
        s++;
    if (*s == '+') {
        plus = true;
        s++;
    }
    for (; *s; s++) {
        char c = *s;
        if (is_digit(c)) {
            d[n++] = c;
            any = true;
        } else if (c == '(' && s[1] == '0' && s[2] == ')') {
            if (zero_at != (size_t)-1)
                return fail(out, TW_IDENT_BAD_CHARS);
            zero_at = n;
            s += 2;
        } else if (!(is_blank(c) || c == '.' || c == '-' || c == '/' || c == '(' || c == ')')) {
            return fail(out, TW_IDENT_BAD_CHARS);
        }
    }
    d[n] = '\0';
    if (!any)
        return fail(out, plus || zero_at != (size_t)-1 ? TW_IDENT_BAD_LENGTH : TW_IDENT_EMPTY);
    const char *digits = d;
    if (!plus && n >= 2 && d[0] == '0' && d[1] == '0') {
        plus = true; /* 00 is the international access prefix across Europe */
        digits = d + 2;
        if (zero_at != (size_t)-1)
            zero_at = zero_at >= 2 ? zero_at - 2 : (size_t)-1;
    }
    char e[TW_IDENT_MAX + 8];
    size_t el = 0;
    if (plus) {
        const calling *c = by_code(digits);
        size_t cl = c ? strlen(c->code) : 0;
        /* "(0)" belongs right after the calling code; elsewhere it is noise
         * we cannot read. */
        if (zero_at != (size_t)-1 && (!c || zero_at != cl))
            return fail(out, TW_IDENT_BAD_CHARS);
        memcpy(e, digits, cl);
        el = cl;
        const char *nat = digits + cl;
        if (c && strcmp(c->trunk, "0") == 0 && nat[0] == '0' && nat[1] != '0')
            nat++; /* "+49 01512 ...": the trunk 0 dialled by habit */
        size_t nl = strlen(nat);
        memcpy(e + el, nat, nl);
        el += nl;
    } else {
        if (zero_at != (size_t)-1)
            return fail(out, TW_IDENT_BAD_CHARS);
        if (!country || !*country)
            return fail(out, TW_IDENT_NEEDS_COUNTRY);
        const calling *c = by_country(country);
        if (!c)
            return fail(out, TW_IDENT_UNKNOWN_COUNTRY);
        const char *nat = digits;
        size_t t1 = strlen(c->trunk);
        if (t1 && strncmp(nat, c->trunk, t1) == 0)
            nat += t1;
        else if (c->trunk2 && strncmp(nat, c->trunk2, strlen(c->trunk2)) == 0)
            nat += strlen(c->trunk2);
        else if (t1 && strcmp(c->code, "1") != 0)
            return fail(out, TW_IDENT_NO_TRUNK);
        if (nat[0] == '0' && t1)
            return fail(out, TW_IDENT_BAD_LENGTH);
        size_t cl = strlen(c->code), nl = strlen(nat);
        memcpy(e, c->code, cl);
        memcpy(e + cl, nat, nl);
        el = cl + nl;
    }
    e[el] = '\0';
    if (el < 8 || el > 15)
        return fail(out, TW_IDENT_BAD_LENGTH);
    if (e[0] == '0')
        return fail(out, TW_IDENT_BAD_LENGTH);
    out[0] = '+';
    memcpy(out + 1, e, el + 1);
    return TW_IDENT_OK;
}

tw_ident_status tw_ident_email(const char *in, char *out, size_t outlen)
{
    tw_ident_status st = begin(in, out, outlen);
    if (st != TW_IDENT_OK)
        return st;
    const char *s = in, *e = in + strlen(in);
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    if (s == e)
        return fail(out, TW_IDENT_EMPTY);
    size_t n = (size_t)(e - s), at = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '@') {
            if (at != (size_t)-1)
                return fail(out, TW_IDENT_BAD_EMAIL);
            at = i;
        } else if ((unsigned char)c <= ' ' || c == 0x7f || strchr("()<>[]\\,;:\"", c)) {
            return fail(out, TW_IDENT_BAD_EMAIL);
        }
        out[i] = low(c);
    }
    out[n] = '\0';
    if (at == (size_t)-1 || at == 0 || at > 64 || at + 1 >= n)
        return fail(out, TW_IDENT_BAD_EMAIL);
    /* The domain: labels separated by single dots, at least two. */
    const char *dom = out + at + 1;
    size_t labels = 0, len = 0;
    char prev = '.';
    for (const char *p = dom;; p++) {
        if (*p == '.' || *p == '\0') {
            if (len == 0 || prev == '-')
                return fail(out, TW_IDENT_BAD_EMAIL);
            labels++;
            len = 0;
            if (*p == '\0')
                break;
        } else {
            if (len == 0 && *p == '-')
                return fail(out, TW_IDENT_BAD_EMAIL);
            len++;
        }
        prev = *p;
    }
    if (labels < 2)
        return fail(out, TW_IDENT_BAD_EMAIL);
    return TW_IDENT_OK;
}
