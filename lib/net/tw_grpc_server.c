/* tw_grpc_server: gRPC over cleartext HTTP/2 on nghttp2 + libevent.
 *
 * Structure: a server owns a listener and a list of connections; each
 * connection owns an nghttp2 session, a bufferevent and a list of calls
 * (one per request stream). Bytes read from the socket go through
 * nghttp2_session_mem_recv; nghttp2's callbacks build calls, reassemble
 * messages (tw_grpc_wire) and dispatch to the method's callbacks. Responses
 * are queued per call in an evbuffer and pulled by nghttp2 through a data
 * provider; trailers follow when the queue is empty and the call finished.
 *
 * Memory is bounded per connection (see tw_grpc_server_config):
 *   - request headers: counted per stream in on_header_cb and refused past
 *     max_header_list / max_header_fields; nothing more is copied;
 *   - request data: automatic WINDOW_UPDATEs are off. A call's received
 *     DATA bytes are "consumed" (handed back to the peer's window) only
 *     when no longer held: once the message they belong to was delivered
 *     and the handler returned, or the call ended. Held bytes are a partial
 *     message in the decoder, a unary request waiting for its half-close,
 *     or bytes that arrived while the handler paused the call
 *     (call_sync_input keeps the count right). The connection window is
 *     max_conn_input, so that is all a peer can make us hold;
 *   - responses: tw_grpc_call_send refuses past max_call_output and
 *     max_conn_output; the socket buffer is capped by send_cb; and when
 *     nghttp2's own queue of control frames grows (a peer that sends but
 *     never reads), reading stops until it drains;
 *   - connections: max_connections, idle and handshake timeouts, and the
 *     listener pauses with backoff when accept runs out of descriptors.
 *
 * Re-entrancy rule: user callbacks run inside nghttp2 callbacks or from
 * deferred events; nothing is freed while nghttp2 may still reference it.
 * A call is freed only when nghttp2 closes its stream (or the connection
 * goes away); connections are closed only from top-level libevent
 * callbacks. */
#include "tw_grpc_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "tw_hostport.h"
#include "tw_log.h"
#include "tw_nghttp2_check.h"

/* Stop handing bytes to the socket buffer above this; resume on write. */
#define OUTPUT_WOULDBLOCK_THRESHOLD (256 * 1024)
/* Largest header block we send (our responses are small). */
#define MAX_SEND_HEADER_BLOCK (64 * 1024)
/* Stop reading a connection while nghttp2 holds more queued control
 * frames (RST_STREAM, GOAWAY, HEADERS...) than this for a peer that does
 * not read them; read again below the low mark. */
#define OUTBOUND_QUEUE_HIGH 1024
#define OUTBOUND_QUEUE_LOW 256
/* After an idle GOAWAY, a peer that does not read it is cut off after. */
#define GOAWAY_LINGER_MS 5000
/* Held input delivered per turn of the event loop after a resume. */
#define HELD_INPUT_SLICE (256 * 1024)
/* Accept backoff after EMFILE/ENFILE/ENOBUFS/ENOMEM: doubles up to max. */
#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 1000
/* At most one accept-error log line per this many seconds. */
#define ACCEPT_LOG_INTERVAL_S 10

typedef struct kv {
    char *key;
    char *value;
} kv;

typedef struct kv_list {
    kv *items;
    size_t n, cap;
} kv_list;

typedef struct conn conn;

struct tw_grpc_call {
    conn *conn;
    int32_t stream_id;
    const tw_grpc_method *method; /* NULL until headers matched */
    tw_grpc_call *prev, *next;    /* conn's list */

    /* request headers */
    char *path;
    char *content_type;
    char *grpc_encoding;
    int accepts_gzip;
    int64_t timeout_ns; /* -1: none */
    int has_timeout;
    kv_list metadata;
    size_t header_bytes;  /* name + value + 32 per field, this header block */
    size_t header_fields; /* fields in this header block */
    int headers_refused;  /* over a header limit: nothing more is kept */

    /* request data */
    tw_grpc_decoder decoder;
    int request_compressed;
    uint8_t *unary_msg; /* unary/server-stream: the one request, as received */
    size_t unary_len;
    int unary_compressed;
    int unary_count;
    size_t rx_unconsumed;    /* DATA bytes received, not yet handed back */
    struct evbuffer *held;   /* DATA bytes that arrived while paused */
    int in_input;            /* feeding the decoder: buffers are in use */
    int half_close_pending;  /* END_STREAM seen behind held bytes */
    struct event *input_ev;  /* delivers held bytes after a resume */

    /* response */
    struct evbuffer *out; /* framed messages not yet given to nghttp2 */
    kv_list headers, trailers;
    int compress;
    int headers_sent;
    int deferred;   /* data provider returned DEFERRED */
    int finished;   /* finish called (by handler or internally) */
    int trailers_submitted;
    int status;
    char *message;

    /* lifecycle */
    int started;      /* on_start called: handler owns the call */
    int input_paused; /* handler asked not to get messages for now */
    int cancelled;    /* on_cancel called */
    struct timespec t0;
    struct event *deadline_ev;
    struct event *writable_ev;
    size_t low_water;
    void (*writable_fn)(tw_grpc_call *, void *);
    void *writable_arg;
    void *user_data;
    tw_log_ctx log;
};

struct conn {
    tw_grpc_server *server;
    conn *prev, *next;
    struct bufferevent *bev;
    nghttp2_session *session;
    struct event *flush_ev;
    struct event *timer_ev;  /* handshake or idle deadline */
    tw_grpc_call *calls;
    size_t ncalls;
    size_t rx_unconsumed;    /* sum over calls */
    size_t out_pending;      /* sum of calls' out queues */
    char peer[INET6_ADDRSTRLEN + 8];
    int in_recv;        /* inside mem_recv: the read path sends afterwards */
    int goaway;         /* GOAWAY submitted */
    int handshake_done; /* client preface and SETTINGS received */
    int read_blocked;   /* reading stopped: nghttp2's queue is too long */
    int idle_goaway;    /* idle GOAWAY sent: the next timer closes */
    int closing;        /* conn_close running: no more nghttp2 calls */
};

struct tw_grpc_server {
    struct event_base *base;
    tw_grpc_server_config cfg;
    size_t stream_window, conn_window;
    tw_grpc_method *methods;
    size_t nmethods;
    char **services;
    size_t nservices;
    struct evconnlistener *listener;
    int port;
    conn *conns;
    size_t nconns;
    size_t ncalls;
    size_t rx_unconsumed;
    size_t out_pending;
    tw_grpc_server_stats stats;
    /* accept backoff and its rate-limited log */
    struct event *accept_ev;
    int accept_backoff_ms;
    time_t accept_log_at;
    unsigned long accept_log_suppressed;
    time_t refuse_log_at;
    unsigned long refuse_log_suppressed;
    tw_grpc_observer_fn observer;
    void *observer_arg;
    int shutting_down;
    struct event *grace_ev;
    struct event *done_ev;
    void (*done)(void *);
    void *done_arg;
    tw_log_ctx log;
};

