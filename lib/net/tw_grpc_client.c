/* tw_grpc_client: gRPC client over h2c on nghttp2 + libevent.
 *
 * Structure
 * ---------
 * A channel owns a list of connections (tw_conn) and a list of calls. One
 * connection, `cur`, takes new calls; a connection that failed or received
 * GOAWAY stops taking them and is freed once it is done. Every call is on
 * the channel's list from start until it is reaped.
 *
 * Two rules keep reentrancy manageable:
 *  - nghttp2_session_send runs only at the top of a libevent callback (the
 *    bufferevent callbacks and the channel's "kick" event), never inside an
 *    nghttp2 callback or a public function. Public functions queue work in
 *    nghttp2 (submit, resume) and activate the kick event.
 *  - Nothing is freed where it may still be on the stack. A finished call
 *    stays in memory until nghttp2 no longer refers to it (stream closed,
 *    request dropped, or session deleted: `in_session` clears) and the kick
 *    event reaps it; a failed connection is freed by the kick event too.
 *
 * A call is finished exactly once (call_finish): that is where on_close runs.
 * nghttp2 callbacks ignore streams whose call is already finished. */
#include "tw_grpc_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <nghttp2/nghttp2.h>

#include "tw_hostport.h"
#include "tw_log.h"

#ifndef TW_VERSION
#define TW_VERSION "0"
#endif

/* Above this many bytes waiting in the socket's output buffer, nghttp2 is
 * told to wait (NGHTTP2_ERR_WOULDBLOCK) until the buffer drains. */
#define OUTPUT_HIGH_WATER (1u << 20)
/* Receive windows we announce: per stream and for the whole connection. */
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)

#define NO_RST (-1)

typedef struct md_array {
    tw_grpc_md *v;
    size_t n;
    size_t cap;
} md_array;

typedef enum { ENC_IDENTITY = 0, ENC_GZIP = 1, ENC_OTHER = 2 } enc_kind;

typedef struct tw_conn tw_conn;
struct tw_conn {
    tw_grpc_channel *ch;
    tw_conn *next;
    struct bufferevent *bev;
    nghttp2_session *session;
    const struct addrinfo *next_ai; /* next address to try */
    char addr[INET6_ADDRSTRLEN + 8]; /* address being tried, for messages */
    int connected;
    int goaway;       /* received GOAWAY: takes no new calls */
    int failed;       /* dead; freed by the next kick */
    int fail_pending; /* could not even start connecting: fail from the kick */
    char errmsg[256];
};

struct tw_grpc_channel {
    struct event_base *base;
    char *authority; /* "host:port" as given */
    struct addrinfo *ai;
    struct event *kick;
    tw_conn *conns;
    tw_conn *cur;          /* takes new calls; NULL: open one on the next call */
    tw_grpc_ccall *calls;  /* every call not yet reaped */
    unsigned nconnections; /* opened so far */
    int closing;
};

struct tw_grpc_ccall {
    tw_grpc_channel *ch;
    tw_grpc_ccall *prev, *next;
    tw_conn *conn;
    int32_t stream_id;
    char *path;
    tw_grpc_client_handlers h;
    void *arg;
    struct evbuffer *out; /* framed request bytes not yet taken by nghttp2 */
    struct event *deadline;
    tw_grpc_decoder dec;
    size_t max_recv;
    md_array headers;
    md_array trailers;
    int block_initial; /* the header block being received is the response headers */
    int http_status;   /* 0: none yet */
    int grpc_status;   /* -1: none; -2: malformed */
    char *grpc_message; /* raw (percent-encoded) */
    size_t grpc_message_len;
    enc_kind enc;
    int bad_content_type;
    int got_headers;  /* final response headers received */
    int got_trailers; /* a header block with END_STREAM was received */
    int send_closed;
    int deferred; /* the data provider returned NGHTTP2_ERR_DEFERRED */
    int in_session; /* nghttp2 may still refer to this call */
    int finished;
};

/* ---- Small helpers ---------------------------------------------------- */

static void ch_kick(tw_grpc_channel *ch) {
    if (ch->kick != NULL)
        event_active(ch->kick, EV_TIMEOUT, 0);
}

static const tw_log_ctx *ch_log(const tw_grpc_channel *ch, tw_log_ctx *ctx) {
    ctx->peer = ch->authority;
    ctx->call = NULL;
    return ctx;
}

