/* tw_grpc_server: a gRPC server over cleartext HTTP/2 (prior-knowledge h2c)
 * on nghttp2 and libevent.
 *
 * Services register methods in a table; the server calls the method's
 * callbacks as a call progresses and the handler answers with
 * tw_grpc_call_send / tw_grpc_call_finish, now or later (for example after a
 * database result): nothing blocks the loop.
 *
 * Lifetime of a call: the server owns every tw_grpc_call. A handler may use
 * the pointer from on_start until it calls tw_grpc_call_finish or until its
 * on_cancel callback returns, whichever comes first; after that the pointer
 * is dead. on_cancel is called at most once, and never after finish. Per-call
 * state hangs off tw_grpc_call_set_data and is the handler's to free (in
 * on_cancel, or before finish). */
#ifndef TW_GRPC_SERVER_H
#define TW_GRPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "tw_grpc_wire.h"

struct event_base;

typedef struct tw_grpc_server tw_grpc_server;
typedef struct tw_grpc_call tw_grpc_call;

typedef enum {
    TW_GRPC_UNARY = 0,         /* one request, one response */
    TW_GRPC_SERVER_STREAM = 1, /* one request, many responses */
    TW_GRPC_CLIENT_STREAM = 2, /* many requests, one response */
    TW_GRPC_BIDI = 3,          /* many requests, many responses */
} tw_grpc_kind;

typedef struct tw_grpc_method {
    const char *path; /* "/package.Service/Method" (borrowed; must outlive server) */
    tw_grpc_kind kind;
    /* Headers arrived and the method matched. May be NULL. */
    void (*on_start)(tw_grpc_call *call, void *arg);
    /* One request message (decompressed). For unary and server-streaming
     * methods it is called exactly once, after the client half-closed, and
     * on_half_close follows at once. `msg` is valid during the call only. */
    void (*on_message)(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg);
    /* The client finished sending. May be NULL. */
    void (*on_half_close)(tw_grpc_call *call, void *arg);
    /* The call ended without tw_grpc_call_finish: the client cancelled
     * (RST_STREAM), the deadline passed, the connection closed or the server
     * is shutting down. The handler stops its work; the call is dead after
     * this returns. May be NULL. */
    void (*on_cancel)(tw_grpc_call *call, void *arg);
    void *arg; /* passed to every callback */
} tw_grpc_method;

/* Observer of finished calls (metrics, audit). `path` is the request path,
 * `status` the gRPC status sent (or TW_GRPC_CANCELLED), `seconds` the
 * duration. */
typedef void (*tw_grpc_observer_fn)(void *arg, const char *path, int status, double seconds);

/* Defaults for the zero fields of tw_grpc_server_config. */
#define TW_GRPC_DEFAULT_MAX_STREAMS 100
#define TW_GRPC_DEFAULT_MAX_CONNECTIONS 1024
#define TW_GRPC_DEFAULT_IDLE_TIMEOUT_MS (300 * 1000)
#define TW_GRPC_DEFAULT_HANDSHAKE_TIMEOUT_MS (10 * 1000)
#define TW_GRPC_DEFAULT_MAX_HEADER_LIST (64u * 1024u)
#define TW_GRPC_DEFAULT_MAX_HEADER_FIELDS 100
#define TW_GRPC_DEFAULT_MAX_CONN_INPUT (16u * 1024u * 1024u)
#define TW_GRPC_DEFAULT_MAX_CALL_OUTPUT (4u * 1024u * 1024u)
#define TW_GRPC_DEFAULT_MAX_CONN_OUTPUT (16u * 1024u * 1024u)

/* A request header block past the header limits is answered
 * RESOURCE_EXHAUSTED; one past this many times either limit ends its
 * connection (GOAWAY ENHANCE_YOUR_CALM), so a decompression bomb costs the
 * server a bounded number of field decodes, not the whole block. */
#define TW_GRPC_HEADER_ABUSE_FACTOR 4

/* Limits. A zero field takes its default (TW_GRPC_DEFAULT_*).
 *
 * Per connection the server holds at most: max_conn_input bytes of
 * request data (HTTP/2 flow control: the connection window is exactly
 * that, and bytes are handed back to the peer only when a message has been
 * delivered and released, so a client cannot make the server buffer more);
 * max_conn_output bytes of queued responses; max_streams calls, each with
 * at most max_header_list bytes of request headers. See README "Limits". */
