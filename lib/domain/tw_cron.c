/* tw_cron: parse and step cron schedules (see tw_cron.h). */
#include "tw_cron.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names for lo.. (NULL: numbers only) */
} field;

static const char *const MONTHS[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const WDAYS[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const field FIELDS[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},
    {"month", 1, 12, MONTHS},
    {"day of week", 0, 7, WDAYS},
};

/* A number or a name at *p (advanced past it). Returns 0 or -1. */
static int value(const field *f, const char **p, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            if (v > 1000)
                return -1;
        }
        *p = s;
        *out = (int)v;
        return 0;
    }
    for (int i = 0; f->names && f->names[i]; i++)
        if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
            *p = s + 3;
            *out = f->lo + i;
            return 0;
        }
    return -1;
}

/* One field's text [s, e) into bits (bit v set for each value v named). */
static int parse_field(const field *f, const char *s, const char *e, uint64_t *bits, int *any,
                       char *err, size_t errlen)
{
    *bits = 0;
    *any = e - s == 1 && *s == '*';
    while (s < e) {
        const char *item_end = memchr(s, ',', (size_t)(e - s));
        if (!item_end)
            item_end = e;
        int a = f->lo, b = f->hi, step = 1, ranged = 0;
        const char *p = s;
        if (*p == '*') {
            p++;
        } else {
            if (value(f, &p, &a) != 0)
                goto bad;
            b = a;
            if (p < item_end && *p == '-') {
                p++;
                ranged = 1;
                if (value(f, &p, &b) != 0)
                    goto bad;
            }
        }
        if (p < item_end && *p == '/') {
            p++;
            if (value(&FIELDS[0], &p, &step) != 0 || step < 1)
                goto bad;
            if (*s != '*' && !ranged)
                b = f->hi; /* "a/n": from a to the end */
        }
        if (p != item_end)
            goto bad;
        if (a < f->lo || b > f->hi || a > b) {
            snprintf(err, errlen, "%s: %.*s is outside %d-%d (or a range going backwards)",
                     f->name, (int)(item_end - s), s, f->lo, f->hi);
            return -1;
        }
        for (int v = a; v <= b; v += step)
            *bits |= UINT64_C(1) << v;
        s = item_end < e ? item_end + 1 : e;
        if (item_end < e && s == e)
            goto bad; /* trailing comma */
    }
    if (*bits)
        return 0;
bad:
    snprintf(err, errlen, "%s: not a number, name, range, step or list", f->name);
    return -1;
}

static const struct {
    const char *name, *expands;
} MACROS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int tw_cron_parse(const char *text, tw_cron *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!text || strnlen(text, TW_CRON_TEXT_MAX + 1) > TW_CRON_TEXT_MAX) {
        snprintf(err, errlen, "schedule: missing, or longer than %d bytes", TW_CRON_TEXT_MAX);
        return -1;
    }
    while (isspace((unsigned char)*text))
        text++;
    if (*text == '@') {
        size_t n = strcspn(text, " \t");
        const char *rest = text + n;
        while (isspace((unsigned char)*rest))
            rest++;
        for (size_t i = 0; i < sizeof MACROS / sizeof MACROS[0]; i++)
            if (strlen(MACROS[i].name) == n && strncasecmp(text, MACROS[i].name, n) == 0 && !*rest)
                return tw_cron_parse(MACROS[i].expands, out, err, errlen);
        snprintf(err, errlen, "schedule: unknown macro %.*s (@yearly, @monthly, @weekly, "
                              "@daily, @hourly)", (int)(n > 32 ? 32 : n), text);
        return -1;
    }
    uint64_t bits[5];
    int any[5];
    const char *p = text;
    for (int i = 0; i < 5; i++) {
        while (isspace((unsigned char)*p))
            p++;
        const char *e = p;
        while (*e && !isspace((unsigned char)*e))
            e++;
        if (e == p) {
            snprintf(err, errlen, "schedule: %d fields given, 5 needed (minute hour day-of-month "
                                  "month day-of-week)", i);
            return -1;
        }
        if (parse_field(&FIELDS[i], p, e, &bits[i], &any[i], err, errlen) != 0) {
            memset(out, 0, sizeof *out);
            return -1;
        }
        p = e;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p) {
        snprintf(err, errlen, "schedule: more than 5 fields");
        return -1;
    }
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->mdays = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
    out->mday_any = (uint8_t)any[2];
    out->wday_any = (uint8_t)any[4];
    return 0;
}

static int day_matches(const tw_cron *c, const struct tm *tm)
{
    int md = (c->mdays >> tm->tm_mday) & 1, wd = (c->wdays >> tm->tm_wday) & 1;
    if (c->mday_any || c->wday_any)
        return md && wd;
    return md || wd;
}

int64_t tw_cron_next(const tw_cron *c, int64_t after)
{
    if (!c->minutes || !c->hours || !c->mdays || !c->months || !c->wdays)
        return -1;
    int64_t t = after - ((after % 60) + 60) % 60 + 60; /* the next whole minute */
    int64_t limit = after + INT64_C(8) * 366 * 86400;
    while (t <= limit) {
        time_t tt = (time_t)t;
        struct tm tm;
        if (!gmtime_r(&tt, &tm))
            return -1;
        if (!((c->months >> (tm.tm_mon + 1)) & 1)) {
            /* the first minute of the next month */
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            tm.tm_mon++;
            t = (int64_t)timegm(&tm);
        } else if (!day_matches(c, &tm)) {
            t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
        } else if (!((c->hours >> tm.tm_hour) & 1)) {
            t += 3600 - tm.tm_min * 60;
        } else if (!((c->minutes >> tm.tm_min) & 1)) {
            t += 60;
        } else {
            return t;
        }
    }
    return -1;
}