static int has_prefix(const uint8_t *s, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

static int equals(const uint8_t *s, size_t len, const char *lit) {
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static void md_array_free(md_array *a) {
    tw_grpc_md_free(a->v, a->n);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* Append one entry (copied; "-bin" values base64-decoded). A "-bin" value
 * that is not base64 is dropped. Returns 0 or -1 on ENOMEM. */
static int md_array_add(md_array *a, const char *key, size_t keylen, const char *value,
                        size_t valuelen) {
    char *k = NULL, *v = NULL;
    size_t vlen = valuelen;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        tw_grpc_md *nv = realloc(a->v, cap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        a->v = nv;
        a->cap = cap;
    }
    if (tw_grpc_key_is_bin(key, keylen)) {
        v = (char *)tw_grpc_base64_decode(value, valuelen, &vlen);
        if (v == NULL)
            return 0; /* malformed (or ENOMEM): drop the entry */
    } else {
        v = malloc(valuelen + 1);
        if (v == NULL)
            return -1;
        memcpy(v, value, valuelen);
        v[valuelen] = '\0';
    }
    k = strndup(key, keylen);
    if (k == NULL) {
        free(v);
        return -1;
    }
    a->v[a->n].key = k;
    a->v[a->n].value = v;
    a->v[a->n].value_len = vlen;
    a->n++;
    return 0;
}

/* Deep copy of md[0..n) into *out / *nout. Returns 0 or -1. */
static int md_copy(const tw_grpc_md *md, size_t n, tw_grpc_md **out, size_t *nout) {
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    tw_grpc_md *v = calloc(n, sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char *k = strdup(md[i].key);
        char *val = malloc(md[i].value_len + 1);
        if (k == NULL || val == NULL) {
            free(k);
            free(val);
            tw_grpc_md_free(v, i);
            return -1;
        }
        memcpy(val, md[i].value, md[i].value_len);
        val[md[i].value_len] = '\0';
        v[i].key = k;
        v[i].value = val;
        v[i].value_len = md[i].value_len;
    }
    *out = v;
    *nout = n;
    return 0;
}

const tw_grpc_md *tw_grpc_md_find(const tw_grpc_md *md, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(md[i].key, key) == 0)
            return &md[i];
    return NULL;
}

void tw_grpc_md_free(tw_grpc_md *md, size_t n) {
    if (md == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free((void *)md[i].key);
        free((void *)md[i].value);
    }
    free(md);
}

int tw_grpc_status_from_http(int http_status) {
    switch (http_status) {
    case 400:
        return TW_GRPC_INTERNAL;
    case 401:
        return TW_GRPC_UNAUTHENTICATED;
    case 403:
        return TW_GRPC_PERMISSION_DENIED;
    case 404:
        return TW_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return TW_GRPC_UNAVAILABLE;
    default:
        return TW_GRPC_UNKNOWN;
    }
}

/* gRPC status for a stream reset by the peer (doc/PROTOCOL-HTTP2.md). */
static int status_from_rst(uint32_t code) {
    switch (code) {
    case NGHTTP2_REFUSED_STREAM:
        return TW_GRPC_UNAVAILABLE;
    case NGHTTP2_CANCEL:
        return TW_GRPC_CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return TW_GRPC_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return TW_GRPC_PERMISSION_DENIED;
    default:
        return TW_GRPC_INTERNAL;
    }
}

/* ---- Call completion -------------------------------------------------- */

/* End the call: cancel its timer, reset the stream with `rst` (an HTTP/2
 * error code) unless NO_RST, and run on_close. No-op when already finished. */
static void call_finish(tw_grpc_ccall *c, int status, const char *message, int rst) {
    if (c->finished)
        return;
    c->finished = 1;
    if (c->deadline != NULL)
        event_del(c->deadline);
    if (rst != NO_RST && c->conn != NULL && !c->conn->failed && c->in_session)
        (void)nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE, c->stream_id,
                                        (uint32_t)rst);
    ch_kick(c->ch);
    if (c->h.on_close != NULL)
        c->h.on_close(c, status, message != NULL ? message : "", c->trailers.v, c->trailers.n,
                      c->arg);
}

static void call_finishf(tw_grpc_ccall *c, int status, int rst, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_finishf(tw_grpc_ccall *c, int status, int rst, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    call_finish(c, status, buf, rst);
}

/* The server ended the stream (END_STREAM on HEADERS or DATA): work out the
 * status from what arrived and finish. */
static void call_complete(tw_grpc_ccall *c) {
    int status;
    char *decoded = NULL;
    char buf[128];
    const char *msg = "";

    if (c->grpc_status >= 0) {
        status = c->grpc_status;
        if (c->grpc_message != NULL) {
            decoded = tw_grpc_percent_decode(c->grpc_message, c->grpc_message_len, NULL);
            msg = decoded != NULL ? decoded : "";
        }
        if (status == TW_GRPC_OK && !tw_grpc_decoder_idle(&c->dec)) {
            status = TW_GRPC_INTERNAL;
            msg = "stream ended inside a message";
        }
    } else if (c->grpc_status == -2) {
        status = TW_GRPC_UNKNOWN;
        msg = "malformed grpc-status";
    } else if (c->http_status != 200) {
        status = tw_grpc_status_from_http(c->http_status);
        snprintf(buf, sizeof(buf), "HTTP status %d", c->http_status);
        msg = buf;
    } else if (c->bad_content_type) {
        status = TW_GRPC_UNKNOWN;
        msg = "response content-type is not application/grpc";
    } else if (c->got_trailers) {
        status = TW_GRPC_UNKNOWN;
        msg = "missing grpc-status in trailers";
    } else {
        status = TW_GRPC_INTERNAL;
        msg = "server closed the stream without trailers";
    }

    /* The server is done; if we are still sending, tell it we stopped. */
    int rst = NO_RST;
    if (c->conn != NULL && c->in_session &&
        nghttp2_session_get_stream_local_close(c->conn->session, c->stream_id) == 0)
        rst = NGHTTP2_NO_ERROR;
    call_finish(c, status, msg, rst);
    free(decoded);
}

static void call_free(tw_grpc_ccall *c) {
    if (c->deadline != NULL)
        event_free(c->deadline);
    if (c->out != NULL)
        evbuffer_free(c->out);
    tw_grpc_decoder_free(&c->dec);
    md_array_free(&c->headers);
    md_array_free(&c->trailers);
    free(c->grpc_message);
    free(c->path);
    free(c);
}

static void call_unlink(tw_grpc_ccall *c) {
    tw_grpc_channel *ch = c->ch;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        ch->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* ---- Connections ------------------------------------------------------ */

/* The connection is dead: stop its I/O, fail its unfinished calls with
 * UNAVAILABLE and `msg`, and leave it for the kick event to free. */
static void conn_fail(tw_conn *conn, const char *msg) {
    tw_grpc_channel *ch = conn->ch;
    tw_log_ctx lc;
    if (conn->failed)
        return;
    conn->failed = 1;
    if (ch->cur == conn)
        ch->cur = NULL;
    if (conn->bev != NULL)
        bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
    TW_DEBUG(ch_log(ch, &lc), "grpc client: connection down: %s", msg);
    /* New calls started from on_close go to the head of the list and to
     * another connection: walking forward from here is safe. */
    for (tw_grpc_ccall *c = ch->calls; c != NULL; c = c->next)
        if (c->conn == conn && !c->finished)
            call_finish(c, TW_GRPC_UNAVAILABLE, msg, NO_RST);
    ch_kick(ch);
}

static void conn_free(tw_conn *conn) {
    for (tw_grpc_ccall *c = conn->ch->calls; c != NULL; c = c->next) {
        if (c->conn == conn) {
            c->in_session = 0;
            c->conn = NULL;
        }
    }
    if (conn->session != NULL)
        nghttp2_session_del(conn->session);
    if (conn->bev != NULL)
        bufferevent_free(conn->bev);
    free(conn);
}

/* Hand what nghttp2 has to the socket. Closes the connection once nghttp2
 * wants neither to read nor write (after GOAWAY, when the last stream is
 * done). */
static void conn_flush(tw_conn *conn) {
    char msg[128];
    if (conn->failed || !conn->connected)
        return;
    int rv = nghttp2_session_send(conn->session);
    if (rv != 0) {
        snprintf(msg, sizeof(msg), "HTTP/2 error: %s", nghttp2_strerror(rv));
        conn_fail(conn, msg);
        return;
    }
    if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session) &&
        evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0)
        conn_fail(conn, "connection closed after GOAWAY");
}

static void conn_read_cb(struct bufferevent *bev, void *arg) {
    tw_conn *conn = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char msg[128];
    while (!conn->failed && evbuffer_get_length(in) > 0) {
        size_t chunk = evbuffer_get_contiguous_space(in);
        unsigned char *data = evbuffer_pullup(in, (ev_ssize_t)chunk);
        ssize_t rv = nghttp2_session_mem_recv(conn->session, data, chunk);
        if (rv < 0) {
            snprintf(msg, sizeof(msg), "HTTP/2 protocol error: %s", nghttp2_strerror((int)rv));
            conn_fail(conn, msg);
            return;
        }
        evbuffer_drain(in, (size_t)rv);
    }
    conn_flush(conn);
}

static void conn_write_cb(struct bufferevent *bev, void *arg) {
    (void)bev;
    conn_flush(arg);
}

static int conn_connect(tw_conn *conn);

static void conn_event_cb(struct bufferevent *bev, short events, void *arg) {
    tw_conn *conn = arg;
    tw_log_ctx lc;
    char msg[300];
    int err = EVUTIL_SOCKET_ERROR();

    if (events & BEV_EVENT_CONNECTED) {
        int one = 1;
        evutil_socket_t fd = bufferevent_getfd(bev);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn->connected = 1;
        TW_DEBUG(ch_log(conn->ch, &lc), "grpc client: connected to %s", conn->addr);
        conn_flush(conn);
        return;
    }
    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (!conn->connected) {
        snprintf(conn->errmsg, sizeof(conn->errmsg), "connect to %s: %s", conn->addr,
                 err != 0 ? evutil_socket_error_to_string(err) : "connection failed");
        bufferevent_free(conn->bev);
        conn->bev = NULL;
        if (conn->next_ai != NULL && conn_connect(conn) == 0)
            return;
        conn_fail(conn, conn->errmsg);
        return;
    }
    if (events & BEV_EVENT_EOF)
        snprintf(msg, sizeof(msg), "connection to %s closed by the server", conn->addr);
    else
        snprintf(msg, sizeof(msg), "connection to %s failed: %s", conn->addr,
                 err != 0 ? evutil_socket_error_to_string(err) : "socket error");
    conn_fail(conn, msg);
}

/* Start connecting to the next address that accepts a connect() attempt.
 * Returns 0 when an attempt is under way, -1 (errmsg set) when none is left. */
static int conn_connect(tw_conn *conn) {
    while (conn->next_ai != NULL) {
        const struct addrinfo *ai = conn->next_ai;
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        conn->next_ai = ai->ai_next;
        if (ai->ai_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ai->ai_addr;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
            snprintf(conn->addr, sizeof(conn->addr), "%s:%d", host, port);
        } else if (ai->ai_family == AF_INET6) {
            const struct sockaddr_in6 *s6 =
                (const struct sockaddr_in6 *)(const void *)ai->ai_addr;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
            port = ntohs(s6->sin6_port);
            snprintf(conn->addr, sizeof(conn->addr), "[%s]:%d", host, port);
        } else {
            continue;
        }
        struct bufferevent *bev =
            bufferevent_socket_new(conn->ch->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
            snprintf(conn->errmsg, sizeof(conn->errmsg), "connect to %s: out of memory",
                     conn->addr);
            return -1;
        }
        bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, conn);
        if (bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen) == 0) {
            bufferevent_enable(bev, EV_READ | EV_WRITE);
            conn->bev = bev;
            return 0;
        }
        int err = EVUTIL_SOCKET_ERROR();
        snprintf(conn->errmsg, sizeof(conn->errmsg), "connect to %s: %s", conn->addr,
                 err != 0 ? evutil_socket_error_to_string(err) : "connection failed");
        bufferevent_free(bev);
    }
    return -1;
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