/* ---- small helpers ---------------------------------------------------- */

static int kv_add(kv_list *l, const char *k, size_t klen, const char *v, size_t vlen)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        kv *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return -1;
        l->items = items;
        l->cap = cap;
    }
    char *kc = strndup(k, klen);
    char *vc = strndup(v, vlen);
    if (!kc || !vc) {
        free(kc);
        free(vc);
        return -1;
    }
    l->items[l->n].key = kc;
    l->items[l->n].value = vc;
    l->n++;
    return 0;
}

static void kv_free(kv_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static nghttp2_nv nv_str(const char *n, const char *v)
{
    nghttp2_nv nv = {(uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
    return nv;
}

static double elapsed_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static time_t monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec;
}

static struct timeval ms_to_tv(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static const tw_grpc_method *find_method(const tw_grpc_server *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return NULL;
}

static void conn_schedule_flush(conn *cn)
{
    if (!cn->in_recv && !cn->closing)
        event_active(cn->flush_ev, EV_WRITE, 0);
}

static void conn_update_idle(conn *cn);

/* ---- call lifecycle ---------------------------------------------------- */

static void call_input_cb(evutil_socket_t fd, short what, void *arg);

static tw_grpc_call *call_new(conn *cn, int32_t stream_id)
{
    tw_grpc_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->out = evbuffer_new();
    c->input_ev = event_new(cn->server->base, -1, 0, call_input_cb, c);
    if (!c->out || !c->input_ev) {
        if (c->out)
            evbuffer_free(c->out);
        if (c->input_ev)
            event_free(c->input_ev);
        free(c);
        return NULL;
    }
    c->conn = cn;
    c->stream_id = stream_id;
    c->timeout_ns = -1;
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    tw_grpc_decoder_init(&c->decoder, cn->server->cfg.max_recv_message);
    c->log.peer = cn->peer;
    c->next = cn->calls;
    if (cn->calls)
        cn->calls->prev = c;
    cn->calls = c;
    cn->ncalls++;
    cn->server->ncalls++;
    conn_update_idle(cn);
    return c;
}

static size_t held_len(const tw_grpc_call *c)
{
    return c->held ? evbuffer_get_length(c->held) : 0;
}

/* Bring the count of unconsumed bytes down to what the call still holds,
 * handing the rest back to the peer's flow-control windows. A call that is
 * over holds nothing: its buffers are dropped here. Does nothing while the
 * decoder is being fed (the feeding code calls it afterwards). */
static void call_sync_input(tw_grpc_call *c)
{
    if (c->in_input)
        return;
    conn *cn = c->conn;
    size_t keep = 0;
    if (c->finished || c->cancelled) {
        if (c->held)
            evbuffer_drain(c->held, evbuffer_get_length(c->held));
        tw_grpc_decoder_free(&c->decoder);
        free(c->unary_msg);
        c->unary_msg = NULL;
        c->half_close_pending = 0;
    } else {
        keep = held_len(c) + tw_grpc_decoder_pending(&c->decoder) +
               (c->unary_msg ? TW_GRPC_PREFIX_LEN + c->unary_len : 0);
    }
    if (c->rx_unconsumed <= keep)
        return;
    size_t n = c->rx_unconsumed - keep;
    c->rx_unconsumed = keep;
    cn->rx_unconsumed -= n;
    cn->server->rx_unconsumed -= n;
    if (cn->closing)
        return;
    int rv = nghttp2_session_consume(cn->session, c->stream_id, n);
    if (rv != 0)
        TW_WARN(&c->log, "session_consume: %s", nghttp2_strerror(rv));
    conn_schedule_flush(cn);
}

static void call_free(tw_grpc_call *c)
{
    conn *cn = c->conn;
    tw_grpc_server *s = cn->server;
    c->finished = 1; /* drop whatever input is held, and give it back */
    c->in_input = 0;
    call_sync_input(c);
    cn->out_pending -= evbuffer_get_length(c->out);
    s->out_pending -= evbuffer_get_length(c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        cn->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cn->ncalls--;
    s->ncalls--;
    if (c->deadline_ev)
        event_free(c->deadline_ev);
    if (c->writable_ev)
        event_free(c->writable_ev);
    event_free(c->input_ev);
    if (c->held)
        evbuffer_free(c->held);
    evbuffer_free(c->out);
    tw_grpc_decoder_free(&c->decoder);
    kv_free(&c->metadata);
    kv_free(&c->headers);
    kv_free(&c->trailers);
    free(c->unary_msg);
    free(c->path);
    free(c->content_type);
    free(c->grpc_encoding);
    free(c->message);
    free(c);
    conn_update_idle(cn);
}

static void observe(tw_grpc_call *c, int status)
{
    tw_grpc_server *s = c->conn->server;
    /* Unknown paths share one label so a client cannot grow the series. */
    if (s->observer && c->path)
        s->observer(s->observer_arg, c->method ? c->method->path : "unknown", status,
                    elapsed_since(&c->t0));
    TW_DEBUG(&c->log, "call ended: %s (%.3f ms)", tw_grpc_status_name(status),
             elapsed_since(&c->t0) * 1e3);
}

/* Tell the handler the call is over without a finish from it. */
static void call_cancel_handler(tw_grpc_call *c)
{
    if (!c->started || c->cancelled || c->finished)
        return;
    c->cancelled = 1;
    c->input_paused = 0;
    if (c->method->on_cancel)
        c->method->on_cancel(c, c->method->arg);
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data);

static void submit_response_headers(tw_grpc_call *c)
{
    nghttp2_nv nva[32 + 4];
    size_t n = 0;
    nva[n++] = nv_str(":status", "200");
    nva[n++] = nv_str("content-type", "application/grpc");
    if (c->compress)
        nva[n++] = nv_str("grpc-encoding", "gzip");
    nva[n++] = nv_str("grpc-accept-encoding", "identity,gzip");
    for (size_t i = 0; i < c->headers.n && n < 32; i++)
        nva[n++] = nv_str(c->headers.items[i].key, c->headers.items[i].value);
    nghttp2_data_provider prd = {.source.ptr = c, .read_callback = data_read_cb};
    int rv = nghttp2_submit_response(c->conn->session, c->stream_id, nva, n, &prd);
    if (rv != 0)
        TW_WARN(&c->log, "submit_response: %s", nghttp2_strerror(rv));
    c->headers_sent = 1;
}

/* Build and submit the trailer block (or the trailers-only response). */
static void submit_trailers(tw_grpc_call *c, int trailers_only)
{
    char code[12];
    snprintf(code, sizeof code, "%d", c->status);
    char *msg = NULL;
    if (c->message && c->message[0])
        msg = tw_grpc_percent_encode(c->message, strlen(c->message));

    nghttp2_nv nva[40];
    size_t n = 0;
    if (trailers_only) {
        nva[n++] = nv_str(":status", "200");
        nva[n++] = nv_str("content-type", "application/grpc");
    }
    nva[n++] = nv_str("grpc-status", code);
    if (msg)
        nva[n++] = nv_str("grpc-message", msg);
    for (size_t i = 0; i < c->trailers.n && n < 40; i++)
        nva[n++] = nv_str(c->trailers.items[i].key, c->trailers.items[i].value);

    int rv = trailers_only
                 ? nghttp2_submit_response(c->conn->session, c->stream_id, nva, n, NULL)
                 : nghttp2_submit_trailer(c->conn->session, c->stream_id, nva, n);
    if (rv != 0)
        TW_WARN(&c->log, "submitting trailers: %s", nghttp2_strerror(rv));
    c->trailers_submitted = 1;
    c->headers_sent = 1;
    free(msg);
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    tw_grpc_call *c = source->ptr;
    size_t avail = evbuffer_get_length(c->out);
    if (avail > 0) {
        int n = evbuffer_remove(c->out, buf, length);
        if (n < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        c->conn->out_pending -= (size_t)n;
        c->conn->server->out_pending -= (size_t)n;
        if (c->writable_fn && evbuffer_get_length(c->out) <= c->low_water && c->writable_ev)
            event_active(c->writable_ev, EV_WRITE, 0);
        if (evbuffer_get_length(c->out) == 0 && c->finished) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            submit_trailers(c, 0);
        }
        return n;
    }
    if (c->finished) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (!c->trailers_submitted)
            submit_trailers(c, 0);
        return 0;
    }
    c->deferred = 1;
    return NGHTTP2_ERR_DEFERRED;
}

static void call_resume(tw_grpc_call *c)
{
    if (c->deferred) {
        c->deferred = 0;
        nghttp2_session_resume_data(c->conn->session, c->stream_id);
    }
    conn_schedule_flush(c->conn);
}

/* Finish from inside the server (errors, deadline). Does not notify the
 * handler; callers do that first when the handler owns the call. */
static void call_finish_internal(tw_grpc_call *c, int status, const char *message)
{
    if (c->finished)
        return;
    c->finished = 1;
    c->input_paused = 0;
    c->status = status;
    free(c->message);
    c->message = message ? strdup(message) : NULL;
    if (c->deadline_ev)
        event_del(c->deadline_ev);
    if (c->writable_ev)
        event_del(c->writable_ev);
    event_del(c->input_ev);
    observe(c, status);
    if (status != TW_GRPC_OK)
        TW_DEBUG(&c->log, "status %s: %s", tw_grpc_status_name(status), message ? message : "");
    if (!c->headers_sent) {
        submit_trailers(c, 1);
        conn_schedule_flush(c->conn);
    } else {
        call_resume(c);
    }
    /* Held request bytes are dropped and handed back to the peer. */
    call_sync_input(c);
}

/* Fail a call the handler may own: notify it, then send the status. */
static void call_abort(tw_grpc_call *c, int status, const char *message)
{
    call_cancel_handler(c);
    call_finish_internal(c, status, message);
}

/* ---- public call API --------------------------------------------------- */

const char *tw_grpc_call_path(const tw_grpc_call *c) { return c->path; }
const char *tw_grpc_call_peer(const tw_grpc_call *c) { return c->conn->peer; }
void tw_grpc_call_set_data(tw_grpc_call *c, void *data) { c->user_data = data; }
void *tw_grpc_call_data(const tw_grpc_call *c) { return c->user_data; }
int tw_grpc_call_request_compressed(const tw_grpc_call *c) { return c->request_compressed; }

const char *tw_grpc_call_metadata(const tw_grpc_call *c, const char *key)
{
    for (size_t i = 0; i < c->metadata.n; i++)
        if (strcmp(c->metadata.items[i].key, key) == 0)
            return c->metadata.items[i].value;
    return NULL;
}

int tw_grpc_call_metadata_at(const tw_grpc_call *c, size_t i, const char **key, const char **value)
{
    if (i >= c->metadata.n)
        return -1;
    *key = c->metadata.items[i].key;
    *value = c->metadata.items[i].value;
    return 0;
}

int64_t tw_grpc_call_remaining_ms(const tw_grpc_call *c)
{
    if (!c->has_timeout)
        return -1;
    int64_t left = c->timeout_ns / 1000000 - (int64_t)(elapsed_since(&c->t0) * 1e3);
    return left > 0 ? left : 0;
}

int tw_grpc_call_add_header(tw_grpc_call *c, const char *key, const char *value)
{
    if (c->headers_sent || c->finished)
        return -1;
    return kv_add(&c->headers, key, strlen(key), value, strlen(value));
}

int tw_grpc_call_add_trailer(tw_grpc_call *c, const char *key, const char *value)
{
    if (c->finished)
        return -1;
    return kv_add(&c->trailers, key, strlen(key), value, strlen(value));
}

void tw_grpc_call_set_compress(tw_grpc_call *c, int on)
{
    if (!c->headers_sent)
        c->compress = on && c->accepts_gzip;
}

int tw_grpc_call_send_ex(tw_grpc_call *c, const uint8_t *msg, size_t len, int compress)
{
    conn *cn = c->conn;
    tw_grpc_server *s = cn->server;
    if (c->finished || c->cancelled)
        return -1;
    if (len > s->cfg.max_send_message)
        return -1;
    uint8_t *z = NULL;
    size_t zlen = 0;
    int flag = 0;
    if (compress && c->compress) {
        if (tw_grpc_gzip(msg, len, &z, &zlen) != 0)
            return -1;
        msg = z;
        len = zlen;
        flag = 1;
    }
    /* Output caps: a peer that does not read cannot make us queue more. A
     * message into an empty queue always fits, so any message up to the
     * send limit can be sent. */
    size_t add = TW_GRPC_PREFIX_LEN + len;
    size_t queued = evbuffer_get_length(c->out);
    if ((queued > 0 && queued + add > s->cfg.max_call_output) ||
        (cn->out_pending > 0 && cn->out_pending + add > s->cfg.max_conn_output)) {
        s->stats.output_refusals++;
        TW_DEBUG(&c->log, "send refused: %zu bytes queued on the call, %zu on the connection",
                 queued, cn->out_pending);
        free(z);
        return -1;
    }
    uint8_t prefix[TW_GRPC_PREFIX_LEN];
    tw_grpc_prefix_write(prefix, flag, (uint32_t)len);
    int rv = evbuffer_expand(c->out, add);
    if (rv == 0)
        rv = evbuffer_add(c->out, prefix, sizeof prefix);
    if (rv == 0 && len > 0 && evbuffer_add(c->out, msg, len) != 0) {
        evbuffer_drain(c->out, sizeof prefix); /* cannot fail after expand; be safe */
        rv = -1;
    }
    free(z);
    if (rv != 0)
        return -1;
    cn->out_pending += add;
    s->out_pending += add;
    if (!c->headers_sent) {
        submit_response_headers(c);
        conn_schedule_flush(cn);
    } else {
        call_resume(c);
    }
    return 0;
}

int tw_grpc_call_send(tw_grpc_call *c, const uint8_t *msg, size_t len)
{
    return tw_grpc_call_send_ex(c, msg, len, c->compress);
}

size_t tw_grpc_call_pending(const tw_grpc_call *c) { return evbuffer_get_length(c->out); }

static void writable_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_grpc_call *c = arg;
    if (!c->writable_fn || c->finished || c->cancelled)
        return;
    if (evbuffer_get_length(c->out) > c->low_water)
        return;
    void (*fn)(tw_grpc_call *, void *) = c->writable_fn;
    c->writable_fn = NULL;
    fn(c, c->writable_arg);
}

void tw_grpc_call_on_writable(tw_grpc_call *c, size_t low_water,
                              void (*fn)(tw_grpc_call *c, void *arg), void *arg)
{
    if (!c->writable_ev)
        c->writable_ev = event_new(c->conn->server->base, -1, 0, writable_cb, c);
    c->low_water = low_water;
    c->writable_fn = fn;
    c->writable_arg = arg;
    if (c->writable_ev && evbuffer_get_length(c->out) <= low_water)
        event_active(c->writable_ev, EV_WRITE, 0);
}

void tw_grpc_call_finish(tw_grpc_call *c, int status, const char *message)
{
    if (c->cancelled)
        return;
    call_finish_internal(c, status, message);
}

void tw_grpc_call_reply(tw_grpc_call *c, const uint8_t *msg, size_t len)
{
    if (msg && tw_grpc_call_send(c, msg, len) != 0) {
        tw_grpc_call_finish(c, TW_GRPC_RESOURCE_EXHAUSTED, "response could not be sent");
        return;
    }
    tw_grpc_call_finish(c, TW_GRPC_OK, NULL);
}

/* ---- request processing ------------------------------------------------ */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_grpc_call *c = arg;
    TW_DEBUG(&c->log, "deadline exceeded");
    call_abort(c, TW_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* Hand one request message (as received: maybe compressed) to the
 * handler, decompressing it first. */
static void call_deliver(tw_grpc_call *c, int compressed, const uint8_t *data, size_t len)
{
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    c->request_compressed = compressed;
    if (compressed) {
        int rv = tw_grpc_gunzip(data, len, c->conn->server->cfg.max_recv_message, &plain,
                                &plain_len);
        if (rv == -2) {
            call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED,
                       "decompressed message larger than the receive limit");
            return;
        }
        if (rv != 0) {
            call_abort(c, TW_GRPC_INTERNAL, "could not decompress message");
            return;
        }
        data = plain;
        len = plain_len;
    }
    c->method->on_message(c, data, len, c->method->arg);
    free(plain);
}

/* Decoder callback: one reassembled message. Returns 0 to go on,
 * TW_GRPC_MESSAGE_PAUSE when the handler paused the call, 1 to stop. */
static int on_message_cb(void *arg, int compressed, const uint8_t *data, size_t len)
{
    tw_grpc_call *c = arg;
    if (c->finished || c->cancelled)
        return 1;
    if (compressed && (!c->grpc_encoding || strcmp(c->grpc_encoding, "identity") == 0)) {
        call_abort(c, TW_GRPC_INTERNAL, "compressed message without grpc-encoding");
        return 1;
    }
    tw_grpc_kind kind = c->method->kind;
    if (kind == TW_GRPC_UNARY || kind == TW_GRPC_SERVER_STREAM) {
        if (c->unary_count++ > 0) {
            call_abort(c, TW_GRPC_INTERNAL, "more than one request message for a unary request");
            return 1;
        }
        /* Kept as received (compressed or not) until the half-close: its
         * wire bytes stay unconsumed, so the connection window bounds it. */
        c->unary_msg = malloc(len ? len : 1);
        if (!c->unary_msg) {
            call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return 1;
        }
        if (len)
            memcpy(c->unary_msg, data, len);
        c->unary_len = len;
        c->unary_compressed = compressed;
        return 0;
    }
    call_deliver(c, compressed, data, len);
    if (c->finished || c->cancelled)
        return 1;
    return c->input_paused ? TW_GRPC_MESSAGE_PAUSE : 0;
}

/* Feed request bytes to the call's decoder. Returns how many were taken:
 * all of them, unless the handler paused the call after a message. */
static size_t call_feed(tw_grpc_call *c, const uint8_t *data, size_t len)
{
    size_t used = len;
    c->in_input = 1;
    tw_grpc_decode_result r =
        tw_grpc_decoder_feed_some(&c->decoder, data, len, on_message_cb, c, &used);
    c->in_input = 0;
    if (r == TW_GRPC_DECODE_OVERSIZE) {
        char msg[128];
        snprintf(msg, sizeof msg, "received message larger than max (%zu bytes)",
                 c->decoder.max_len);
        call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED, msg);
    } else if (r == TW_GRPC_DECODE_NOMEM) {
        call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    }
    return r == TW_GRPC_DECODE_PAUSED ? used : len;
}

/* Keep bytes for later delivery (the call is paused). */
static void call_hold(tw_grpc_call *c, const uint8_t *data, size_t len)
{
    if (!c->held)
        c->held = evbuffer_new();
    if (!c->held || evbuffer_add(c->held, data, len) != 0)
        call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

static void call_half_close(tw_grpc_call *c)
{
    if (c->finished || c->cancelled || !c->method)
        return;
    if (c->input_paused || held_len(c) > 0) {
        c->half_close_pending = 1; /* after the held messages */
        return;
    }
    c->half_close_pending = 0;
    if (!tw_grpc_decoder_idle(&c->decoder)) {
        call_abort(c, TW_GRPC_INTERNAL, "stream ended inside a message");
        return;
    }
    tw_grpc_kind kind = c->method->kind;
    if (kind == TW_GRPC_UNARY || kind == TW_GRPC_SERVER_STREAM) {
        if (c->unary_count != 1) {
            call_abort(c, TW_GRPC_INTERNAL, "no request message for a unary request");
            return;
        }
        c->in_input = 1; /* unary_msg is in use */
        call_deliver(c, c->unary_compressed, c->unary_msg, c->unary_len);
        c->in_input = 0;
        free(c->unary_msg);
        c->unary_msg = NULL;
        call_sync_input(c);
        if (c->finished || c->cancelled)
            return;
    }
    if (c->method->on_half_close)
        c->method->on_half_close(c, c->method->arg);
}

/* Deliver what arrived while the call was paused (from the loop, after a
 * resume), until it pauses again or the held bytes run out. */
static void call_input_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_grpc_call *c = arg;
    size_t budget = HELD_INPUT_SLICE;
    while (!c->input_paused && !c->finished && !c->cancelled && held_len(c) > 0) {
        if (budget == 0) {
            /* Let the loop serve others; go on in the next round. */
            event_active(c->input_ev, EV_READ, 0);
            break;
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(c->held, -1, NULL, &v, 1) < 1)
            break;
        if (v.iov_len > budget)
            v.iov_len = budget;
        c->in_input = 1; /* the held chain is in use */
        size_t used = call_feed(c, v.iov_base, v.iov_len);
        c->in_input = 0;
        evbuffer_drain(c->held, used);
        budget -= used < budget ? used : budget;
    }
    if (!c->input_paused && c->half_close_pending && held_len(c) == 0)
        call_half_close(c);
    call_sync_input(c);
    conn_schedule_flush(c->conn);
}

void tw_grpc_call_pause_input(tw_grpc_call *c)
{
    if (c->finished || c->cancelled)
        return;
    c->input_paused = 1;
}

void tw_grpc_call_resume_input(tw_grpc_call *c)
{
    if (!c->input_paused)
        return;
    c->input_paused = 0;
    if (!c->finished && !c->cancelled && (held_len(c) > 0 || c->half_close_pending))
        event_active(c->input_ev, EV_READ, 0);
}

static void respond_http_error(tw_grpc_call *c, const char *http_status)
{
    nghttp2_nv nva[] = {nv_str(":status", http_status),
                        nv_str("content-type", "text/plain")};
    nghttp2_submit_response(c->conn->session, c->stream_id, nva, 2, NULL);
    c->finished = 1;
    c->headers_sent = 1;
    c->trailers_submitted = 1;
}

/* Request headers complete: validate and start the call. */
static void call_start(tw_grpc_call *c, int end_stream)
{
    tw_grpc_server *s = c->conn->server;
    c->log.call = c->path;
    if (c->headers_refused) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "request headers exceed the server's limit (max-header-list %zu bytes, "
                 "max-header-fields %zu)",
                 s->cfg.max_header_list, s->cfg.max_header_fields);
        s->stats.header_refusals++;
        TW_DEBUG(&c->log, "%s: %zu bytes in %zu fields", msg, c->header_bytes, c->header_fields);
        call_finish_internal(c, TW_GRPC_RESOURCE_EXHAUSTED, msg);
        return;
    }
    if (!c->path) {
        respond_http_error(c, "400");
        return;
    }
    if (!c->content_type || strncmp(c->content_type, "application/grpc", 16) != 0 ||
        (c->content_type[16] != '\0' && c->content_type[16] != '+' &&
         c->content_type[16] != ';')) {
        TW_DEBUG(&c->log, "refused content-type %s", c->content_type ? c->content_type : "(none)");
        respond_http_error(c, "415");
        return;
    }
    if (s->shutting_down) {
        call_finish_internal(c, TW_GRPC_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (c->grpc_encoding && strcmp(c->grpc_encoding, "identity") != 0 &&
        strcmp(c->grpc_encoding, "gzip") != 0) {
        if (kv_add(&c->trailers, "grpc-accept-encoding", 20, "identity,gzip", 13) != 0) {
            /* best effort */
        }
        call_finish_internal(c, TW_GRPC_UNIMPLEMENTED, "unsupported grpc-encoding");
        return;
    }
    c->method = find_method(s, c->path);
    if (!c->method) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown method %.256s", c->path);
        call_finish_internal(c, TW_GRPC_UNIMPLEMENTED, msg);
        return;
    }
    if (c->has_timeout) {
        c->deadline_ev = evtimer_new(s->base, deadline_cb, c);
        if (c->deadline_ev) {
            int64_t us = c->timeout_ns / 1000;
            struct timeval tv = {.tv_sec = (time_t)(us / 1000000),
                                 .tv_usec = (suseconds_t)(us % 1000000)};
            evtimer_add(c->deadline_ev, &tv);
        }
    }
    c->started = 1;
    if (c->method->on_start)
        c->method->on_start(c, c->method->arg);
    if (end_stream)
        call_half_close(c);
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    (void)session;
    (void)flags;
    conn *cn = user_data;
    struct evbuffer *out = bufferevent_get_output(cn->bev);
    if (evbuffer_get_length(out) >= OUTPUT_WOULDBLOCK_THRESHOLD)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static int on_begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame,
                               void *user_data)
{
    conn *cn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        /* Client trailers: a new header block, with a budget of its own. */
        tw_grpc_call *t = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (t) {
            t->header_bytes = 0;
            t->header_fields = 0;
        }
        return 0;
    }
    tw_grpc_call *c = call_new(cn, frame->hd.stream_id);
    if (!c)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, c);
    return 0;
}

