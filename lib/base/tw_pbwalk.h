/* tw_pbwalk: protobuf wire bytes without decoding them.
 *
 * tw_pb_next steps through the top-level fields of serialized bytes, to find
 * the exact bytes of embedded messages (each record of a batch as
 * submitted, each file of a descriptor set).
 *
 * tw_pb_check walks a whole message against its protobuf-c descriptor
 * BEFORE it is unpacked: it finds what protobuf-c would accept silently
 * (unknown fields, field number 0 written as a padded key, singular
 * messages given twice, which protobuf-c merges at quadratic cost, a oneof
 * set twice) or reject without saying where, names the place with a field path, and
 * computes an upper bound of the memory protobuf-c's unpack will ask its
 * allocator for, so that a caller can refuse a hostile message before
 * spending that memory. It allocates nothing and runs in time linear in
 * the input. */
#ifndef TW_PBWALK_H
#define TW_PBWALK_H

#include <protobuf-c/protobuf-c.h>
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

/* ---- checking a message against its schema -------------------------------- */

typedef enum tw_pb_verdict {
    TW_PB_OK = 0,
    /* A field number the schema does not define. The walk goes on (the
     * message is still well-formed and `unpacked` covers it all); the first
     * one is reported. */
    TW_PB_UNKNOWN_FIELD,
    /* Not a well-formed message: truncated, a field key longer than 5
     * bytes, field number 0 or above 2^29-1, groups, wire types 6 and 7, a
     * varint longer than 10 bytes. The walk stops. */
    TW_PB_MALFORMED,
    /* A known field with a wire type its declared type cannot have. */
    TW_PB_WRONG_TYPE,
    /* A singular (not repeated) message field given more than once, or a
     * oneof set more than once. The protobuf encoding allows both (copies
     * of a message merge; the last oneof member wins), but no encoder
     * writes them, protobuf-c merges each copy of a message into the
     * previous ones with fresh copies of every repeated field (quadratic
     * time and memory), and it drops an earlier oneof member, unknown
     * fields and all, where protobuf would merge a repeated one. Refused. */
    TW_PB_REPEATED_SINGULAR,
    /* Messages nested deeper than TW_PB_MAX_DEPTH. */
    TW_PB_TOO_DEEP,
} tw_pb_verdict;

#define TW_PB_MAX_DEPTH 32
#define TW_PB_PATH_MAX 256

typedef struct tw_pb_report {
    tw_pb_verdict verdict; /* the first problem found, or TW_PB_OK */
    /* The message that holds the problem, as a field path from the top
     * ("" for the top level, else e.g. "purchase.items[0].equipment"),
     * truncated to fit. */
    char path[TW_PB_PATH_MAX];
    /* What is wrong there, for a person: "unknown field 99", "field number
     * 0", "field 4 (serials) has wire type 0; its type needs 2", ... */
    char reason[128];
    uint32_t number; /* the offending field's number (0: its key is bad) */
    size_t offset;   /* where its key starts in the input */
    /* Counted over the whole message (up to the first hard problem). */
    size_t fields;   /* fields, at every level */
    size_t messages; /* the top level and every embedded message */
    /* Upper bound of the bytes protobuf-c 1.4's unpack asks its allocator
     * for with these bytes, each request counted rounded up to 16 (the
     * arena's alignment). Meaningful when the verdict is OK or
     * UNKNOWN_FIELD. Saturates at SIZE_MAX. */
    size_t unpacked;
} tw_pb_report;

/* Walk `len` bytes at `p` as a message of type `d` and fill *out (always,
 * zeroed first). Returns 0 when the verdict is TW_PB_OK, 1 for
 * TW_PB_UNKNOWN_FIELD (well-formed but not clean), -1 for the others. */
int tw_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                tw_pb_report *out) __attribute__((warn_unused_result));

/* A short name for a verdict: "ok", "unknown_field", "malformed",
 * "wrong_type", "repeated_singular", "too_deep". */
const char *tw_pb_verdict_name(tw_pb_verdict v);

#endif