static tw_grpc_ccall *stream_call(nghttp2_session *session, int32_t stream_id) {
    tw_grpc_ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
    return (c != NULL && !c->finished) ? c : NULL;
}

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data) {
    tw_conn *conn = user_data;
    (void)session;
    (void)flags;
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    if (evbuffer_get_length(out) >= OUTPUT_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                            void *user_data) {
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    tw_grpc_ccall *c = stream_call(session, frame->hd.stream_id);
    if (c != NULL)
        c->block_initial = !c->got_headers;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    tw_grpc_ccall *c = stream_call(session, frame->hd.stream_id);
    if (c == NULL)
        return 0;

    if (namelen > 0 && name[0] == ':') {
        if (c->block_initial && equals(name, namelen, ":status")) {
            int st = 0;
            for (size_t i = 0; i < valuelen; i++) {
                if (value[i] < '0' || value[i] > '9' || i >= 3) {
                    st = 0;
                    break;
                }
                st = st * 10 + (value[i] - '0');
            }
            c->http_status = st;
        }
        return 0;
    }
    if (equals(name, namelen, "content-type")) {
        if (c->block_initial && !has_prefix(value, valuelen, "application/grpc"))
            c->bad_content_type = 1;
        return 0;
    }
    if (equals(name, namelen, "grpc-status")) {
        int st = 0;
        if (valuelen == 0 || valuelen > 9) {
            st = -2;
        } else {
            for (size_t i = 0; i < valuelen; i++) {
                if (value[i] < '0' || value[i] > '9') {
                    st = -2;
                    break;
                }
                st = st * 10 + (value[i] - '0');
            }
        }
        c->grpc_status = st;
        return 0;
    }
    if (equals(name, namelen, "grpc-message")) {
        free(c->grpc_message);
        c->grpc_message = strndup((const char *)value, valuelen);
        c->grpc_message_len = c->grpc_message != NULL ? valuelen : 0;
        return 0;
    }
    if (equals(name, namelen, "grpc-encoding")) {
        if (equals(value, valuelen, "identity"))
            c->enc = ENC_IDENTITY;
        else if (equals(value, valuelen, "gzip"))
            c->enc = ENC_GZIP;
        else
            c->enc = ENC_OTHER;
        return 0;
    }
    if (equals(name, namelen, "grpc-accept-encoding") || equals(name, namelen, "te") ||
        equals(name, namelen, "content-length"))
        return 0;
    md_array *dst = c->block_initial ? &c->headers : &c->trailers;
    if (md_array_add(dst, (const char *)name, namelen, (const char *)value, valuelen) != 0)
        call_finish(c, TW_GRPC_INTERNAL, "out of memory", NGHTTP2_CANCEL);
    return 0;
}

static int on_message(void *arg, int compressed, const uint8_t *data, size_t len) {
    tw_grpc_ccall *c = arg;
    if (c->finished)
        return 1;
    if (!compressed) {
        if (c->h.on_message != NULL)
            c->h.on_message(c, data, len, c->arg);
        return c->finished;
    }
    if (c->enc != ENC_GZIP) {
        call_finish(c, TW_GRPC_INTERNAL,
                    "compressed message without a supported grpc-encoding", NGHTTP2_CANCEL);
        return 1;
    }
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    int rv = tw_grpc_gunzip(data, len, c->max_recv, &plain, &plain_len);
    if (rv == -2) {
        call_finishf(c, TW_GRPC_RESOURCE_EXHAUSTED, NGHTTP2_CANCEL,
                     "decompressed message larger than %zu bytes", c->max_recv);
        return 1;
    }
    if (rv != 0) {
        call_finish(c, TW_GRPC_INTERNAL, "corrupt gzip message", NGHTTP2_CANCEL);
        return 1;
    }
    if (c->h.on_message != NULL)
        c->h.on_message(c, plain, plain_len, c->arg);
    free(plain);
    return c->finished;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data) {
    (void)flags;
    (void)user_data;
    tw_grpc_ccall *c = stream_call(session, stream_id);
    if (c == NULL || !c->got_headers || c->http_status != 200)
        return 0;
    switch (tw_grpc_decoder_feed(&c->dec, data, len, on_message, c)) {
    case TW_GRPC_DECODE_OK:
    case TW_GRPC_DECODE_ABORTED:
        break;
    case TW_GRPC_DECODE_OVERSIZE:
        call_finishf(c, TW_GRPC_RESOURCE_EXHAUSTED, NGHTTP2_CANCEL,
                     "received message larger than max (%zu bytes)", c->max_recv);
        break;
    case TW_GRPC_DECODE_NOMEM:
    default:
        call_finish(c, TW_GRPC_INTERNAL, "out of memory", NGHTTP2_CANCEL);
        break;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    tw_conn *conn = user_data;
    tw_grpc_ccall *c;
    tw_log_ctx lc;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        c = stream_call(session, frame->hd.stream_id);
        if (c == NULL)
            break;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            if (c->block_initial) {
                /* Trailers-only: everything is trailing metadata. */
                md_array tmp = c->trailers;
                c->trailers = c->headers;
                c->headers = tmp;
                c->got_headers = 1;
            }
            c->got_trailers = 1;
            call_complete(c);
            break;
        }
        if (!c->block_initial)
            break; /* trailers without END_STREAM: nghttp2 rejects those */
        if (c->http_status >= 100 && c->http_status < 200) {
            md_array_free(&c->headers); /* informational: wait for the real one */
            c->http_status = 0;
            c->bad_content_type = 0;
            break;
        }
        c->got_headers = 1;
        if (c->http_status != 200) {
            call_finishf(c, tw_grpc_status_from_http(c->http_status), NGHTTP2_CANCEL,
                         "HTTP status %d", c->http_status);
            break;
        }
        if (c->bad_content_type) {
            call_finish(c, TW_GRPC_UNKNOWN, "response content-type is not application/grpc",
                        NGHTTP2_CANCEL);
            break;
        }
        if (c->h.on_headers != NULL)
            c->h.on_headers(c, c->headers.v, c->headers.n, c->arg);
        break;
    case NGHTTP2_DATA:
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            break;
        c = stream_call(session, frame->hd.stream_id);
        if (c != NULL)
            call_complete(c);
        break;
    case NGHTTP2_GOAWAY:
        conn->goaway = 1;
        if (conn->ch->cur == conn)
            conn->ch->cur = NULL;
        TW_DEBUG(ch_log(conn->ch, &lc), "grpc client: GOAWAY (last stream %d, error %u)",
                 frame->goaway.last_stream_id, frame->goaway.error_code);
        break;
    default:
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
    tw_conn *conn = user_data;
    tw_grpc_ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (c == NULL)
        return 0;
    c->in_session = 0;
    if (!c->finished) {
        if (error_code == NGHTTP2_REFUSED_STREAM)
            call_finish(c, TW_GRPC_UNAVAILABLE,
                        conn->goaway ? "stream refused (server sent GOAWAY)" : "stream refused",
                        NO_RST);
        else
            call_finishf(c, status_from_rst(error_code), NO_RST, "stream reset by server: %s",
                         nghttp2_http2_strerror(error_code));
    }
    ch_kick(conn->ch);
    return 0;
}

static int on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
                             int lib_error_code, void *user_data) {
    tw_conn *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    tw_grpc_ccall *c;
    for (c = conn->ch->calls; c != NULL; c = c->next)
        if (c->conn == conn && c->stream_id == frame->hd.stream_id)
            break;
    if (c == NULL)
        return 0;
    /* If the stream was opened, on_stream_close follows and clears it. */
    if (nghttp2_session_find_stream(session, frame->hd.stream_id) == NULL)
        c->in_session = 0;
    if (!c->finished)
        call_finishf(c, TW_GRPC_UNAVAILABLE, NO_RST, "request not sent: %s",
                     nghttp2_strerror(lib_error_code));
    ch_kick(conn->ch);
    return 0;
}