static int on_header_cb(nghttp2_session *session, const nghttp2_frame *frame,
                        const uint8_t *name, size_t namelen, const uint8_t *value,
                        size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    conn *cn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    tw_grpc_call *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!c)
        return 0;
    /* RFC 9113 6.5.2: a field costs its name, its value and 32 octets. */
    const tw_grpc_server_config *cfg = &cn->server->cfg;
    c->header_bytes += namelen + valuelen + 32;
    c->header_fields++;
    int over = c->header_bytes > cfg->max_header_list || c->header_fields > cfg->max_header_fields;
    if (c->header_bytes / TW_GRPC_HEADER_ABUSE_FACTOR > cfg->max_header_list ||
        c->header_fields / TW_GRPC_HEADER_ABUSE_FACTOR > cfg->max_header_fields) {
        /* Far past the advertised limit is no clumsy client but a
         * decompression bomb (one table entry referenced thousands of
         * times): each field still costs nghttp2 a decode, so the
         * connection ends here instead of at the end of the block. */
        cn->server->stats.header_refusals++;
        TW_DEBUG(&cn->server->log, "from %s: header block past %dx the limits: closing",
                 cn->peer, TW_GRPC_HEADER_ABUSE_FACTOR);
        nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        /* Client trailers carry nothing we use; past the limits the stream
         * is reset and nghttp2 stops calling us for this block. */
        return over ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (c->headers_refused)
        return 0; /* counted, not kept: memory stays bounded */
    if (over) {
        c->headers_refused = 1;
        kv_free(&c->metadata);
        free(c->content_type);
        c->content_type = NULL;
        free(c->grpc_encoding);
        c->grpc_encoding = NULL;
        return 0;
    }
    const char *n = (const char *)name;
    const char *v = (const char *)value;
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(n, lit, namelen) == 0)
    if (IS(":path")) {
        free(c->path);
        c->path = strndup(v, valuelen);
    } else if (IS("content-type")) {
        free(c->content_type);
        c->content_type = strndup(v, valuelen);
    } else if (IS("grpc-timeout")) {
        int64_t ns;
        if (tw_grpc_timeout_parse(v, valuelen, &ns) == 0) {
            c->timeout_ns = ns;
            c->has_timeout = 1;
        }
    } else if (IS("grpc-encoding")) {
        free(c->grpc_encoding);
        c->grpc_encoding = strndup(v, valuelen);
    } else if (IS("grpc-accept-encoding")) {
        /* a comma-separated list: look for the gzip token */
        const char *p = v, *end = v + valuelen;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
                p++;
            const char *q = p;
            while (q < end && *q != ',')
                q++;
            const char *e = q;
            while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e - p == 4 && memcmp(p, "gzip", 4) == 0)
                c->accepts_gzip = 1;
            p = q;
        }
    } else if ((namelen > 0 && n[0] == ':') || IS("te") || IS("host")) {
        /* transport headers; nghttp2 validates the pseudo-headers */
    } else {
        if (kv_add(&c->metadata, n, namelen, v, valuelen) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
#undef IS
    return 0;
}

static int on_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame,
                            void *user_data)
{
    conn *cn = user_data;
    tw_grpc_call *c;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !cn->handshake_done) {
            cn->handshake_done = 1;
            event_del(cn->timer_ev);
            conn_update_idle(cn);
        }
        break;
    case NGHTTP2_HEADERS:
        c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!c)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            call_start(c, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            call_half_close(c);
        call_sync_input(c);
        break;
    case NGHTTP2_DATA:
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            break;
        c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (c) {
            call_half_close(c);
            call_sync_input(c);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk_recv_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                                 const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    tw_grpc_call *c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!c) {
        /* No call to hold it: give the window back at once. */
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    c->rx_unconsumed += len;
    c->conn->rx_unconsumed += len;
    c->conn->server->rx_unconsumed += len;
    if (c->method && !c->finished && !c->cancelled) {
        if (c->input_paused || held_len(c) > 0) {
            call_hold(c, data, len);
        } else {
            size_t used = call_feed(c, data, len);
            if (used < len && !c->finished && !c->cancelled)
                call_hold(c, data + used, len - used);
        }
    }
    call_sync_input(c);
    return 0;
}

static int on_frame_send_cb(nghttp2_session *session, const nghttp2_frame *frame,
                            void *user_data)
{
    (void)user_data;
    /* Trailers went out but the client is still sending: tell it to stop
     * (PROTOCOL-HTTP2: RST_STREAM with NO_ERROR after the status). */
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        !nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id))
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    (void)error_code;
    (void)user_data;
    tw_grpc_call *c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!c)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (!c->finished) {
        /* RST_STREAM from the client, or closed before we answered. */
        call_cancel_handler(c);
        if (c->path)
            observe(c, TW_GRPC_CANCELLED);
    }
    call_free(c);
    return 0;
}