typedef struct tw_grpc_server_config {
    size_t max_recv_message; /* 0: TW_GRPC_DEFAULT_MAX_MESSAGE */
    size_t max_send_message; /* 0: TW_GRPC_DEFAULT_MAX_MESSAGE */
    uint32_t max_concurrent_streams; /* per connection (SETTINGS_MAX_CONCURRENT_STREAMS) */
    /* Open connections; one more is accepted and closed at once, before
     * any HTTP/2 byte (clients see UNAVAILABLE and back off). */
    size_t max_connections;
    /* A connection with no open stream for this long gets GOAWAY and is
     * closed. Negative: never. */
    int64_t idle_timeout_ms;
    /* A connection that has not sent the client preface and its SETTINGS
     * within this long after accept is closed. Negative: never. */
    int64_t handshake_timeout_ms;
    /* Request header block, counted as RFC 9113 does (name + value + 32
     * per field), and its number of fields: a request over either gets a
     * trailers-only RESOURCE_EXHAUSTED and its headers are not kept. The
     * size is advertised as SETTINGS_MAX_HEADER_LIST_SIZE. */
    size_t max_header_list;
    size_t max_header_fields;
    /* Request bytes received and not yet released, per connection: the
     * HTTP/2 connection window. Raised to max_recv_message + 5 if lower,
     * which is also each stream's window. */
    size_t max_conn_input;
    /* Response bytes queued by handlers and not yet taken by HTTP/2, per
     * call and per connection. tw_grpc_call_send refuses a message that
     * would pass either (a message into an empty queue always fits). */
    size_t max_call_output;
    size_t max_conn_output;
    const char *log_name; /* e.g. "ingest"; borrowed */
} tw_grpc_server_config;

/* Counters for tests and metrics. */
typedef struct tw_grpc_server_stats {
    size_t connections;           /* open, as tw_grpc_server_connection_count */
    size_t calls;                 /* open calls on all connections */
    size_t input_buffered;        /* request bytes received, not yet released */
    size_t output_queued;         /* response bytes queued by handlers */
    uint64_t refused_connections; /* over max_connections */
    uint64_t accept_pauses;       /* accepting paused (EMFILE, ENFILE, ENOBUFS, ENOMEM) */
    uint64_t header_refusals;     /* requests over max_header_list / max_header_fields */
    uint64_t output_refusals;     /* tw_grpc_call_send refused over an output cap */
    uint64_t idle_closes;         /* connections closed by idle_timeout_ms */
    uint64_t handshake_timeouts;  /* connections closed by handshake_timeout_ms */
} tw_grpc_server_stats;

/* Create a server on `base`. `cfg` may be NULL for defaults. Returns NULL on
 * allocation failure. */
tw_grpc_server *tw_grpc_server_new(struct event_base *base, const tw_grpc_server_config *cfg)
    TW_WUR;

/* Add methods (copied by value; strings borrowed). Returns 0, or -1 if a
 * path is already registered or on allocation failure. */
int tw_grpc_server_add_methods(tw_grpc_server *s, const tw_grpc_method *methods, size_t n) TW_WUR;

/* Names of the registered services ("grpc.health.v1.Health", ...), for
 * reflection. Valid until the next add_methods. */
size_t tw_grpc_server_service_count(const tw_grpc_server *s);
const char *tw_grpc_server_service_name(const tw_grpc_server *s, size_t i);

/* Listen on "host:port" ("127.0.0.1:50051", "[::1]:0", "0.0.0.0:50051").
 * Port 0 picks a free port: see tw_grpc_server_port. Returns 0 or -1 with a
 * reason in err. */
int tw_grpc_server_listen(tw_grpc_server *s, const char *hostport, char *err, size_t errlen) TW_WUR;

/* The bound port (useful after listening on port 0), or -1. */
int tw_grpc_server_port(const tw_grpc_server *s);

void tw_grpc_server_set_observer(tw_grpc_server *s, tw_grpc_observer_fn fn, void *arg);

/* Open HTTP/2 connections right now. */
size_t tw_grpc_server_connection_count(const tw_grpc_server *s);

/* Fill *out with the server's counters. */
void tw_grpc_server_get_stats(const tw_grpc_server *s, tw_grpc_server_stats *out);

/* The limits in force (defaults applied). */
const tw_grpc_server_config *tw_grpc_server_get_config(const tw_grpc_server *s);

/* Graceful stop: close the listener, send GOAWAY on every connection, let
 * in-flight calls finish for up to grace_ms, then cancel what remains and
 * close. `done` is called once (from the loop) when every connection is
 * gone. Calling it twice has no further effect. */