static ssize_t on_read_request(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                               size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                               void *user_data) {
    (void)session;
    (void)stream_id;
    (void)user_data;
    tw_grpc_ccall *c = source->ptr;
    size_t avail = evbuffer_get_length(c->out);
    if (c->finished) {
        c->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (avail == 0) {
        if (c->send_closed) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        c->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    if (evbuffer_remove(c->out, buf, n) != (int)n)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (n == avail && c->send_closed)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static tw_conn *conn_new(tw_grpc_channel *ch) {
    nghttp2_session_callbacks *cbs = NULL;
    tw_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return NULL;
    conn->ch = ch;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail_conn;
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    int rv = nghttp2_session_client_new(&conn->session, cbs, conn);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        goto fail_conn;

    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings,
                                sizeof(settings) / sizeof(settings[0])) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) !=
            0)
        goto fail_session;

    conn->next_ai = ch->ai;
    if (conn_connect(conn) != 0)
        conn->fail_pending = 1; /* calls attach, then fail from the kick */
    conn->next = ch->conns;
    ch->conns = conn;
    ch->nconnections++;
    ch_kick(ch);
    return conn;

fail_session:
    nghttp2_session_del(conn->session);
fail_conn:
    free(conn);
    return NULL;
}

/* The kick event: fail connections that never started, flush, free dead
 * connections, reap finished calls. */