/* ---- connections ------------------------------------------------------- */

static void server_maybe_done(tw_grpc_server *s);

static void conn_close(conn *cn)
{
    tw_grpc_server *s = cn->server;
    cn->closing = 1;
    /* nghttp2_session_del runs no callbacks: cancel and free calls here. */
    while (cn->calls) {
        tw_grpc_call *c = cn->calls;
        if (!c->finished) {
            call_cancel_handler(c);
            if (c->path)
                observe(c, TW_GRPC_CANCELLED);
        }
        call_free(c);
    }
    nghttp2_session_del(cn->session);
    event_free(cn->flush_ev);
    event_free(cn->timer_ev);
    bufferevent_free(cn->bev);
    if (cn->prev)
        cn->prev->next = cn->next;
    else
        s->conns = cn->next;
    if (cn->next)
        cn->next->prev = cn->prev;
    s->nconns--;
    TW_DEBUG(&s->log, "connection from %s closed", cn->peer);
    free(cn);
    server_maybe_done(s);
}

/* Arm or disarm the idle timer after the number of calls changed. */
static void conn_update_idle(conn *cn)
{
    const tw_grpc_server_config *cfg = &cn->server->cfg;
    if (!cn->handshake_done || cn->closing || cn->idle_goaway)
        return;
    if (cn->ncalls > 0) {
        event_del(cn->timer_ev);
    } else if (cfg->idle_timeout_ms > 0) {
        struct timeval tv = ms_to_tv(cfg->idle_timeout_ms);
        evtimer_add(cn->timer_ev, &tv);
    }
}

