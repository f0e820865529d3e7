/* tw_grpc_client: a gRPC client over cleartext HTTP/2 (prior-knowledge h2c)
 * on nghttp2 and libevent.
 *
 * A channel names one server ("host:port") and multiplexes any number of
 * calls over one HTTP/2 connection, which it opens on the first call and
 * opens again on the next call after the old one failed or was drained by a
 * GOAWAY. Calls are asynchronous: start one, send request messages, half-close,
 * and get callbacks for the response headers, each response message and,
 * exactly once, the final status. Blocking helpers on top (tw_grpc_unary,
 * tw_grpc_server_stream, tw_grpc_client_stream) run the event loop until the
 * call is over; they serve the CLI and tests.
 *
 * Threading and reentrancy: everything runs on the channel's event_base
 * thread. Callbacks may start, send on, half-close and cancel calls (also the
 * call they are about); they must not free the channel nor run a blocking
 * helper.
 *
 * The process must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)): a write to a
 * connection the server closed would otherwise kill it. */
#ifndef TW_GRPC_CLIENT_H
#define TW_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "tw_grpc_wire.h"

struct event_base;

typedef struct tw_grpc_channel tw_grpc_channel;
typedef struct tw_grpc_ccall tw_grpc_ccall;

/* One metadata entry. Keys are lower case. For "-bin" keys the value is the
 * raw bytes (base64 is applied on the wire, and removed on receipt);
 * otherwise it is printable ASCII text. Received values are always
 * NUL-terminated as well, so text values can be used as C strings.
 * When passing metadata in, value_len 0 means strlen(value). */
typedef struct tw_grpc_md {
    const char *key;
    const char *value;
    size_t value_len;
} tw_grpc_md;

/* First entry with this key in md[0..n), or NULL. */
const tw_grpc_md *tw_grpc_md_find(const tw_grpc_md *md, size_t n, const char *key);

/* Free an array of metadata owned by the caller (as in tw_grpc_result):
 * every key and value, then the array. NULL is fine. */
void tw_grpc_md_free(tw_grpc_md *md, size_t n);

/* Per-call options; a NULL pointer means all defaults. */
typedef struct tw_grpc_call_opts {
    /* Deadline from the start of the call. 0: none (no grpc-timeout header).
     * Otherwise grpc-timeout is sent and the deadline is also enforced
     * locally: the call ends with DEADLINE_EXCEEDED and the stream is reset
     * (RST_STREAM CANCEL). */
    int64_t timeout_ms;
    /* Request metadata (e.g. {"authorization", "Bearer ..."}); keys must be
     * lower case and not reserved (":..." , "grpc-...", "content-type", "te").
     * Copied by tw_grpc_channel_start. */
    const tw_grpc_md *metadata;
    size_t metadata_count;
    /* Largest response message accepted (after decompression); larger ones
     * end the call with RESOURCE_EXHAUSTED and reset the stream. 0:
     * TW_GRPC_DEFAULT_MAX_MESSAGE (4 MiB). */
    size_t max_recv_message;
} tw_grpc_call_opts;

/* Callbacks of an asynchronous call; any may be NULL. Pointers passed to
 * them are valid during the callback only. */
typedef struct tw_grpc_client_handlers {
    /* Response headers (initial metadata) arrived. Not called for a
     * trailers-only response. */
    void (*on_headers)(tw_grpc_ccall *call, const tw_grpc_md *md, size_t n, void *arg);
    /* One response message (decompressed). */
    void (*on_message)(tw_grpc_ccall *call, const uint8_t *msg, size_t len, void *arg);
    /* The call is over: called exactly once, with the gRPC status, its
     * message (percent-decoded UTF-8; "" when none, never NULL) and the
     * trailing metadata. After it returns the call pointer is dead. It can
     * be called from inside tw_grpc_ccall_cancel and from inside
     * tw_grpc_channel_free, never from inside tw_grpc_channel_start. */
    void (*on_close)(tw_grpc_ccall *call, int status, const char *message,
                     const tw_grpc_md *trailers, size_t n, void *arg);
} tw_grpc_client_handlers;

/* ---- Channels --------------------------------------------------------- */

/* Create a channel to "host:port" (a name such as "localhost", an IPv4
 * address, or "[v6]:port") on `base`. The name is resolved now, with the
 * system resolver (blocking: meant for numeric addresses and names from
 * /etc/hosts); each connection tries the addresses in order. Nothing is
 * connected until the first call. Returns NULL with a reason in err on a
 * malformed address, a resolution failure or allocation failure. */
tw_grpc_channel *tw_grpc_channel_new(struct event_base *base, const char *hostport, char *err,
                                     size_t errlen) TW_WUR;

/* Free the channel. Calls still running end with CANCELLED ("channel
 * closed"): their on_close runs from here. Connections are closed at once.
 * Must not be called from inside a callback of this channel. NULL is fine. */
void tw_grpc_channel_free(tw_grpc_channel *ch);

/* How many connections the channel has opened so far (for tests and
 * diagnostics: many calls share one; a GOAWAY or failure leads to another). */
unsigned tw_grpc_channel_connections(const tw_grpc_channel *ch);