static void kick_cb(evutil_socket_t fd, short what, void *arg) {
    tw_grpc_channel *ch = arg;
    (void)fd;
    (void)what;
    for (tw_conn *conn = ch->conns; conn != NULL; conn = conn->next)
        if (conn->fail_pending && !conn->failed)
            conn_fail(conn, conn->errmsg);
    for (tw_conn *conn = ch->conns; conn != NULL; conn = conn->next)
        conn_flush(conn);
    for (tw_conn **pp = &ch->conns; *pp != NULL;) {
        tw_conn *conn = *pp;
        if (conn->failed) {
            *pp = conn->next;
            conn_free(conn);
        } else {
            pp = &conn->next;
        }
    }
    for (tw_grpc_ccall *c = ch->calls, *next; c != NULL; c = next) {
        next = c->next;
        if (c->finished && !c->in_session) {
            call_unlink(c);
            call_free(c);
        }
    }
}

/* ---- Channels --------------------------------------------------------- */

tw_grpc_channel *tw_grpc_channel_new(struct event_base *base, const char *hostport, char *err,
                                     size_t errlen) {
    char host[256], port[16];
    int portnum = 0;
    struct addrinfo hints, *ai = NULL;
    tw_grpc_channel *ch;

    if (base == NULL || hostport == NULL ||
        tw_hostport_parse(hostport, host, sizeof(host), &portnum) != 0 || host[0] == '\0' ||
        portnum == 0) {
        snprintf(err, errlen, "bad address \"%s\" (want host:port)", hostport ? hostport : "");
        return NULL;
    }
    snprintf(port, sizeof(port), "%d", portnum);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    int rv = getaddrinfo(host, port, &hints, &ai);
    if (rv != 0) {
        snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(rv));
        return NULL;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        goto fail_ai;
    ch->base = base;
    ch->ai = ai;
    ch->authority = strdup(hostport);
    if (ch->authority == NULL)
        goto fail_ch;
    ch->kick = event_new(base, -1, 0, kick_cb, ch);
    if (ch->kick == NULL)
        goto fail_authority;
    return ch;

fail_authority:
    free(ch->authority);
fail_ch:
    free(ch);
fail_ai:
    freeaddrinfo(ai);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void tw_grpc_channel_free(tw_grpc_channel *ch) {
    if (ch == NULL)
        return;
    ch->closing = 1;
    for (tw_grpc_ccall *c = ch->calls; c != NULL; c = c->next)
        if (!c->finished)
            call_finish(c, TW_GRPC_CANCELLED, "channel closed", NO_RST);
    while (ch->conns != NULL) {
        tw_conn *conn = ch->conns;
        ch->conns = conn->next;
        conn_free(conn);
    }
    while (ch->calls != NULL) {
        tw_grpc_ccall *c = ch->calls;
        call_unlink(c);
        call_free(c);
    }
    event_free(ch->kick);
    freeaddrinfo(ch->ai);
    free(ch->authority);
    free(ch);
}

unsigned tw_grpc_channel_connections(const tw_grpc_channel *ch) {
    return ch->nconnections;
}

size_t tw_grpc_channel_calls(const tw_grpc_channel *ch) {
    size_t n = 0;
    for (const tw_grpc_ccall *c = ch->calls; c != NULL; c = c->next)
        n++;
    return n;
}

struct event_base *tw_grpc_channel_base(const tw_grpc_channel *ch) {
    return ch->base;
}

/* ---- Calls ------------------------------------------------------------ */

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    call_finish(arg, TW_GRPC_DEADLINE_EXCEEDED, "deadline exceeded", NGHTTP2_CANCEL);
}