/* Stop reading while nghttp2 queues control frames the peer does not
 * read; read again when they drain. */
static void conn_update_read(conn *cn)
{
    size_t q = nghttp2_session_get_outbound_queue_size(cn->session);
    if (!cn->read_blocked && q > OUTBOUND_QUEUE_HIGH) {
        cn->read_blocked = 1;
        bufferevent_disable(cn->bev, EV_READ);
        TW_DEBUG(&cn->server->log, "%s: %zu frames queued for a peer that does not read: "
                 "reading paused", cn->peer, q);
    } else if (cn->read_blocked && q < OUTBOUND_QUEUE_LOW) {
        cn->read_blocked = 0;
        bufferevent_enable(cn->bev, EV_READ);
    }
}

/* Hand nghttp2's pending frames to the socket. Returns -1 if the
 * connection was closed (cn is dead). */
static int conn_send(conn *cn)
{
    int rv = nghttp2_session_send(cn->session);
    if (rv != 0) {
        TW_DEBUG(&cn->server->log, "session_send: %s", nghttp2_strerror(rv));
        conn_close(cn);
        return -1;
    }
    if (!nghttp2_session_want_read(cn->session) && !nghttp2_session_want_write(cn->session) &&
        evbuffer_get_length(bufferevent_get_output(cn->bev)) == 0) {
        conn_close(cn);
        return -1;
    }
    conn_update_read(cn);
    return 0;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn *cn = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return;
    unsigned char *data = evbuffer_pullup(in, -1);
    cn->in_recv = 1;
    ssize_t n = nghttp2_session_mem_recv(cn->session, data, len);
    cn->in_recv = 0;
    if (n < 0) {
        TW_DEBUG(&cn->server->log, "from %s: %s", cn->peer, nghttp2_strerror((int)n));
        conn_close(cn);
        return;
    }
    evbuffer_drain(in, (size_t)n);
    conn_send(cn);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn *cn = arg;
    conn_send(cn);
}

