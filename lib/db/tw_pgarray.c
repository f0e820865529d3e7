#include "tw_pgarray.h"

#include <stdlib.h>
#include <string.h>

#define PG_EPOCH_OFFSET 946684800LL
#define HEADER 20 /* ndim, flags, oid, dim, lower bound */

static void put(tw_pgarray *a, const void *p, size_t n)
{
    if (a->failed)
        return;
    if (a->len + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->len + n)
            cap *= 2;
        uint8_t *d = realloc(a->data, cap);
        if (!d) {
            a->failed = 1;
            return;
        }
        a->data = d;
        a->cap = cap;
    }
    if (n)
        memcpy(a->data + a->len, p, n);
    a->len += n;
}

static void put32(tw_pgarray *a, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(a, b, 4);
}

static void write32_at(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void tw_pgarray_begin(tw_pgarray *a, Oid oid)
{
    a->len = 0;
    a->count = 0;
    a->failed = 0;
    put32(a, 1);   /* ndim */
    put32(a, 0);   /* has-nulls flag: PostgreSQL ignores it on input */
    put32(a, oid); /* element type */
    put32(a, 0);   /* dimension: patched by finish */
    put32(a, 1);   /* lower bound */
}

static void element(tw_pgarray *a, const void *p, size_t n)
{
    if (n > INT32_MAX) {
        a->failed = 1;
        return;
    }
    put32(a, (uint32_t)n);
    put(a, p, n);
    a->count++;
}

void tw_pgarray_null(tw_pgarray *a)
{
    put32(a, 0xffffffffu);
    a->count++;
}

void tw_pgarray_text(tw_pgarray *a, const char *s)
{
    if (!s)
        tw_pgarray_null(a);
    else
        element(a, s, strlen(s));
}

void tw_pgarray_bytes(tw_pgarray *a, const void *p, size_t n) { element(a, p, n); }

void tw_pgarray_int2(tw_pgarray *a, int16_t v)
{
    uint8_t b[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    element(a, b, 2);
}

void tw_pgarray_int8(tw_pgarray *a, int64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
    element(a, b, 8);
}

void tw_pgarray_float8(tw_pgarray *a, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    tw_pgarray_int8(a, (int64_t)bits);
}

void tw_pgarray_timestamptz(tw_pgarray *a, int64_t unix_seconds)
{
    tw_pgarray_int8(a, (unix_seconds - PG_EPOCH_OFFSET) * 1000000LL);
}

void tw_pgarray_jsonb(tw_pgarray *a, const char *json, size_t len)
{
    if (len >= INT32_MAX) {
        a->failed = 1;
        return;
    }
    put32(a, (uint32_t)len + 1);
    uint8_t version = 1;
    put(a, &version, 1);
    put(a, json, len);
    a->count++;
}

void tw_pgarray_json(tw_pgarray *a, const char *json, size_t len) { element(a, json, len); }

int tw_pgarray_finish(tw_pgarray *a)
{
    if (a->failed || a->len < HEADER)
        return -1;
    write32_at(a->data + 12, a->count);
    return 0;
}

void tw_pgarray_free(tw_pgarray *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}