static int md_key_ok(const char *key) {
    size_t n = strlen(key);
    if (n == 0 || strncmp(key, "grpc-", 5) == 0 || strcmp(key, "content-type") == 0 ||
        strcmp(key, "te") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              ch == '.'))
            return 0;
    }
    return 1;
}

static nghttp2_nv make_nv(const char *name, const char *value, size_t value_len) {
    nghttp2_nv nv;
    nv.name = (uint8_t *)(uintptr_t)name;
    nv.namelen = strlen(name);
    nv.value = (uint8_t *)(uintptr_t)value;
    nv.valuelen = value_len;
    nv.flags = NGHTTP2_NV_FLAG_NONE;
    return nv;
}

tw_grpc_ccall *tw_grpc_channel_start(tw_grpc_channel *ch, const char *path,
                                     const tw_grpc_call_opts *opts,
                                     const tw_grpc_client_handlers *h, void *arg) {
    static const tw_grpc_call_opts no_opts;
    tw_grpc_ccall *c;
    nghttp2_nv *nva = NULL;
    char **encoded = NULL; /* base64 of "-bin" values */
    char timeout[10];
    size_t nnv = 0, nmd;

    if (ch == NULL || ch->closing || path == NULL || path[0] != '/')
        return NULL;
    if (opts == NULL)
        opts = &no_opts;
    nmd = opts->metadata != NULL ? opts->metadata_count : 0;
    for (size_t i = 0; i < nmd; i++)
        if (opts->metadata[i].key == NULL || opts->metadata[i].value == NULL ||
            !md_key_ok(opts->metadata[i].key))
            return NULL;
    if (opts->timeout_ms < 0)
        return NULL;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ch = ch;
    c->grpc_status = -1;
    c->arg = arg;
    if (h != NULL)
        c->h = *h;
    c->max_recv = opts->max_recv_message ? opts->max_recv_message : TW_GRPC_DEFAULT_MAX_MESSAGE;
    tw_grpc_decoder_init(&c->dec, c->max_recv);
    c->path = strdup(path);
    c->out = evbuffer_new();
    if (c->path == NULL || c->out == NULL)
        goto fail_call;
    if (opts->timeout_ms > 0) {
        struct timeval tv = {.tv_sec = (time_t)(opts->timeout_ms / 1000),
                             .tv_usec = (suseconds_t)((opts->timeout_ms % 1000) * 1000)};
        c->deadline = evtimer_new(ch->base, deadline_cb, c);
        if (c->deadline == NULL || evtimer_add(c->deadline, &tv) != 0)
            goto fail_call;
        int64_t ns = opts->timeout_ms > INT64_MAX / 1000000 ? INT64_MAX
                                                            : opts->timeout_ms * 1000000;
        tw_grpc_timeout_format(ns, timeout);
    }

    nva = calloc(8 + nmd, sizeof(*nva));
    encoded = calloc(nmd + 1, sizeof(*encoded));
    if (nva == NULL || encoded == NULL)
        goto fail_nva;
    nva[nnv++] = make_nv(":method", "POST", 4);
    nva[nnv++] = make_nv(":scheme", "http", 4);
    nva[nnv++] = make_nv(":path", path, strlen(path));
    nva[nnv++] = make_nv(":authority", ch->authority, strlen(ch->authority));
    nva[nnv++] = make_nv("te", "trailers", 8);
    nva[nnv++] = make_nv("content-type", "application/grpc", 16);
    nva[nnv++] = make_nv("user-agent", "tidewatch-grpc-c/" TW_VERSION,
                         strlen("tidewatch-grpc-c/" TW_VERSION));
    if (opts->timeout_ms > 0)
        nva[nnv++] = make_nv("grpc-timeout", timeout, strlen(timeout));
    for (size_t i = 0; i < nmd; i++) {
        const tw_grpc_md *m = &opts->metadata[i];
        size_t vlen = m->value_len ? m->value_len : strlen(m->value);
        if (tw_grpc_key_is_bin(m->key, strlen(m->key))) {
            size_t elen = 0;
            encoded[i] = tw_grpc_base64_encode((const uint8_t *)m->value, vlen, &elen);
            if (encoded[i] == NULL)
                goto fail_encoded;
            nva[nnv++] = make_nv(m->key, encoded[i], elen);
        } else {
            nva[nnv++] = make_nv(m->key, m->value, vlen);
        }
    }

    tw_conn *conn = ch->cur;
    if (conn == NULL) {
        conn = conn_new(ch);
        if (conn == NULL)
            goto fail_encoded;
        if (!conn->fail_pending)
            ch->cur = conn;
    }
    nghttp2_data_provider prd;
    prd.source.ptr = c;
    prd.read_callback = on_read_request;
    int32_t id = nghttp2_submit_request(conn->session, NULL, nva, nnv, &prd, c);
    if (id < 0)
        goto fail_encoded;
    c->stream_id = id;
    c->conn = conn;
    c->in_session = 1;
    c->next = ch->calls;
    if (ch->calls != NULL)
        ch->calls->prev = c;
    ch->calls = c;
    ch_kick(ch);

    for (size_t i = 0; i < nmd; i++)
        free(encoded[i]);
    free(encoded);
    free(nva);
    return c;

fail_encoded:
    for (size_t i = 0; i < nmd; i++)
        free(encoded[i]);
fail_nva:
    free(encoded);
    free(nva);
fail_call:
    call_free(c);
    return NULL;
}

