/* tw_recfile: length-delimited record files, the format of `tidewatch
 * simulate --out` (records.pb) and `tidewatch ingest FILE`: each record is
 * a varint (protobuf base-128, at most 10 bytes) giving its length, then
 * that many bytes (a packed tidewatch.v1.Record). protobuf's
 * writeDelimitedTo / parseDelimitedFrom write and read the same format.
 * Pure: works on a buffer in memory. */
#ifndef TW_RECFILE_H
#define TW_RECFILE_H

#include <stddef.h>
#include <stdint.h>

/* Largest record accepted (the ingest daemon's own default limit is far
 * below: 4 MiB per message). */
#define TW_RECFILE_MAX_RECORD (64u * 1024 * 1024)

typedef enum {
    TW_RECFILE_END = 0,       /* no more records (*off == len) */
    TW_RECFILE_RECORD = 1,    /* *rec, *rlen set; *off moved past it */
    TW_RECFILE_TRUNCATED = -1,/* the length or the record runs past the end */
    TW_RECFILE_BAD_LENGTH = -2,/* a varint over 10 bytes, or a length over TW_RECFILE_MAX_RECORD */
} tw_recfile_status;

/* The record at buf[*off..len). On TW_RECFILE_RECORD, *rec points into buf
 * (borrowed) and *off is advanced; on any other status nothing is changed. */
tw_recfile_status tw_recfile_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **rec,
                                  size_t *rlen) __attribute__((warn_unused_result));

/* Write the length prefix of a record of `len` bytes into out (room for 10
 * bytes); returns the bytes written. */
size_t tw_recfile_prefix(uint8_t out[10], size_t len);

/* Words for a status ("truncated record", ...). */
const char *tw_recfile_status_text(tw_recfile_status st);

#endif
