/* tw_copytext: COPY text rows in memory (see tw_copytext.h). */
#include "tw_copytext.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistr.h>

static int grow(tw_copytext *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->cap - b->len >= more)
        return 0;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap - b->len < more) {
        if (ncap > SIZE_MAX / 2) {
            b->failed = 1;
            return -1;
        }
        ncap *= 2;
    }
    char *nd = realloc(b->data, ncap);
    if (!nd) {
        b->failed = 1;
        return -1;
    }
    b->data = nd;
    b->cap = ncap;
    return 0;
}

/* The separator before a column (none before the first). */
static int sep(tw_copytext *b, size_t more)
{
    if (grow(b, more + 1) != 0)
        return -1;
    if (b->col++ > 0)
        b->data[b->len++] = '\t';
    return 0;
}

static void raw(tw_copytext *b, const char *s, size_t n)
{
    if (sep(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

void tw_copytext_null(tw_copytext *b) { raw(b, "\\N", 2); }

void tw_copytext_str(tw_copytext *b, const char *s)
{
    if (!s) {
        tw_copytext_null(b);
        return;
    }
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 2 || sep(b, 2 * n) != 0) {
        b->failed = 1;
        return;
    }
    char *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        default: *o++ = c;
        }
    }
    b->len = (size_t)(o - b->data);
}

void tw_copytext_int(tw_copytext *b, int64_t v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%" PRId64, v);
    raw(b, t, (size_t)n);
}

void tw_copytext_id(tw_copytext *b, int64_t id)
{
    if (id)
        tw_copytext_int(b, id);
    else
        tw_copytext_null(b);
}

void tw_copytext_bool(tw_copytext *b, bool v) { raw(b, v ? "t" : "f", 1); }

void tw_copytext_f64(tw_copytext *b, bool has, double v)
{
    if (!has || !isfinite(v)) {
        tw_copytext_null(b);
        return;
    }
    char t[40];
    int n = snprintf(t, sizeof t, "%.17g", v);
    raw(b, t, (size_t)n);
}

/* us as UTC calendar time in *tm and the microseconds in *frac; 0, or -1
 * when the year is outside 1..9999. */
static int utc(int64_t us, struct tm *tm, int64_t *frac)
{
    int64_t s = us / 1000000;
    *frac = us % 1000000;
    if (*frac < 0) {
        *frac += 1000000;
        s -= 1;
    }
    time_t t = (time_t)s;
    if (!gmtime_r(&t, tm) || tm->tm_year + 1900 < 1 || tm->tm_year + 1900 > 9999)
        return -1;
    return 0;
}

int tw_copytext_time_valid(bool has, int64_t us)
{
    struct tm tm;
    int64_t frac;
    return has && utc(us, &tm, &frac) == 0;
}

void tw_copytext_time(tw_copytext *b, bool has, int64_t us)
{
    struct tm tm;
    int64_t frac;
    if (!has || utc(us, &tm, &frac) != 0) {
        tw_copytext_null(b);
        return;
    }
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long long)frac);
    raw(b, buf, (size_t)n);
}

void tw_copytext_end(tw_copytext *b)
{
    if (grow(b, 1) != 0)
        return;
    b->data[b->len++] = '\n';
    b->col = 0;
    b->rows++;
}

void tw_copytext_reset(tw_copytext *b)
{
    b->len = 0;
    b->rows = 0;
    b->col = 0;
}

void tw_copytext_free(tw_copytext *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int tw_copytext_utf8(const char *s)
{
    return !s || u8_check((const uint8_t *)s, strlen(s)) == NULL;
}