/* Let nghttp2 pull request bytes again after the provider deferred. */
static void call_resume(tw_grpc_ccall *c) {
    if (c->deferred && c->in_session && c->conn != NULL && !c->conn->failed) {
        c->deferred = 0;
        (void)nghttp2_session_resume_data(c->conn->session, c->stream_id);
    }
    ch_kick(c->ch);
}

int tw_grpc_ccall_send(tw_grpc_ccall *call, const uint8_t *msg, size_t len) {
    uint8_t prefix[TW_GRPC_PREFIX_LEN];
    if (call == NULL || call->finished || call->send_closed || len > UINT32_MAX ||
        (msg == NULL && len > 0))
        return -1;
    tw_grpc_prefix_write(prefix, 0, (uint32_t)len);
    size_t before = evbuffer_get_length(call->out);
    if (evbuffer_add(call->out, prefix, sizeof(prefix)) != 0 ||
        (len > 0 && evbuffer_add(call->out, msg, len) != 0)) {
        /* Keep the framing intact: drop the partial message. */
        size_t after = evbuffer_get_length(call->out);
        if (after > before) {
            struct evbuffer *keep = evbuffer_new();
            if (keep != NULL) {
                evbuffer_remove_buffer(call->out, keep, before);
                evbuffer_free(call->out);
                call->out = keep;
            }
        }
        return -1;
    }
    call_resume(call);
    return 0;
}

void tw_grpc_ccall_close_send(tw_grpc_ccall *call) {
    if (call == NULL || call->finished || call->send_closed)
        return;
    call->send_closed = 1;
    call_resume(call);
}

void tw_grpc_ccall_cancel(tw_grpc_ccall *call) {
    if (call == NULL)
        return;
    call_finish(call, TW_GRPC_CANCELLED, "cancelled by the client", NGHTTP2_CANCEL);
}

size_t tw_grpc_ccall_pending(const tw_grpc_ccall *call) {
    return evbuffer_get_length(call->out);
}

const char *tw_grpc_ccall_path(const tw_grpc_ccall *call) {
    return call->path;
}

const tw_grpc_md *tw_grpc_ccall_headers(const tw_grpc_ccall *call, size_t *n) {
    *n = call->headers.n;
    return call->headers.v;
}

/* ---- Blocking helpers ------------------------------------------------- */

