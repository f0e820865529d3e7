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

/* Stop handing bytes to the socket buffer above this; resume on write. */
#define OUTPUT_WOULDBLOCK_THRESHOLD (256 * 1024)
#define STREAM_WINDOW (1 << 20)
#define CONNECTION_WINDOW (8 << 20)
#define MAX_HEADER_LIST (64 * 1024)

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

    /* request */
    char *path;
    char *content_type;
    char *grpc_encoding;
    int accepts_gzip;
    int64_t timeout_ns; /* -1: none */
    int has_timeout;
    kv_list metadata;
    tw_grpc_decoder decoder;
    int request_compressed;
    uint8_t *unary_msg; /* unary/server-stream: the one request */
    size_t unary_len;
    int unary_count;

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
    int started;   /* on_start called: handler owns the call */
    int input_paused; /* counted in conn->paused_calls */
    int cancelled; /* on_cancel called */
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
    tw_grpc_call *calls;
    char peer[INET6_ADDRSTRLEN + 8];
    int in_recv;  /* inside mem_recv: the read path sends afterwards */
    int goaway;   /* GOAWAY submitted */
    int paused_calls;        /* calls that asked to stop reading */
    struct event *resume_ev; /* processes input left while paused */
};

struct tw_grpc_server {
    struct event_base *base;
    tw_grpc_server_config cfg;
    tw_grpc_method *methods;
    size_t nmethods;
    char **services;
    size_t nservices;
    struct evconnlistener *listener;
    int port;
    conn *conns;
    size_t nconns;
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

static const tw_grpc_method *find_method(const tw_grpc_server *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return NULL;
}

static void conn_schedule_flush(conn *cn)
{
    if (!cn->in_recv)
        event_active(cn->flush_ev, EV_WRITE, 0);
}

/* ---- call lifecycle ---------------------------------------------------- */

static tw_grpc_call *call_new(conn *cn, int32_t stream_id)
{
    tw_grpc_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->out = evbuffer_new();
    if (!c->out) {
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
    return c;
}

static void conn_input_release(conn *cn);

/* Release the call's pause on its connection's input, if it holds one. */
static void call_release_input(tw_grpc_call *c)
{
    if (c->input_paused) {
        c->input_paused = 0;
        c->conn->paused_calls--;
        conn_input_release(c->conn);
    }
}

static void call_free(tw_grpc_call *c)
{
    conn *cn = c->conn;
    call_release_input(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        cn->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->deadline_ev)
        event_free(c->deadline_ev);
    if (c->writable_ev)
        event_free(c->writable_ev);
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
    call_release_input(c);
    if (c->method->on_cancel)
        c->method->on_cancel(c, c->method->arg);
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data);

static void submit_response_headers(tw_grpc_call *c, int with_body)
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
    (void)with_body;
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
    call_release_input(c);
    c->status = status;
    free(c->message);
    c->message = message ? strdup(message) : NULL;
    if (c->deadline_ev)
        event_del(c->deadline_ev);
    if (c->writable_ev)
        event_del(c->writable_ev);
    observe(c, status);
    if (status != TW_GRPC_OK)
        TW_DEBUG(&c->log, "status %s: %s", tw_grpc_status_name(status), message ? message : "");
    if (!c->headers_sent) {
        submit_trailers(c, 1);
        conn_schedule_flush(c->conn);
    } else {
        call_resume(c);
    }
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
    if (c->finished || c->cancelled)
        return -1;
    if (len > c->conn->server->cfg.max_send_message)
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
    uint8_t prefix[TW_GRPC_PREFIX_LEN];
    tw_grpc_prefix_write(prefix, flag, (uint32_t)len);
    int rv = evbuffer_add(c->out, prefix, sizeof prefix);
    if (rv == 0 && len > 0)
        rv = evbuffer_add(c->out, msg, len);
    free(z);
    if (rv != 0)
        return -1;
    if (!c->headers_sent) {
        submit_response_headers(c, 1);
        conn_schedule_flush(c->conn);
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
        tw_grpc_call_finish(c, TW_GRPC_INTERNAL, "response could not be sent");
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

/* Deliver one reassembled message to the call. Returns non-zero to stop. */
static int on_message_cb(void *arg, int compressed, const uint8_t *data, size_t len)
{
    tw_grpc_call *c = arg;
    if (c->finished || c->cancelled)
        return 1;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    c->request_compressed = compressed;
    if (compressed) {
        if (!c->grpc_encoding || strcmp(c->grpc_encoding, "identity") == 0) {
            call_abort(c, TW_GRPC_INTERNAL, "compressed message without grpc-encoding");
            return 1;
        }
        int rv = tw_grpc_gunzip(data, len, c->conn->server->cfg.max_recv_message, &plain,
                                &plain_len);
        if (rv == -2) {
            call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED,
                       "decompressed message larger than the receive limit");
            return 1;
        }
        if (rv != 0) {
            call_abort(c, TW_GRPC_INTERNAL, "could not decompress message");
            return 1;
        }
        data = plain;
        len = plain_len;
    }
    tw_grpc_kind kind = c->method->kind;
    if (kind == TW_GRPC_UNARY || kind == TW_GRPC_SERVER_STREAM) {
        if (c->unary_count++ > 0) {
            free(plain);
            call_abort(c, TW_GRPC_INTERNAL, "more than one request message for a unary request");
            return 1;
        }
        if (plain) {
            c->unary_msg = plain;
            plain = NULL;
        } else {
            c->unary_msg = malloc(len ? len : 1);
            if (!c->unary_msg) {
                call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
                return 1;
            }
            if (len)
                memcpy(c->unary_msg, data, len);
        }
        c->unary_len = len;
        return 0;
    }
    c->method->on_message(c, data, len, c->method->arg);
    free(plain);
    return (c->finished || c->cancelled) ? 1 : 0;
}

static void call_half_close(tw_grpc_call *c)
{
    if (c->finished || c->cancelled || !c->method)
        return;
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
        c->method->on_message(c, c->unary_msg, c->unary_len, c->method->arg);
        free(c->unary_msg);
        c->unary_msg = NULL;
        if (c->finished || c->cancelled)
            return;
    }
    if (c->method->on_half_close)
        c->method->on_half_close(c, c->method->arg);
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
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
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
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers from the client carry nothing we use */
    tw_grpc_call *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!c)
        return 0;
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
    (void)user_data;
    tw_grpc_call *c;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!c)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            call_start(c, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            call_half_close(c);
        break;
    case NGHTTP2_DATA:
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            break;
        c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (c)
            call_half_close(c);
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
    if (!c || !c->method || c->finished || c->cancelled)
        return 0;
    tw_grpc_decode_result r = tw_grpc_decoder_feed(&c->decoder, data, len, on_message_cb, c);
    if (r == TW_GRPC_DECODE_OVERSIZE) {
        char msg[128];
        snprintf(msg, sizeof msg, "received message larger than max (%zu bytes)",
                 c->decoder.max_len);
        call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED, msg);
    } else if (r == TW_GRPC_DECODE_NOMEM) {
        call_abort(c, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    }
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
    event_free(cn->resume_ev);
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
    return 0;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn *cn = arg;
    if (cn->paused_calls > 0)
        return; /* input waits in the buffer (and in TCP) until resumed */
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

static void conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *cn = arg;
    conn_read_cb(cn->bev, cn);
}

