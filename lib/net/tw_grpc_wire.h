/* tw_grpc_wire: the gRPC-over-HTTP/2 wire format, without any I/O.
 *
 * Length-prefixed message framing (1 byte compressed flag, 4 bytes
 * big-endian length, payload), reassembly across arbitrary DATA frame
 * boundaries, grpc-timeout parsing, grpc-message percent-encoding, status
 * code names, base64 for "-bin" metadata, and gzip for compressed messages.
 * Everything takes bytes or values and returns values, so it is unit-tested
 * and fuzzed alone. */
#ifndef TW_GRPC_WIRE_H
#define TW_GRPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define TW_WUR __attribute__((warn_unused_result))

/* gRPC status codes (doc/statuscodes.md). */
typedef enum {
    TW_GRPC_OK = 0,
    TW_GRPC_CANCELLED = 1,
    TW_GRPC_UNKNOWN = 2,
    TW_GRPC_INVALID_ARGUMENT = 3,
    TW_GRPC_DEADLINE_EXCEEDED = 4,
    TW_GRPC_NOT_FOUND = 5,
    TW_GRPC_ALREADY_EXISTS = 6,
    TW_GRPC_PERMISSION_DENIED = 7,
    TW_GRPC_RESOURCE_EXHAUSTED = 8,
    TW_GRPC_FAILED_PRECONDITION = 9,
    TW_GRPC_ABORTED = 10,
    TW_GRPC_OUT_OF_RANGE = 11,
    TW_GRPC_UNIMPLEMENTED = 12,
    TW_GRPC_INTERNAL = 13,
    TW_GRPC_UNAVAILABLE = 14,
    TW_GRPC_DATA_LOSS = 15,
    TW_GRPC_UNAUTHENTICATED = 16,
} tw_grpc_status;

#define TW_GRPC_DEFAULT_MAX_MESSAGE (4u * 1024u * 1024u)
#define TW_GRPC_PREFIX_LEN 5

/* "OK", "CANCELLED", ... ; "UNKNOWN" for codes outside 0..16. */
const char *tw_grpc_status_name(int code);

/* ---- Reassembly ------------------------------------------------------ */

/* Result of tw_grpc_decoder_feed. */
typedef enum {
    TW_GRPC_DECODE_OK = 0,        /* all input consumed; messages delivered */
    TW_GRPC_DECODE_OVERSIZE = -1, /* a prefix announced more than max_len */
    TW_GRPC_DECODE_ABORTED = -2,  /* the callback returned non-zero */
    TW_GRPC_DECODE_NOMEM = -3,
    TW_GRPC_DECODE_PAUSED = 1,    /* feed_some only: the callback asked to pause */
} tw_grpc_decode_result;

/* Called once per complete message. `data` is valid only during the call
 * (it may point into the input or into the decoder's buffer). `compressed`
 * is the flag byte's value (0 or 1; other values are passed through as 1).
 * Return 0 to continue, non-zero to stop decoding (TW_GRPC_MESSAGE_PAUSE
 * has a meaning of its own for tw_grpc_decoder_feed_some). */
typedef int (*tw_grpc_message_cb)(void *arg, int compressed, const uint8_t *data, size_t len);

/* Callback return value for tw_grpc_decoder_feed_some: this message was
 * taken, stop before the next one without failing. */
#define TW_GRPC_MESSAGE_PAUSE 2

/* First allocation for a payload split across feeds; the buffer then
 * doubles (capped at the announced length) as bytes arrive, so memory
 * follows the bytes received, not the length a prefix announces. */
#define TW_GRPC_DECODER_INITIAL_CAP (16u * 1024u)

typedef struct tw_grpc_decoder {
    size_t max_len;      /* largest accepted payload */
    uint8_t prefix[TW_GRPC_PREFIX_LEN];
    size_t prefix_have;  /* bytes of the prefix seen so far */
    uint8_t *buf;        /* payload being assembled (owned) */
    size_t cap;          /* bytes allocated at buf */
    size_t want;         /* payload length announced by the prefix */
    size_t have;         /* payload bytes assembled so far */
    int failed;          /* sticky: after an error, feed returns it again */
} tw_grpc_decoder;

/* Prepare a decoder accepting payloads of at most max_len bytes. */
void tw_grpc_decoder_init(tw_grpc_decoder *d, size_t max_len);

