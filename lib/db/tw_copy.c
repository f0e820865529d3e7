#include "tw_copy.h"

#include <stdlib.h>
#include <string.h>

/* Seconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
#define PG_EPOCH_OFFSET 946684800LL
#define TEXT_OID 25

static const uint8_t header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0,
                                   0,   0,   0,   0,   0,   0,   0,    0};

static int reserve(tw_copy *c, size_t n)
{
    if (c->failed)
        return -1;
    if (c->len + n <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + n)
        cap *= 2;
    uint8_t *d = realloc(c->data, cap);
    if (!d) {
        c->failed = 1;
        return -1;
    }
    c->data = d;
    c->cap = cap;
    return 0;
}

static void put(tw_copy *c, const void *p, size_t n)
{
    if (reserve(c, n) != 0)
        return;
    if (n)
        memcpy(c->data + c->len, p, n);
    c->len += n;
}

static void put_be(tw_copy *c, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(c, b, (size_t)bytes);
}

/* Every field starts with its length; count fields against the row. */
static void field(tw_copy *c, int32_t len)
{
    if (c->fields_left-- <= 0)
        c->failed = 1;
    put_be(c, (uint32_t)len, 4);
}

int tw_copy_begin(tw_copy *c)
{
    c->len = 0;
    c->failed = 0;
    c->fields_left = 0;
    put(c, header, sizeof header);
    return c->failed ? -1 : 0;
}

void tw_copy_row(tw_copy *c, int16_t nfields)
{
    if (c->fields_left != 0)
        c->failed = 1;
    c->fields_left = nfields;
    put_be(c, (uint16_t)nfields, 2);
}

void tw_copy_null(tw_copy *c) { field(c, -1); }

void tw_copy_int2(tw_copy *c, int16_t v)
{
    field(c, 2);
    put_be(c, (uint16_t)v, 2);
}

void tw_copy_int4(tw_copy *c, int32_t v)
{
    field(c, 4);
    put_be(c, (uint32_t)v, 4);
}

void tw_copy_int8(tw_copy *c, int64_t v)
{
    field(c, 8);
    put_be(c, (uint64_t)v, 8);
}

void tw_copy_text(tw_copy *c, const char *s)
{
    if (!s) {
        tw_copy_null(c);
        return;
    }
    size_t n = strlen(s);
    if (n > INT32_MAX) {
        c->failed = 1;
        return;
    }
    field(c, (int32_t)n);
    put(c, s, n);
}

void tw_copy_bytea(tw_copy *c, const void *p, size_t n)
{
    if (n > INT32_MAX) {
        c->failed = 1;
        return;
    }
    field(c, (int32_t)n);
    put(c, p, n);
}

void tw_copy_timestamptz(tw_copy *c, int64_t unix_seconds)
{
    tw_copy_int8(c, (unix_seconds - PG_EPOCH_OFFSET) * 1000000LL);
}

void tw_copy_jsonb(tw_copy *c, const char *json, size_t len)
{
    if (len >= INT32_MAX) {
        c->failed = 1;
        return;
    }
    field(c, (int32_t)len + 1);
    uint8_t version = 1;
    put(c, &version, 1);
    put(c, json, len);
}

void tw_copy_text_array(tw_copy *c, const char *const *items, size_t n)
{
    if (n == 0) {
        /* ndim 0: the empty array */
        field(c, 12);
        put_be(c, 0, 4);
        put_be(c, 0, 4);
        put_be(c, TEXT_OID, 4);
        return;
    }
    size_t total = 20;
    for (size_t i = 0; i < n; i++)
        total += 4 + strlen(items[i]);
    if (total > INT32_MAX || n > INT32_MAX) {
        c->failed = 1;
        return;
    }
    field(c, (int32_t)total);
    put_be(c, 1, 4);        /* ndim */
    put_be(c, 0, 4);        /* no NULLs */
    put_be(c, TEXT_OID, 4); /* element type */
    put_be(c, (uint32_t)n, 4);
    put_be(c, 1, 4); /* lower bound */
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]);
        put_be(c, (uint32_t)len, 4);
        put(c, items[i], len);
    }
}

int tw_copy_end(tw_copy *c)
{
    if (c->fields_left != 0)
        c->failed = 1;
    put_be(c, 0xffff, 2);
    return c->failed ? -1 : 0;
}

void tw_copy_reset(tw_copy *c)
{
    c->len = 0;
    c->failed = 0;
    c->fields_left = 0;
}

void tw_copy_free(tw_copy *c)
{
    free(c->data);
    memset(c, 0, sizeof *c);
}
