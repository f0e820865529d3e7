/* tw_pbwalk: step through the top-level fields of serialized protobuf bytes
 * without decoding them, to find the exact bytes of embedded messages
 * (each record of a batch as submitted, each file of a descriptor set). */
#ifndef TW_PBWALK_H
#define TW_PBWALK_H

#include <stddef.h>
#include <stdint.h>

typedef struct tw_pb_field {
    uint32_t number;      /* field number, >= 1 */
    unsigned wire_type;   /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t varint;      /* wire type 0 */
    const uint8_t *data;  /* wire type 2: the payload; 1 and 5: the bytes */
    size_t len;
} tw_pb_field;

/* Read the field at *pos and advance past it. Returns 1 with *f filled, 0
 * at the end of the bytes, -1 when the bytes are not a well-formed message
 * (truncated, field number 0 or above 2^29-1, groups, wire types 6 and 7). */
int tw_pb_next(const uint8_t *p, size_t len, size_t *pos, tw_pb_field *f)
    __attribute__((warn_unused_result));

#endif
