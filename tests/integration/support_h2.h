/* A raw HTTP/2 client for tests that must send what a stock client never
 * does: hand-made frames and HPACK, DATA exactly as far as the server's
 * flow-control windows allow, a peer that stops reading. Responses are
 * parsed frame by frame (HPACK through nghttp2's inflater) into per-stream
 * results. Blocking socket I/O with poll; every wait is bounded. */
#ifndef TW_TEST_SUPPORT_H2_H
#define TW_TEST_SUPPORT_H2_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

#define TW_H2_MAX_STREAMS 512 /* client stream ids 1, 3, ..., 1023 */

typedef struct tw_h2_stream {
    char http_status[8];
    char grpc_status[8];
    char grpc_message[256];
    int ended;         /* END_STREAM or RST_STREAM received */
    int rst;           /* RST_STREAM received */
    uint32_t rst_code;
    size_t data_bytes; /* DATA payload received */
    int64_t window;    /* our send window on this stream */
} tw_h2_stream;

typedef struct tw_h2 {
    int fd;
    nghttp2_hd_inflater *inflater;
    uint8_t *rbuf; /* unparsed input */
    size_t rlen, rcap;
    int32_t hdr_stream; /* header block in progress (CONTINUATION) */
    uint8_t *hdr_buf;
    size_t hdr_len;
    int hdr_end_stream;
    int settings_seen;   /* the server's SETTINGS arrived */
    int64_t initial_window; /* server's SETTINGS_INITIAL_WINDOW_SIZE */
    int64_t conn_window;    /* our connection-level send window */
    uint32_t max_concurrent; /* server's SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t max_header_list;
    int goaway;
    uint32_t goaway_code;
    char goaway_debug[128];
    int eof; /* the server closed (EOF or reset) */
    int send_timeout_ms; /* how long a write may block (0: 10 s) */
    size_t bytes_read;
    tw_h2_stream streams[TW_H2_MAX_STREAMS];
} tw_h2;

/* Connect to 127.0.0.1:port. With `preface`, send the client preface and
 * an empty SETTINGS frame. Asserts on failure. */
void tw_h2_connect(tw_h2 *h, int port, int preface);
/* The same with the socket's receive buffer set to `rcvbuf` bytes before
 * connecting (a small one keeps the kernel from absorbing what the server
 * sends to a client that does not read). */
void tw_h2_connect_rcvbuf(tw_h2 *h, int port, int preface, int rcvbuf);
void tw_h2_close(tw_h2 *h);

/* The stream's result slot (odd client ids only). */
tw_h2_stream *tw_h2_stream_of(tw_h2 *h, int32_t id);

/* Write one frame (blocking, at most 10 s). Returns 0, or -1 if the server
 * closed the connection. */
int tw_h2_send_frame(tw_h2 *h, uint8_t type, uint8_t flags, int32_t id, const void *payload,
                     size_t len);

/* An HPACK header block for a gRPC request to `path`: :method POST,
 * :scheme http, :path, :authority, content-type application/grpc, te
 * trailers, all literals without indexing (the dynamic table is left
 * alone). Returns its length (buf needs 64 + strlen(path) bytes). */
size_t tw_h2_grpc_request_block(uint8_t *buf, const char *path);

/* Send HEADERS (END_HEADERS, and END_STREAM if end_stream) carrying the
 * block from tw_h2_grpc_request_block for `path`. */
int tw_h2_send_request(tw_h2 *h, int32_t id, const char *path, int end_stream);

/* Send DATA on a stream within the server's flow-control windows, in
 * frames of at most 16384 bytes, reading (and answering SETTINGS/PING)
 * while waiting for window. Gives up when no window arrives for
 * `stall_ms`. Returns the bytes sent (END_STREAM goes with the last frame
 * only if everything was sent). */
size_t tw_h2_send_data(tw_h2 *h, int32_t id, const uint8_t *data, size_t len, int end_stream,
                       int stall_ms);

/* Read and process what the server sends for up to `ms` milliseconds (or
 * until EOF). Returns the number of bytes read. */
size_t tw_h2_pump(tw_h2 *h, int ms);

/* Pump until the stream has ended (or `ms` pass); returns ended. */
int tw_h2_wait_stream(tw_h2 *h, int32_t id, int ms);

/* Pump until EOF (or `ms` pass); returns eof. */
int tw_h2_wait_eof(tw_h2 *h, int ms);

/* One unary gRPC call with an empty request message on a fresh stream
 * `id`; waits up to `ms` and returns the grpc-status as a number (-1 if
 * none arrived). */
int tw_h2_unary_empty(tw_h2 *h, int32_t id, const char *path, int ms);

#endif
