/* tw_pgarray: one-dimensional PostgreSQL arrays in binary send format, to
 * pass a whole batch as a handful of parameters ($1::text[], ...) and
 * unnest() them in one statement. No I/O. */
#ifndef TW_PGARRAY_H
#define TW_PGARRAY_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define TW_OID_BYTEA 17
#define TW_OID_INT2 21
#define TW_OID_INT8 20
#define TW_OID_FLOAT8 701
#define TW_OID_TEXT 25
#define TW_OID_TIMESTAMPTZ 1184
#define TW_OID_JSON 114
#define TW_OID_JSONB 3802

typedef struct tw_pgarray {
    uint8_t *data;
    size_t len, cap;
    uint32_t count; /* elements added */
    int failed;     /* sticky allocation failure */
} tw_pgarray;

/* Start an array of elements of type `oid` (one of the TW_OID_* above).
 * The element count is patched in by tw_pgarray_finish. `a` is zeroed
 * ({0}) or an earlier array, whose buffer is reused. */
void tw_pgarray_begin(tw_pgarray *a, Oid oid);

void tw_pgarray_null(tw_pgarray *a);
void tw_pgarray_text(tw_pgarray *a, const char *s); /* NULL: SQL NULL */
void tw_pgarray_bytes(tw_pgarray *a, const void *p, size_t n); /* bytea */
void tw_pgarray_int2(tw_pgarray *a, int16_t v);
void tw_pgarray_int8(tw_pgarray *a, int64_t v);
void tw_pgarray_timestamptz(tw_pgarray *a, int64_t unix_seconds);
void tw_pgarray_float8(tw_pgarray *a, double v);
void tw_pgarray_jsonb(tw_pgarray *a, const char *json, size_t len);
void tw_pgarray_json(tw_pgarray *a, const char *json, size_t len); /* json: the text itself */

/* Patch the header. Returns 0 with the parameter in data/len (binary
 * format), or -1 if anything failed. */
int tw_pgarray_finish(tw_pgarray *a) __attribute__((warn_unused_result));

void tw_pgarray_free(tw_pgarray *a);

#endif