typedef struct block_ctx {
    tw_grpc_result *out;
    int streaming; /* server stream: messages go to on_msg */
    int (*on_msg)(void *arg, const uint8_t *msg, size_t len);
    void *arg;
    size_t nmsg;
    int done;
} block_ctx;

void tw_grpc_result_free(tw_grpc_result *r) {
    if (r == NULL)
        return;
    free(r->message);
    free(r->data);
    tw_grpc_md_free(r->headers, r->nheaders);
    tw_grpc_md_free(r->trailers, r->ntrailers);
    memset(r, 0, sizeof(*r));
}

static void block_on_headers(tw_grpc_ccall *call, const tw_grpc_md *md, size_t n, void *arg) {
    block_ctx *b = arg;
    tw_grpc_md_free(b->out->headers, b->out->nheaders);
    if (md_copy(md, n, &b->out->headers, &b->out->nheaders) != 0)
        call_finish(call, TW_GRPC_INTERNAL, "out of memory", NGHTTP2_CANCEL);
}

static void block_on_message(tw_grpc_ccall *call, const uint8_t *msg, size_t len, void *arg) {
    block_ctx *b = arg;
    b->nmsg++;
    if (b->streaming) {
        if (b->on_msg != NULL && b->on_msg(b->arg, msg, len) != 0)
            tw_grpc_ccall_cancel(call);
        return;
    }
    if (b->nmsg > 1) {
        call_finish(call, TW_GRPC_INTERNAL, "server sent more than one response message",
                    NGHTTP2_CANCEL);
        return;
    }
    if (len > 0) {
        b->out->data = malloc(len);
        if (b->out->data == NULL) {
            call_finish(call, TW_GRPC_INTERNAL, "out of memory", NGHTTP2_CANCEL);
            return;
        }
        memcpy(b->out->data, msg, len);
    }
    b->out->len = len;
}

static void block_on_close(tw_grpc_ccall *call, int status, const char *message,
                           const tw_grpc_md *trailers, size_t n, void *arg) {
    block_ctx *b = arg;
    (void)call;
    if (status == TW_GRPC_OK && !b->streaming && b->nmsg == 0) {
        status = TW_GRPC_INTERNAL;
        message = "server sent no response message";
    }
    if (status != TW_GRPC_OK) {
        free(b->out->data);
        b->out->data = NULL;
        b->out->len = 0;
    }
    b->out->status = status;
    b->out->message = strdup(message);
    if (md_copy(trailers, n, &b->out->trailers, &b->out->ntrailers) != 0 ||
        b->out->message == NULL) {
        b->out->status = TW_GRPC_INTERNAL;
        tw_grpc_md_free(b->out->trailers, b->out->ntrailers);
        b->out->trailers = NULL;
        b->out->ntrailers = 0;
    }
    b->done = 1;
}

static void block_fail(tw_grpc_result *out, const char *msg) {
    out->status = TW_GRPC_INTERNAL;
    out->message = strdup(msg);
}

/* Start a call with the blocking handlers, send msgs, half-close, and run
 * the loop until on_close. */
static int block_run(tw_grpc_channel *ch, const char *path, const tw_grpc_buf *msgs, size_t n,
                     const tw_grpc_call_opts *opts, block_ctx *b) {
    static const tw_grpc_client_handlers handlers = {
        .on_headers = block_on_headers,
        .on_message = block_on_message,
        .on_close = block_on_close,
    };
    memset(b->out, 0, sizeof(*b->out));
    tw_grpc_ccall *call = tw_grpc_channel_start(ch, path, opts, &handlers, b);
    if (call == NULL) {
        block_fail(b->out, "could not start the call");
        return b->out->status;
    }
    for (size_t i = 0; i < n; i++) {
        if (tw_grpc_ccall_send(call, msgs[i].data, msgs[i].len) != 0) {
            call_finish(call, TW_GRPC_INTERNAL, "could not queue a request message",
                        NGHTTP2_CANCEL);
            break;
        }
    }
    tw_grpc_ccall_close_send(call);
    while (!b->done) {
        if (event_base_loop(ch->base, EVLOOP_ONCE) != 0 && !b->done)
            call_finish(call, TW_GRPC_INTERNAL, "event loop stopped", NGHTTP2_CANCEL);
    }
    return b->out->status;
}

int tw_grpc_unary(tw_grpc_channel *ch, const char *path, const uint8_t *req, size_t len,
                  const tw_grpc_call_opts *opts, tw_grpc_result *out) {
    block_ctx b = {.out = out};
    tw_grpc_buf msg = {.data = req, .len = len};
    return block_run(ch, path, &msg, 1, opts, &b);
}

int tw_grpc_server_stream(tw_grpc_channel *ch, const char *path, const uint8_t *req, size_t len,
                          const tw_grpc_call_opts *opts,
                          int (*on_msg)(void *arg, const uint8_t *msg, size_t len), void *arg,
                          tw_grpc_result *out) {
    block_ctx b = {.out = out, .streaming = 1, .on_msg = on_msg, .arg = arg};
    tw_grpc_buf msg = {.data = req, .len = len};
    return block_run(ch, path, &msg, 1, opts, &b);
}

int tw_grpc_client_stream(tw_grpc_channel *ch, const char *path, const tw_grpc_buf *msgs,
                          size_t n, const tw_grpc_call_opts *opts, tw_grpc_result *out) {
    block_ctx b = {.out = out};
    return block_run(ch, path, msgs, n, opts, &b);
}