/* Free the decoder's buffer; the struct may be re-initialised. */
void tw_grpc_decoder_free(tw_grpc_decoder *d);

/* Feed `len` bytes. Each completed message is passed to cb, including
 * zero-length ones. Whole messages already inside the input are delivered
 * without copying. After an error (including ABORTED) the decoder stays
 * failed and every later feed returns the same result. */
tw_grpc_decode_result tw_grpc_decoder_feed(tw_grpc_decoder *d, const uint8_t *in, size_t len,
                                           tw_grpc_message_cb cb, void *arg) TW_WUR;

/* Like tw_grpc_decoder_feed, and the callback may also return
 * TW_GRPC_MESSAGE_PAUSE: the message it was given counts as delivered and
 * decoding stops right after it with TW_GRPC_DECODE_PAUSED, the decoder
 * still healthy (between two messages). *used is set to the number of input
 * bytes taken in every case (all of them unless PAUSED; the caller keeps
 * in[*used..len) and feeds it again later). */
tw_grpc_decode_result tw_grpc_decoder_feed_some(tw_grpc_decoder *d, const uint8_t *in,
                                                size_t len, tw_grpc_message_cb cb, void *arg,
                                                size_t *used) TW_WUR;

/* True when no partial message is pending and the decoder has not failed
 * (a clean end of stream). */
int tw_grpc_decoder_idle(const tw_grpc_decoder *d);

/* Input bytes the decoder has taken that belong to a message not yet
 * delivered (prefix and payload so far); 0 between messages. */
size_t tw_grpc_decoder_pending(const tw_grpc_decoder *d);

/* Bytes the decoder has allocated right now (its payload buffer). */
size_t tw_grpc_decoder_allocated(const tw_grpc_decoder *d);

/* Write the 5-byte prefix for a payload of `len` bytes into out. */
void tw_grpc_prefix_write(uint8_t out[TW_GRPC_PREFIX_LEN], int compressed, uint32_t len);

/* ---- Metadata values -------------------------------------------------- */

/* Parse a grpc-timeout value ("1S", "100m", at most 8 digits and one of
 * H M S m u n). Returns 0 and sets *out_ns (saturating at INT64_MAX), or -1
 * when malformed. */
int tw_grpc_timeout_parse(const char *s, size_t len, int64_t *out_ns) TW_WUR;

/* Format a timeout in nanoseconds as a grpc-timeout value with the finest
 * unit that fits in 8 digits (rounding up). out needs 10 bytes. */
void tw_grpc_timeout_format(int64_t ns, char out[10]);

/* Percent-encode a grpc-message value (doc/PROTOCOL-HTTP2.md: bytes outside
 * 0x20..0x7E, and '%', become %XX). Returns a malloc'd NUL-terminated
 * string, or NULL on allocation failure. */
char *tw_grpc_percent_encode(const char *s, size_t len) TW_WUR;

/* Decode a percent-encoded grpc-message; malformed escapes are kept as-is
 * (the spec says decode leniently). Returns malloc'd NUL-terminated string
 * (may contain embedded NULs; *out_len if non-NULL), or NULL on ENOMEM. */
char *tw_grpc_percent_decode(const char *s, size_t len, size_t *out_len) TW_WUR;

/* Base64 for "-bin" metadata. Encoding emits unpadded standard base64.
 * Decoding accepts padded and unpadded input. Both return malloc'd buffers
 * (NUL-terminated for convenience), or NULL on malformed input / ENOMEM. */
char *tw_grpc_base64_encode(const uint8_t *in, size_t len, size_t *out_len) TW_WUR;
uint8_t *tw_grpc_base64_decode(const char *in, size_t len, size_t *out_len) TW_WUR;

/* True if the key is a binary metadata key (ends in "-bin"). */
int tw_grpc_key_is_bin(const char *key, size_t len);

/* ---- Compression ------------------------------------------------------ */

/* gzip-compress `in`. Returns 0 and a malloc'd buffer, or -1. */
int tw_grpc_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len) TW_WUR;

/* gunzip `in`, refusing to produce more than max_out bytes. Returns 0 with a
 * malloc'd buffer (never NULL, even for empty output), -1 on corrupt input,
 * -2 when the output would exceed max_out. Concatenated gzip members are
 * accepted (RFC 1952); trailing bytes that are not a member are corrupt. */
int tw_grpc_gunzip(const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
                   size_t *out_len) TW_WUR;

#endif