static void conn_event_cb(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    conn *cn = arg;
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_close(cn);
}

static void conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_send(arg);
}

static void conn_goaway(conn *cn, uint32_t code, const char *why)
{
    if (cn->goaway)
        return;
    cn->goaway = 1;
    nghttp2_submit_goaway(cn->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(cn->session), code,
                          (const uint8_t *)why, why ? strlen(why) : 0);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *cn = arg;
    tw_grpc_server *s = cn->server;
    if (!cn->handshake_done) {
        s->stats.handshake_timeouts++;
        TW_DEBUG(&s->log, "%s: no HTTP/2 client preface within %lld ms: closing", cn->peer,
                 (long long)s->cfg.handshake_timeout_ms);
        conn_close(cn);
        return;
    }
    if (cn->idle_goaway) {
        conn_close(cn); /* the peer did not take the GOAWAY */
        return;
    }
    if (cn->ncalls > 0)
        return;
    s->stats.idle_closes++;
    TW_DEBUG(&s->log, "%s: idle for %lld ms: closing", cn->peer,
             (long long)s->cfg.idle_timeout_ms);
    cn->idle_goaway = 1;
    conn_goaway(cn, NGHTTP2_NO_ERROR, "idle timeout");
    struct timeval tv = ms_to_tv(GOAWAY_LINGER_MS);
    evtimer_add(cn->timer_ev, &tv);
    conn_send(cn);
}