/* A paused call let go: read again, starting with what is buffered. */
static void conn_input_release(conn *cn)
{
    if (cn->paused_calls > 0)
        return;
    bufferevent_enable(cn->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(cn->bev)) > 0)
        event_active(cn->resume_ev, EV_READ, 0);
}

void tw_grpc_call_pause_input(tw_grpc_call *c)
{
    if (c->input_paused || c->finished || c->cancelled)
        return;
    c->input_paused = 1;
    if (c->conn->paused_calls++ == 0)
        bufferevent_disable(c->conn->bev, EV_READ);
}

void tw_grpc_call_resume_input(tw_grpc_call *c) { call_release_input(c); }

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

static void conn_goaway(conn *cn)
{
    if (cn->goaway)
        return;
    cn->goaway = 1;
    nghttp2_submit_goaway(cn->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(cn->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int addrlen, void *arg)
{
    (void)l;
    (void)addrlen;
    tw_grpc_server *s = arg;
    conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        evutil_closesocket(fd);
        return;
    }
    cn->server = s;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (addr->sa_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
        snprintf(cn->peer, sizeof cn->peer, "%s:%d", host, port);
    } else if (addr->sa_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
        snprintf(cn->peer, sizeof cn->peer, "[%s]:%d", host, port);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    cn->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    cn->flush_ev = event_new(s->base, -1, 0, conn_flush_cb, cn);
    cn->resume_ev = event_new(s->base, -1, 0, conn_resume_cb, cn);
    nghttp2_session_callbacks *cbs = NULL;
    if (!cn->bev || !cn->flush_ev || !cn->resume_ev || nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
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
        goto fail;
    }
    nghttp2_option_set_max_send_header_block_length(opt, MAX_HEADER_LIST);
    int rv = nghttp2_session_server_new2(&cn->session, cbs, cn, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        goto fail;

    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
    };
    if (nghttp2_submit_settings(cn->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(cn->session, NGHTTP2_FLAG_NONE, 0,
                                              CONNECTION_WINDOW) != 0)
        goto fail;

    cn->next = s->conns;
    if (s->conns)
        s->conns->prev = cn;
    s->conns = cn;
    s->nconns++;
    bufferevent_setcb(cn->bev, conn_read_cb, conn_write_cb, conn_event_cb, cn);
    bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
    TW_DEBUG(&s->log, "connection from %s", cn->peer);
    if (s->shutting_down)
        conn_goaway(cn);
    conn_send(cn);
    return;
fail:
    TW_ERROR(&s->log, "could not set up a connection from %s", cn->peer);
    if (cn->session)
        nghttp2_session_del(cn->session);
    if (cn->flush_ev)
        event_free(cn->flush_ev);
    if (cn->resume_ev)
        event_free(cn->resume_ev);
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
    if (!s->cfg.max_recv_message)
        s->cfg.max_recv_message = TW_GRPC_DEFAULT_MAX_MESSAGE;
    if (!s->cfg.max_send_message)
        s->cfg.max_send_message = TW_GRPC_DEFAULT_MAX_MESSAGE;
    if (!s->cfg.max_concurrent_streams)
        s->cfg.max_concurrent_streams = 100;
    s->port = -1;
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

static void listener_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    tw_grpc_server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    TW_ERROR(&s->log, "accept: %s", evutil_socket_error_to_string(err));
}

int tw_grpc_server_listen(tw_grpc_server *s, const char *hostport, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (tw_hostport_parse(hostport, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "listen address \"%s\" is not host:port", hostport);
        return -1;
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
    s->done_ev = event_new(s->base, -1, 0, done_cb, s);
    s->grace_ev = evtimer_new(s->base, grace_cb, s);
    if (s->grace_ev) {
        struct timeval tv = {.tv_sec = grace_ms / 1000, .tv_usec = (grace_ms % 1000) * 1000};
        evtimer_add(s->grace_ev, &tv);
    }
    /* conn_send may close a connection: walk with a saved next pointer. */
    for (conn *cn = s->conns, *next; cn; cn = next) {
        next = cn->next;
        conn_goaway(cn);
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
