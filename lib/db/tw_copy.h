/* tw_copy: rows in PostgreSQL's binary COPY format, built in memory.
 *
 * The fastest way to hand many rows to PostgreSQL is COPY ... FROM STDIN
 * (FORMAT binary). This module only builds the bytes (no I/O): a header,
 * then per row a field count and each field's length and value in network
 * byte order, then a trailer. Values use the types' binary send formats:
 * int2/int4/int8 big-endian, text and bytea raw, timestamptz as int64
 * microseconds since 2000-01-01, jsonb as version byte 1 plus the JSON
 * text, text[] as a one-dimensional array of OID 25. */
#ifndef TW_COPY_H
#define TW_COPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct tw_copy {
    uint8_t *data;
    size_t len, cap;
    int failed; /* sticky: an allocation failed */
    int16_t fields_left;
} tw_copy;

/* Start a buffer with the COPY BINARY header. Returns 0 or -1 (ENOMEM). */
int tw_copy_begin(tw_copy *c) __attribute__((warn_unused_result));

/* Start a row of n fields. Each field call below adds one field. */
void tw_copy_row(tw_copy *c, int16_t nfields);
void tw_copy_null(tw_copy *c);
void tw_copy_int2(tw_copy *c, int16_t v);
void tw_copy_int4(tw_copy *c, int32_t v);
void tw_copy_int8(tw_copy *c, int64_t v);
void tw_copy_text(tw_copy *c, const char *s); /* NULL writes SQL NULL */
void tw_copy_bytea(tw_copy *c, const void *p, size_t n);
/* Unix seconds (UTC) as timestamptz. */
void tw_copy_timestamptz(tw_copy *c, int64_t unix_seconds);
/* JSON text as jsonb. */
void tw_copy_jsonb(tw_copy *c, const char *json, size_t len);
/* n strings as text[] (n may be 0: an empty array). */
void tw_copy_text_array(tw_copy *c, const char *const *items, size_t n);

/* Append the trailer. Returns 0, or -1 if any step failed (out of memory
 * or a row given the wrong number of fields). */
int tw_copy_end(tw_copy *c) __attribute__((warn_unused_result));

/* Drop the bytes, keep the allocation for the next batch. */
void tw_copy_reset(tw_copy *c);
void tw_copy_free(tw_copy *c);

#endif