/* A log line at most every ACCEPT_LOG_INTERVAL_S seconds per kind; the
 * lines in between are counted and the count goes with the next one. */
static int log_allowed(time_t *at, unsigned long *suppressed, unsigned long *report)
{
    time_t now = monotonic_seconds();
    if (*at && now - *at < ACCEPT_LOG_INTERVAL_S) {
        ++*suppressed;
        return 0;
    }
    *at = now;
    *report = *suppressed;
    *suppressed = 0;
    return 1;
}

static void set_peer(conn *cn, const struct sockaddr *addr)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(cn->peer, sizeof cn->peer, "%s:%d", host, ntohs(sin->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(cn->peer, sizeof cn->peer, "[%s]:%d", host, ntohs(sin6->sin6_port));
    } else {
        snprintf(cn->peer, sizeof cn->peer, "?");
    }
}

static int conn_new_session(conn *cn)
{
    tw_grpc_server *s = cn->server;
    nghttp2_session_callbacks *cbs = NULL;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
    nghttp2_option *opt = NULL;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -1;
    }
    nghttp2_option_set_max_send_header_block_length(opt, MAX_SEND_HEADER_BLOCK);
    /* Windows are refilled by call_sync_input as held bytes are released. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = nghttp2_session_server_new2(&cn->session, cbs, cn, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)s->stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->cfg.max_header_list},
    };
    if (nghttp2_submit_settings(cn->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(cn->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)s->conn_window) != 0)
        return -1;
    return 0;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int addrlen, void *arg)
{
    (void)l;
    (void)addrlen;
    tw_grpc_server *s = arg;
    unsigned long more;
    s->accept_backoff_ms = 0;
    if (s->nconns >= s->cfg.max_connections) {
        /* Closed before any HTTP/2 byte, as nghttpx does: a gRPC client
         * then fails the attempt at once (UNAVAILABLE) and retries with its
         * connection backoff. (SETTINGS + GOAWAY would count as a working
         * connection, and clients would reconnect at once, in a loop.) */
        evutil_closesocket(fd);
        s->stats.refused_connections++;
        if (log_allowed(&s->refuse_log_at, &s->refuse_log_suppressed, &more))
            TW_WARN(&s->log, "max-connections (%zu) reached: refusing connections (%lu more "
                    "refused since the last message)", s->cfg.max_connections, more);
        return;
    }
    conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        evutil_closesocket(fd);
        return;
    }
    cn->server = s;
    set_peer(cn, addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    cn->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    cn->flush_ev = event_new(s->base, -1, 0, conn_flush_cb, cn);
    cn->timer_ev = evtimer_new(s->base, conn_timer_cb, cn);
    if (!cn->bev || !cn->flush_ev || !cn->timer_ev || conn_new_session(cn) != 0)
        goto fail;

    cn->next = s->conns;
    if (s->conns)
        s->conns->prev = cn;
    s->conns = cn;
    s->nconns++;
    bufferevent_setcb(cn->bev, conn_read_cb, conn_write_cb, conn_event_cb, cn);
    bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
    TW_DEBUG(&s->log, "connection from %s", cn->peer);
    if (s->cfg.handshake_timeout_ms > 0) {
        struct timeval tv = ms_to_tv(s->cfg.handshake_timeout_ms);
        evtimer_add(cn->timer_ev, &tv);
    }
    if (s->shutting_down)
        conn_goaway(cn, NGHTTP2_NO_ERROR, NULL);
    conn_send(cn);
    return;
fail:
    TW_ERROR(&s->log, "could not set up a connection from %s", cn->peer);
    if (cn->session)
        nghttp2_session_del(cn->session);
    if (cn->flush_ev)
        event_free(cn->flush_ev);
    if (cn->timer_ev)
        event_free(cn->timer_ev);
    if (cn->bev)
        bufferevent_free(cn->bev);
    else
        evutil_closesocket(fd);
    free(cn);
}

/* ---- server ------------------------------------------------------------ */

tw_grpc_server *tw_grpc_server_new(struct event_base *base, const tw_grpc_server_config *cfg)
{
    tw_grpc_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    if (cfg)
        s->cfg = *cfg;
    tw_grpc_server_config *c = &s->cfg;
    if (!c->max_recv_message)
        c->max_recv_message = TW_GRPC_DEFAULT_MAX_MESSAGE;
    if (!c->max_send_message)
        c->max_send_message = TW_GRPC_DEFAULT_MAX_MESSAGE;
    if (!c->max_concurrent_streams)
        c->max_concurrent_streams = TW_GRPC_DEFAULT_MAX_STREAMS;
    if (!c->max_connections)
        c->max_connections = TW_GRPC_DEFAULT_MAX_CONNECTIONS;
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = TW_GRPC_DEFAULT_IDLE_TIMEOUT_MS;
    if (!c->handshake_timeout_ms)
        c->handshake_timeout_ms = TW_GRPC_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    if (!c->max_header_list)
        c->max_header_list = TW_GRPC_DEFAULT_MAX_HEADER_LIST;
    if (!c->max_header_fields)
        c->max_header_fields = TW_GRPC_DEFAULT_MAX_HEADER_FIELDS;
    if (!c->max_conn_input)
        c->max_conn_input = TW_GRPC_DEFAULT_MAX_CONN_INPUT;
    if (!c->max_call_output)
        c->max_call_output = TW_GRPC_DEFAULT_MAX_CALL_OUTPUT;
    if (!c->max_conn_output)
        c->max_conn_output = TW_GRPC_DEFAULT_MAX_CONN_OUTPUT;
    /* HTTP/2 windows are at most 2^31 - 1. A stream's window holds one
     * maximal message; the connection's is the input cap, never smaller
     * than a stream's (or a maximal message could never arrive). */
    const size_t max_window = 0x7fffffff;
    if (c->max_recv_message > max_window - TW_GRPC_PREFIX_LEN)
        c->max_recv_message = max_window - TW_GRPC_PREFIX_LEN;
    if (c->max_header_list > 0xffffffffu)
        c->max_header_list = 0xffffffffu;
    s->stream_window = c->max_recv_message + TW_GRPC_PREFIX_LEN;
    if (s->stream_window < NGHTTP2_INITIAL_WINDOW_SIZE)
        s->stream_window = NGHTTP2_INITIAL_WINDOW_SIZE;
    if (c->max_conn_input > max_window)
        c->max_conn_input = max_window;
    if (c->max_conn_input < s->stream_window)
        c->max_conn_input = s->stream_window;
    s->conn_window = c->max_conn_input;
    s->port = -1;
    s->log.peer = NULL;
    return s;
}