void tw_grpc_server_shutdown(tw_grpc_server *s, int grace_ms, void (*done)(void *arg), void *arg);

/* Free the server. Any remaining connections are closed and their calls
 * cancelled. */
void tw_grpc_server_free(tw_grpc_server *s);

/* ---- Calls ---------------------------------------------------------- */

/* The request path, e.g. "/grpc.health.v1.Health/Check". */
const char *tw_grpc_call_path(const tw_grpc_call *c);

/* The peer, "ip:port". */
const char *tw_grpc_call_peer(const tw_grpc_call *c);

/* The first value of a request metadata key (lower case), or NULL. For
 * "-bin" keys the value is the base64 text as received. */
const char *tw_grpc_call_metadata(const tw_grpc_call *c, const char *key);

/* Iterate request metadata: returns 0 and sets key/value for i < count,
 * -1 past the end. Pseudo-headers and transport headers are excluded. */
int tw_grpc_call_metadata_at(const tw_grpc_call *c, size_t i, const char **key, const char **value);

/* Remaining time before the deadline in milliseconds; -1 when the call has
 * no deadline. */
int64_t tw_grpc_call_remaining_ms(const tw_grpc_call *c);

/* Whether the last request message had the compressed flag set. */
int tw_grpc_call_request_compressed(const tw_grpc_call *c);

void tw_grpc_call_set_data(tw_grpc_call *c, void *data);
void *tw_grpc_call_data(const tw_grpc_call *c);

/* Add response metadata. Headers must be added before the first send;
 * trailers before finish. Key and value are copied. Returns 0 or -1. */
int tw_grpc_call_add_header(tw_grpc_call *c, const char *key, const char *value) TW_WUR;
int tw_grpc_call_add_trailer(tw_grpc_call *c, const char *key, const char *value) TW_WUR;

/* Compress subsequent response messages with gzip when the client accepts
 * it (grpc-accept-encoding). Must be called before the first send. */
void tw_grpc_call_set_compress(tw_grpc_call *c, int on);

/* Queue one response message (copied). Returns 0, or -1 (nothing queued)
 * if the message is larger than the send limit, if it would take the call's
 * queue past max_call_output or the connection's past max_conn_output
 * (a peer that does not read), if the call is already finished, or on
 * allocation failure. After -1 the handler finishes the call, with
 * RESOURCE_EXHAUSTED unless it knows better; a streaming handler avoids it
 * by waiting for tw_grpc_call_on_writable. */
int tw_grpc_call_send(tw_grpc_call *c, const uint8_t *msg, size_t len) TW_WUR;

/* Like tw_grpc_call_send for one message, with a per-message choice to
 * compress (honoured only when the client accepts gzip). */
int tw_grpc_call_send_ex(tw_grpc_call *c, const uint8_t *msg, size_t len, int compress) TW_WUR;

/* Bytes queued for this call and not yet handed to the connection. A
 * streaming handler keeps this under a bound and waits for on_writable. */
size_t tw_grpc_call_pending(const tw_grpc_call *c);

/* Call fn once (from the loop) when the pending bytes fall to or below
 * low_water. Replaces any earlier registration. */
void tw_grpc_call_on_writable(tw_grpc_call *c, size_t low_water,
                              void (*fn)(tw_grpc_call *c, void *arg), void *arg);

/* Stop delivering this call's request messages until
 * tw_grpc_call_resume_input: on_message is not called (not even for bytes
 * already received), and the half-close waits behind them. Bytes that
 * arrive meanwhile are held, and the client's HTTP/2 window is not
 * refilled for them, so it stops sending once the stream's window (one
 * maximal message) is used: a handler that cannot keep up with a client
 * stream (a database writer, or a reader that does not read its answers)
 * bounds the server's memory. Other calls on the connection go on. Resuming
 * delivers the held messages from the event loop, never from inside the
 * resume call. A finished or cancelled call's pause is released
 * automatically. */
void tw_grpc_call_pause_input(tw_grpc_call *c);
void tw_grpc_call_resume_input(tw_grpc_call *c);

/* End the call with a status and an optional message (UTF-8; percent-encoded
 * on the wire). If nothing was sent yet, the response is trailers-only.
 * After this returns the call pointer is dead for the handler. */
void tw_grpc_call_finish(tw_grpc_call *c, int status, const char *message);

/* Convenience for unary handlers: send msg (if non-NULL) then finish OK. If
 * the send fails the call finishes with RESOURCE_EXHAUSTED. */
void tw_grpc_call_reply(tw_grpc_call *c, const uint8_t *msg, size_t len);

#endif