/* How many calls the channel holds in memory: running ones, and finished
 * ones nghttp2 still refers to (released on a later turn of the loop). For
 * tests and diagnostics: it returns to 0 when the channel is idle. */
size_t tw_grpc_channel_calls(const tw_grpc_channel *ch);

/* The event base the channel runs on. */
struct event_base *tw_grpc_channel_base(const tw_grpc_channel *ch);

/* ---- Asynchronous calls ----------------------------------------------- */

/* Start a call to `path` ("/package.Service/Method"). `opts` and `h` are
 * copied (opts may be NULL); `arg` is passed to every handler. The request
 * headers go out on the next turn of the event loop, together with any
 * message sent before then. Returns the call, owned by the channel until
 * on_close returns, or NULL on invalid arguments (path not starting with '/',
 * bad metadata key), allocation failure, or a channel being freed; on NULL
 * no handler is ever called. Failures after that (connection refused,
 * deadline, ...) arrive through on_close. */
tw_grpc_ccall *tw_grpc_channel_start(tw_grpc_channel *ch, const char *path,
                                     const tw_grpc_call_opts *opts,
                                     const tw_grpc_client_handlers *h, void *arg) TW_WUR;

/* Queue one request message (copied; framed with the 5-byte prefix,
 * uncompressed). The bytes leave as HTTP/2 flow control allows. Returns 0,
 * or -1 if the call is over, the request side was already half-closed, the
 * message is larger than 4 GiB - 1, or on allocation failure. */
int tw_grpc_ccall_send(tw_grpc_ccall *call, const uint8_t *msg, size_t len) TW_WUR;

/* Half-close: no more request messages; END_STREAM follows the queued ones.
 * Calling it again, or after the call is over, does nothing. */
void tw_grpc_ccall_close_send(tw_grpc_ccall *call);

/* Cancel the call: the stream is reset (RST_STREAM CANCEL) and on_close is
 * called from here with CANCELLED, unless the call was already over. */
void tw_grpc_ccall_cancel(tw_grpc_ccall *call);

/* Request bytes queued on this call that nghttp2 has not taken yet (flow
 * control). A streaming sender can keep this bounded. */
size_t tw_grpc_ccall_pending(const tw_grpc_ccall *call);

/* The call's path. */
const char *tw_grpc_ccall_path(const tw_grpc_ccall *call);

/* The response headers received so far (none before on_headers, and none
 * for a trailers-only response); *n is set. Valid while the call is. */
const tw_grpc_md *tw_grpc_ccall_headers(const tw_grpc_ccall *call, size_t *n);

/* ---- Status mapping --------------------------------------------------- */

/* gRPC status for an HTTP response without grpc-status
 * (doc/http-grpc-status-mapping.md): 400 INTERNAL, 401 UNAUTHENTICATED,
 * 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE,
 * anything else UNKNOWN. */
int tw_grpc_status_from_http(int http_status);

/* ---- Blocking helpers ------------------------------------------------- */

/* Outcome of a blocking call. Zero it (or not: the helpers overwrite it),
 * and release it with tw_grpc_result_free. */
typedef struct tw_grpc_result {
    int status;       /* gRPC status code */
    char *message;    /* percent-decoded status message; "" when none */
    uint8_t *data;    /* the response message (unary, client stream); may be NULL when len 0 */
    size_t len;
    tw_grpc_md *headers; /* initial metadata */
    size_t nheaders;
    tw_grpc_md *trailers; /* trailing metadata */
    size_t ntrailers;
} tw_grpc_result;

/* Free what a result holds and zero it. */
void tw_grpc_result_free(tw_grpc_result *r);

/* A request message for tw_grpc_client_stream. */
typedef struct tw_grpc_buf {
    const uint8_t *data;
    size_t len;
} tw_grpc_buf;

/* Unary call: send `req`, half-close, wait for the one response. Runs the
 * channel's event loop (EVLOOP_ONCE at a time) until the call is over, so
 * it must not be called from inside that loop. Fills *out (status, message,
 * response bytes, metadata) and returns out->status. A successful status
 * with no response message, or more than one, becomes INTERNAL. */
int tw_grpc_unary(tw_grpc_channel *ch, const char *path, const uint8_t *req, size_t len,
                  const tw_grpc_call_opts *opts, tw_grpc_result *out);

/* Server-streaming call: send `req`, half-close, and call on_msg for each
 * response message; a non-zero return from on_msg cancels the call
 * (status CANCELLED). out->data stays empty. Returns out->status. */
int tw_grpc_server_stream(tw_grpc_channel *ch, const char *path, const uint8_t *req, size_t len,
                          const tw_grpc_call_opts *opts,
                          int (*on_msg)(void *arg, const uint8_t *msg, size_t len), void *arg,
                          tw_grpc_result *out);

/* Client-streaming call: send the n messages (respecting flow control),
 * half-close, and wait for the one response, as tw_grpc_unary. */
int tw_grpc_client_stream(tw_grpc_channel *ch, const char *path, const tw_grpc_buf *msgs,
                          size_t n, const tw_grpc_call_opts *opts, tw_grpc_result *out);

#endif