static int add_service_name(tw_grpc_server *s, const char *path)
{
    const char *start = path[0] == '/' ? path + 1 : path;
    const char *slash = strchr(start, '/');
    size_t len = slash ? (size_t)(slash - start) : strlen(start);
    for (size_t i = 0; i < s->nservices; i++)
        if (strlen(s->services[i]) == len && memcmp(s->services[i], start, len) == 0)
            return 0;
    char **sv = realloc(s->services, (s->nservices + 1) * sizeof *sv);
    if (!sv)
        return -1;
    s->services = sv;
    s->services[s->nservices] = strndup(start, len);
    if (!s->services[s->nservices])
        return -1;
    s->nservices++;
    return 0;
}

int tw_grpc_server_add_methods(tw_grpc_server *s, const tw_grpc_method *methods, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (find_method(s, methods[i].path) || !methods[i].on_message)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(methods[i].path, methods[j].path) == 0)
                return -1;
    }
    tw_grpc_method *m = realloc(s->methods, (s->nmethods + n) * sizeof *m);
    if (!m)
        return -1;
    /* Calls keep pointers to methods: adding after listen is not allowed. */
    s->methods = m;
    memcpy(s->methods + s->nmethods, methods, n * sizeof *m);
    s->nmethods += n;
    for (size_t i = 0; i < n; i++)
        if (add_service_name(s, methods[i].path) != 0)
            return -1;
    return 0;
}

size_t tw_grpc_server_service_count(const tw_grpc_server *s) { return s->nservices; }

const char *tw_grpc_server_service_name(const tw_grpc_server *s, size_t i)
{
    return i < s->nservices ? s->services[i] : NULL;
}

void tw_grpc_server_set_observer(tw_grpc_server *s, tw_grpc_observer_fn fn, void *arg)
{
    s->observer = fn;
    s->observer_arg = arg;
}

size_t tw_grpc_server_connection_count(const tw_grpc_server *s) { return s->nconns; }
int tw_grpc_server_port(const tw_grpc_server *s) { return s->port; }
const tw_grpc_server_config *tw_grpc_server_get_config(const tw_grpc_server *s) { return &s->cfg; }

void tw_grpc_server_get_stats(const tw_grpc_server *s, tw_grpc_server_stats *out)
{
    *out = s->stats;
    out->connections = s->nconns;
    out->calls = s->ncalls;
    out->input_buffered = s->rx_unconsumed;
    out->output_queued = s->out_pending;
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_grpc_server *s = arg;
    if (s->listener && !s->shutting_down)
        evconnlistener_enable(s->listener);
}

static void listener_error_cb(struct evconnlistener *l, void *arg)
{
    tw_grpc_server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    int pause = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
    unsigned long more;
    if (pause) {
        /* The pending connection stays in the backlog and the listener
         * stays readable: without a pause the loop would spin. */
        s->accept_backoff_ms = s->accept_backoff_ms ? s->accept_backoff_ms * 2
                                                    : ACCEPT_BACKOFF_MIN_MS;
        if (s->accept_backoff_ms > ACCEPT_BACKOFF_MAX_MS)
            s->accept_backoff_ms = ACCEPT_BACKOFF_MAX_MS;
        s->stats.accept_pauses++;
        evconnlistener_disable(l);
        struct timeval tv = ms_to_tv(s->accept_backoff_ms);
        evtimer_add(s->accept_ev, &tv);
    }
    if (log_allowed(&s->accept_log_at, &s->accept_log_suppressed, &more)) {
        if (pause)
            TW_ERROR(&s->log, "accept: %s (%zu connections open): accepting paused for %d ms "
                     "(%lu more accept errors since the last message)",
                     evutil_socket_error_to_string(err), s->nconns, s->accept_backoff_ms, more);
        else
            TW_ERROR(&s->log, "accept: %s (%lu more accept errors since the last message)",
                     evutil_socket_error_to_string(err), more);
    }
}

int tw_grpc_server_listen(tw_grpc_server *s, const char *hostport, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (tw_nghttp2_check(err, errlen) != 0)
        return -1;
    if (tw_hostport_parse(hostport, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "listen address \"%s\" is not host:port", hostport);
        return -1;
    }
    if (!s->accept_ev) {
        s->accept_ev = evtimer_new(s->base, accept_resume_cb, s);
        if (!s->accept_ev) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rv = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rv != 0) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rv));
        return -1;
    }
    s->listener = evconnlistener_new_bind(s->base, accept_cb, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                              LEV_OPT_CLOSE_ON_EXEC,
                                          128, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!s->listener) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(s->listener, listener_error_cb);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sl) == 0)
        s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_grpc_server *s = arg;
    void (*done)(void *) = s->done;
    s->done = NULL;
    if (done)
        done(s->done_arg);
}

static void server_maybe_done(tw_grpc_server *s)
{
    if (s->shutting_down && s->nconns == 0 && s->done_ev)
        event_active(s->done_ev, EV_TIMEOUT, 0);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_grpc_server *s = arg;
    if (s->nconns)
        TW_WARN(&s->log, "grace period over: closing %zu connection(s)", s->nconns);
    while (s->conns)
        conn_close(s->conns);
}

void tw_grpc_server_shutdown(tw_grpc_server *s, int grace_ms, void (*done)(void *arg), void *arg)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    s->done = done;
    s->done_arg = arg;
    if (s->listener) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
    if (s->accept_ev)
        event_del(s->accept_ev);
    s->done_ev = event_new(s->base, -1, 0, done_cb, s);
    s->grace_ev = evtimer_new(s->base, grace_cb, s);
    if (s->grace_ev) {
        struct timeval tv = ms_to_tv(grace_ms);
        evtimer_add(s->grace_ev, &tv);
    }
    /* conn_send may close a connection: walk with a saved next pointer. */
    for (conn *cn = s->conns, *next; cn; cn = next) {
        next = cn->next;
        conn_goaway(cn, NGHTTP2_NO_ERROR, NULL);
        conn_send(cn);
    }
    server_maybe_done(s);
}

void tw_grpc_server_free(tw_grpc_server *s)
{
    if (!s)
        return;
    s->done = NULL;
    while (s->conns)
        conn_close(s->conns);
    if (s->listener)
        evconnlistener_free(s->listener);
    if (s->accept_ev)
        event_free(s->accept_ev);
    if (s->grace_ev)
        event_free(s->grace_ev);
    if (s->done_ev)
        event_free(s->done_ev);
    for (size_t i = 0; i < s->nservices; i++)
        free(s->services[i]);
    free(s->services);
    free(s->methods);
    free(s);
}
