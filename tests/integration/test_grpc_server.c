/* tw_grpc_server over real sockets: our client and raw HTTP/2 (nghttp2's
 * client session) drive an in-process server on one event loop. Covers
 * deferred answers, metadata and peer, deadlines enforced by the server,
 * client cancellation reaching the handler, backpressure against a reader
 * that never reads, HTTP 415, unsupported encodings, oversize messages and
 * graceful shutdown. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tw_grpc_client.h"
#include "tw_grpc_server.h"

/* ---- the test server --------------------------------------------------- */

typedef struct stats {
    int cancels;
    int started;
    char auth[64];
    char peer[64];
    size_t flood_sent;
    size_t flood_max_pending;
    int flood_waiting;
    int blast_refused;
    size_t blast_sent;
    int held_started;
} stats;

static struct event_base *base;
static tw_grpc_server *server;
static tw_grpc_channel *channel;
static stats st;
static char target[64];

static void echo(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    const char *auth = tw_grpc_call_metadata(call, "authorization");
    snprintf(st.auth, sizeof st.auth, "%s", auth ? auth : "");
    snprintf(st.peer, sizeof st.peer, "%s", tw_grpc_call_peer(call));
    tw_grpc_call_reply(call, msg, len);
}

static void on_cancel(tw_grpc_call *call, void *arg)
{
    (void)arg;
    struct event *ev = tw_grpc_call_data(call);
    if (ev)
        event_free(ev);
    st.cancels++;
}

static void slow_reply(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_grpc_call *call = arg;
    event_free(tw_grpc_call_data(call));
    tw_grpc_call_set_data(call, NULL);
    tw_grpc_call_reply(call, (const uint8_t *)"late", 4);
}

/* Answers after the number of milliseconds in the request (as text). */
static void slow(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    char text[16] = {0};
    memcpy(text, msg, len < 15 ? len : 15);
    int ms = atoi(text);
    struct event *ev = evtimer_new(base, slow_reply, call);
    tw_grpc_call_set_data(call, ev);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
    st.started++;
}

static void never(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)call;
    (void)msg;
    (void)len;
    (void)arg;
    st.started++;
}

static void sum_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)arg;
    size_t total = (size_t)(uintptr_t)tw_grpc_call_data(call) + len;
    tw_grpc_call_set_data(call, (void *)(uintptr_t)total);
}

static void sum_done(tw_grpc_call *call, void *arg)
{
    (void)arg;
    char out[32];
    int n = snprintf(out, sizeof out, "%zu", (size_t)(uintptr_t)tw_grpc_call_data(call));
    tw_grpc_call_reply(call, (const uint8_t *)out, (size_t)n);
}

static void sum_cancel(tw_grpc_call *call, void *arg)
{
    (void)call;
    (void)arg;
    st.cancels++;
}

/* Client stream that pauses its connection's input for 200 ms after the
 * first message: a handler that cannot keep up. */
static struct event *resume_ev;
static int paused_messages, messages_while_paused, pause_active;

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pause_active = 0;
    tw_grpc_call_resume_input(arg);
}

static void pause_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    if (pause_active)
        messages_while_paused++;
    if (paused_messages++ == 0) {
        tw_grpc_call_pause_input(call);
        pause_active = 1;
        resume_ev = evtimer_new(base, resume_cb, call);
        struct timeval tv = {0, 200000};
        evtimer_add(resume_ev, &tv);
    }
    sum_message(call, msg, len, arg);
}

static void pause_done(tw_grpc_call *call, void *arg)
{
    event_free(resume_ev);
    resume_ev = NULL;
    sum_done(call, arg);
}

#define FLOOD_CHUNK 16384
#define FLOOD_HIGH (64 * 1024)

/* Streams 16 KiB messages for as long as the client takes them, never
 * queueing more than FLOOD_HIGH: the handler side of backpressure. */
static void flood_pump(tw_grpc_call *call, void *arg)
{
    static uint8_t chunk[FLOOD_CHUNK];
    (void)arg;
    st.flood_waiting = 0;
    while (tw_grpc_call_pending(call) < FLOOD_HIGH) {
        if (st.flood_sent >= (64u << 20)) {
            tw_grpc_call_finish(call, TW_GRPC_OK, NULL);
            return;
        }
        cr_assert_eq(tw_grpc_call_send(call, chunk, sizeof chunk), 0);
        st.flood_sent += sizeof chunk;
        if (tw_grpc_call_pending(call) > st.flood_max_pending)
            st.flood_max_pending = tw_grpc_call_pending(call);
    }
    st.flood_waiting = 1;
    tw_grpc_call_on_writable(call, FLOOD_CHUNK, flood_pump, NULL);
}

static void flood(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len;
    flood_pump(call, arg);
}

static void flood_cancel(tw_grpc_call *call, void *arg)
{
    (void)call;
    (void)arg;
    st.cancels++;
    st.flood_waiting = 0;
}

/* Sends 16 KiB messages without waiting for the reader, as a careless
 * handler would, until the server refuses one (or 1000 went out). */
#define BLAST_CHUNK 16384
static void blast(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    static uint8_t chunk[BLAST_CHUNK];
    (void)msg;
    (void)len;
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        if (tw_grpc_call_send(call, chunk, sizeof chunk) != 0) {
            st.blast_refused++;
            tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "client is not reading");
            return;
        }
        st.blast_sent += sizeof chunk;
    }
    tw_grpc_call_finish(call, TW_GRPC_OK, NULL);
}

/* A client stream whose handler pauses on the first message and never
 * resumes. */
static void hold_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len;
    (void)arg;
    st.held_started++;
    tw_grpc_call_pause_input(call);
}

static void hold_half_close(tw_grpc_call *call, void *arg)
{
    (void)arg;
    tw_grpc_call_reply(call, (const uint8_t *)"done", 4);
}

#define CALL_OUTPUT_CAP (128 * 1024)
#define CONN_OUTPUT_CAP (192 * 1024)

static void setup(void)
{
    memset(&st, 0, sizeof st);
    base = event_base_new();
    tw_grpc_server_config cfg = {.max_recv_message = 1024,
                                 .max_call_output = CALL_OUTPUT_CAP,
                                 .max_conn_output = CONN_OUTPUT_CAP};
    server = tw_grpc_server_new(base, &cfg);
    cr_assert(server);
    const tw_grpc_method methods[] = {
        {.path = "/t.T/Echo", .kind = TW_GRPC_UNARY, .on_message = echo},
        {.path = "/t.T/Slow", .kind = TW_GRPC_UNARY, .on_message = slow, .on_cancel = on_cancel},
        {.path = "/t.T/Never", .kind = TW_GRPC_UNARY, .on_message = never,
         .on_cancel = on_cancel},
        {.path = "/t.T/Sum", .kind = TW_GRPC_CLIENT_STREAM, .on_message = sum_message,
         .on_half_close = sum_done, .on_cancel = sum_cancel},
        {.path = "/t.T/PauseSum", .kind = TW_GRPC_CLIENT_STREAM, .on_message = pause_message,
         .on_half_close = pause_done, .on_cancel = sum_cancel},
        {.path = "/t.T/Flood", .kind = TW_GRPC_SERVER_STREAM, .on_message = flood,
         .on_cancel = flood_cancel},
        {.path = "/t.T/Blast", .kind = TW_GRPC_SERVER_STREAM, .on_message = blast},
        {.path = "/t.T/Hold", .kind = TW_GRPC_CLIENT_STREAM, .on_message = hold_message,
         .on_half_close = hold_half_close, .on_cancel = sum_cancel},
    };
    cr_assert_eq(tw_grpc_server_add_methods(server, methods, sizeof methods / sizeof methods[0]),
                 0);
    char err[256];
    cr_assert_eq(tw_grpc_server_listen(server, "127.0.0.1:0", err, sizeof err), 0, "%s", err);
    snprintf(target, sizeof target, "127.0.0.1:%d", tw_grpc_server_port(server));
    channel = tw_grpc_channel_new(base, target, err, sizeof err);
    cr_assert(channel, "%s", err);
}

static void teardown(void)
{
    tw_grpc_channel_free(channel);
    tw_grpc_server_free(server);
    event_base_free(base);
}

TestSuite(grpc_server, .init = setup, .fini = teardown, .timeout = 30);

/* Run the loop for `ms` milliseconds. */
static void run_for(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* ---- through our client ------------------------------------------------- */

Test(grpc_server, unary_sees_metadata_and_peer)
{
    tw_grpc_md md[] = {{.key = "authorization", .value = "Bearer abc"}};
    tw_grpc_call_opts opts = {.timeout_ms = 5000, .metadata = md, .metadata_count = 1};
    tw_grpc_result r = {0};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", (const uint8_t *)"hi", 2, &opts, &r), 0,
                 "%s", r.message);
    cr_assert_eq(r.len, 2);
    cr_assert(memcmp(r.data, "hi", 2) == 0);
    cr_assert_str_eq(st.auth, "Bearer abc");
    cr_assert(strncmp(st.peer, "127.0.0.1:", 10) == 0, "peer %s", st.peer);
    tw_grpc_result_free(&r);
}

Test(grpc_server, zero_length_message)
{
    tw_grpc_result r = {0};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", NULL, 0, NULL, &r), 0, "%s", r.message);
    cr_assert_eq(r.len, 0);
    tw_grpc_result_free(&r);
}

Test(grpc_server, handler_answers_later_without_blocking)
{
    tw_grpc_result a = {0}, b = {0};
    /* While one call waits 300 ms for its answer, others complete. */
    tw_grpc_call_opts opts = {.timeout_ms = 5000};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Slow", (const uint8_t *)"100", 3, &opts, &a), 0);
    cr_assert_eq(a.len, 4);
    cr_assert(memcmp(a.data, "late", 4) == 0);
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", (const uint8_t *)"x", 1, &opts, &b), 0);
    tw_grpc_result_free(&a);
    tw_grpc_result_free(&b);
}

Test(grpc_server, unknown_method_is_unimplemented)
{
    tw_grpc_result r = {0};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Nope", NULL, 0, NULL, &r), TW_GRPC_UNIMPLEMENTED);
    cr_assert(strstr(r.message, "/t.T/Nope"), "%s", r.message);
    tw_grpc_result_free(&r);
}

Test(grpc_server, oversize_is_resource_exhausted)
{
    uint8_t big[2048] = {0};
    tw_grpc_result r = {0};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", big, sizeof big, NULL, &r),
                 TW_GRPC_RESOURCE_EXHAUSTED, "%d %s", r.status, r.message);
    tw_grpc_result_free(&r);
    /* The connection survives: the next call works. */
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", big, 1000, NULL, &r), 0);
    tw_grpc_result_free(&r);
}

Test(grpc_server, client_stream_sums)
{
    uint8_t a[100] = {0}, b[300] = {0};
    tw_grpc_buf msgs[] = {{a, sizeof a}, {b, sizeof b}, {NULL, 0}, {a, 1}};
    tw_grpc_result r = {0};
    cr_assert_eq(tw_grpc_client_stream(channel, "/t.T/Sum", msgs, 4, NULL, &r), 0, "%s",
                 r.message);
    cr_assert_eq(r.len, 3);
    cr_assert(memcmp(r.data, "401", 3) == 0);
    tw_grpc_result_free(&r);
}

Test(grpc_server, paused_input_holds_back_the_client)
{
    /* 2000 messages of 1000 bytes: far more than one read's worth. */
    static uint8_t chunk[1000];
    static tw_grpc_buf msgs[2000];
    for (int i = 0; i < 2000; i++)
        msgs[i] = (tw_grpc_buf){chunk, sizeof chunk};
    tw_grpc_result r = {0};
    tw_grpc_call_opts opts = {.timeout_ms = 10000};
    cr_assert_eq(tw_grpc_client_stream(channel, "/t.T/PauseSum", msgs, 2000, &opts, &r), 0,
                 "%s", r.message);
    cr_assert_eq(paused_messages, 2000, "every message arrives once resumed");
    cr_assert_eq(messages_while_paused, 0, "no message is delivered while paused (%d were)",
                 messages_while_paused);
    char want[32];
    snprintf(want, sizeof want, "%d", 2000 * 1000);
    cr_assert_eq(r.len, strlen(want));
    cr_assert(memcmp(r.data, want, r.len) == 0);
    tw_grpc_result_free(&r);
}

static int flood_cancel_after(void *arg, const uint8_t *msg, size_t len)
{
    (void)msg;
    (void)len;
    int *n = arg;
    return ++*n >= 3; /* cancel after the third message */
}

Test(grpc_server, client_cancel_reaches_handler)
{
    int n = 0;
    tw_grpc_result r = {0};
    int status = tw_grpc_server_stream(channel, "/t.T/Flood", NULL, 0, NULL, flood_cancel_after,
                                       &n, &r);
    cr_assert_eq(status, TW_GRPC_CANCELLED);
    tw_grpc_result_free(&r);
    run_for(100);
    cr_assert_eq(st.cancels, 1, "the handler's on_cancel runs once");
}

/* ---- raw HTTP/2, for what a well-behaved client never does --------------- */

typedef struct raw {
    int fd;
    nghttp2_session *session;
    int32_t stream_id;
    char http_status[8];
    char grpc_status[8];
    char grpc_message[256];
    int closed;
    size_t data_bytes;
} raw;

static ssize_t raw_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                           void *user)
{
    (void)s;
    (void)flags;
    raw *r = user;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(r->fd, data + off, len - off);
        if (n < 0 && errno == EAGAIN) {
            run_for(5);
            continue;
        }
        cr_assert(n > 0, "write: %s", strerror(errno));
        off += (size_t)n;
    }
    return (ssize_t)len;
}

static int raw_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *user)
{
    (void)s;
    (void)f;
    (void)flags;
    raw *r = user;
    char *dst = NULL;
    size_t cap = 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        dst = r->http_status, cap = sizeof r->http_status;
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        dst = r->grpc_status, cap = sizeof r->grpc_status;
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        dst = r->grpc_message, cap = sizeof r->grpc_message;
    if (dst)
        snprintf(dst, cap, "%.*s", (int)valuelen, value);
    return 0;
}

static int raw_data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *user)
{
    (void)s;
    (void)flags;
    (void)id;
    (void)data;
    ((raw *)user)->data_bytes += len;
    return 0;
}

static int raw_close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    (void)s;
    (void)id;
    (void)code;
    ((raw *)user)->closed = 1;
    return 0;
}

static ssize_t raw_body_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)id;
    (void)user;
    /* src->ptr: a 5-byte empty message prefix, sent once */
    (void)src;
    if (len < 5)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memset(buf, 0, 5);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 5;
}

/* Connect, send one request with the given content-type and extra header,
 * and an empty gRPC message as body. */
static void raw_start(raw *r, const char *path, const char *content_type, const char *xname,
                      const char *xvalue)
{
    memset(r, 0, sizeof *r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)tw_grpc_server_port(server))};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    cr_assert_eq(connect(r->fd, (struct sockaddr *)&sin, sizeof sin), 0);
    fcntl(r->fd, F_SETFL, O_NONBLOCK);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, raw_send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, raw_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, raw_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, raw_close_cb);
    cr_assert_eq(nghttp2_session_client_new(&r->session, cbs, r), 0);
    nghttp2_session_callbacks_del(cbs);
    cr_assert_eq(nghttp2_submit_settings(r->session, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    nghttp2_nv nva[6];
    size_t n = 0;
#define RAW_NV(k, v)                                                                               \
    nva[n++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v),                  \
                            NGHTTP2_NV_FLAG_NONE}
    RAW_NV(":method", "POST");
    RAW_NV(":scheme", "http");
    RAW_NV(":authority", target);
    RAW_NV(":path", path);
    RAW_NV("content-type", content_type);
    if (xname)
        RAW_NV(xname, xvalue);
#undef RAW_NV
    nghttp2_data_provider body = {.read_callback = raw_body_cb};
    r->stream_id = nghttp2_submit_request(r->session, NULL, nva, n, &body, NULL);
    cr_assert(r->stream_id > 0);
    cr_assert_eq(nghttp2_session_send(r->session), 0);
}

/* Let the server run and read what it sent, until the stream closes or
 * `ms` pass. */
static void raw_pump(raw *r, int ms)
{
    for (int waited = 0; waited < ms && !r->closed; waited += 10) {
        run_for(10);
        uint8_t buf[65536];
        ssize_t n;
        while ((n = read(r->fd, buf, sizeof buf)) > 0)
            cr_assert(nghttp2_session_mem_recv(r->session, buf, (size_t)n) >= 0);
        cr_assert_eq(nghttp2_session_send(r->session), 0);
        if (n == 0)
            break;
    }
}

static void raw_close(raw *r)
{
    nghttp2_session_del(r->session);
    close(r->fd);
}

Test(grpc_server, non_grpc_content_type_is_http_415)
{
    raw r;
    raw_start(&r, "/t.T/Echo", "application/json", NULL, NULL);
    raw_pump(&r, 2000);
    cr_assert_str_eq(r.http_status, "415");
    cr_assert_str_eq(r.grpc_status, "");
    raw_close(&r);
}

Test(grpc_server, unknown_encoding_is_unimplemented)
{
    raw r;
    raw_start(&r, "/t.T/Echo", "application/grpc", "grpc-encoding", "snappy");
    raw_pump(&r, 2000);
    cr_assert_str_eq(r.http_status, "200");
    cr_assert_str_eq(r.grpc_status, "12");
    raw_close(&r);
}

Test(grpc_server, trailers_carry_status_for_content_type_with_suffix)
{
    raw r;
    raw_start(&r, "/t.T/Echo", "application/grpc+proto", NULL, NULL);
    raw_pump(&r, 2000);
    cr_assert_str_eq(r.http_status, "200");
    cr_assert_str_eq(r.grpc_status, "0");
    raw_close(&r);
}

Test(grpc_server, server_enforces_grpc_timeout)
{
    raw r;
    raw_start(&r, "/t.T/Never", "application/grpc", "grpc-timeout", "100m");
    raw_pump(&r, 3000);
    cr_assert_str_eq(r.grpc_status, "4", "DEADLINE_EXCEEDED, got %s", r.grpc_status);
    cr_assert_eq(st.started, 1);
    cr_assert_eq(st.cancels, 1, "handler work is cancelled at the deadline");
    raw_close(&r);
}

Test(grpc_server, slow_reader_bounds_server_memory)
{
    raw r;
    raw_start(&r, "/t.T/Flood", "application/grpc", NULL, NULL);
    /* Never read: run the server for a while. */
    run_for(500);
    cr_assert(st.flood_waiting, "the handler is parked waiting for the reader");
    cr_assert_leq(st.flood_max_pending, FLOOD_HIGH + FLOOD_CHUNK + 5);
    cr_assert_lt(st.flood_sent, 4u << 20, "sent %zu bytes to a reader that reads nothing",
                 st.flood_sent);
    size_t before = st.flood_sent;
    run_for(200);
    cr_assert_eq(st.flood_sent, before, "nothing more is produced while the reader sleeps");
    /* Now read: the stream resumes. */
    raw_pump(&r, 300);
    cr_assert_gt(st.flood_sent, before, "reading lets the handler go on");
    cr_assert_gt(r.data_bytes, 0);
    raw_close(&r);
    run_for(100);
    cr_assert_eq(st.cancels, 1, "closing the connection cancels the stream");
}

/* A second request on the raw client's connection. */
static int32_t raw_add_request(raw *r, const char *path)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)target, 10, strlen(target), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16,
         NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider body = {.read_callback = raw_body_cb};
    int32_t id = nghttp2_submit_request(r->session, NULL, nva, 5, &body, NULL);
    cr_assert(id > 0);
    cr_assert_eq(nghttp2_session_send(r->session), 0);
    return id;
}

Test(grpc_server, send_is_refused_past_the_call_output_cap)
{
    raw r;
    raw_start(&r, "/t.T/Blast", "application/grpc", NULL, NULL);
    run_for(300); /* the client never reads */
    cr_assert_eq(st.blast_refused, 1, "a send past max_call_output is refused (%zu bytes went)",
                 st.blast_sent);
    /* At most the client's window (64 KiB) left; the rest is capped. */
    cr_assert_leq(st.blast_sent, 65535 + CALL_OUTPUT_CAP + BLAST_CHUNK);
    tw_grpc_server_stats ss;
    tw_grpc_server_get_stats(server, &ss);
    cr_assert_leq(ss.output_queued, CALL_OUTPUT_CAP);
    cr_assert_eq(ss.output_refusals, 1);
    /* Reading drains it; the status arrives after the messages. */
    raw_pump(&r, 2000);
    cr_assert_str_eq(r.grpc_status, "8");
    raw_close(&r);
}

Test(grpc_server, send_is_refused_past_the_connection_output_cap)
{
    raw r;
    raw_start(&r, "/t.T/Blast", "application/grpc", NULL, NULL);
    raw_add_request(&r, "/t.T/Blast");
    run_for(300);
    cr_assert_eq(st.blast_refused, 2, "both calls stop at a cap (%d)", st.blast_refused);
    tw_grpc_server_stats ss;
    tw_grpc_server_get_stats(server, &ss);
    cr_assert_leq(ss.output_queued, CONN_OUTPUT_CAP, "%zu bytes queued", ss.output_queued);
    cr_assert_leq(st.blast_sent, 65535 + CONN_OUTPUT_CAP + 2 * BLAST_CHUNK);
    raw_close(&r);
    run_for(100);
    tw_grpc_server_get_stats(server, &ss);
    cr_assert_eq(ss.output_queued, 0, "a closed connection's queue is released");
}

typedef struct held_call {
    int closed;
    int status;
} held_call;

static void held_close(tw_grpc_ccall *c, int status, const char *message,
                       const tw_grpc_md *trailers, size_t n, void *arg)
{
    (void)c;
    (void)message;
    (void)trailers;
    (void)n;
    held_call *h = arg;
    h->closed = 1;
    h->status = status;
}

Test(grpc_server, a_paused_call_does_not_hold_up_its_neighbours)
{
    static const tw_grpc_client_handlers h = {.on_close = held_close};
    held_call hc = {0};
    tw_grpc_ccall *c = tw_grpc_channel_start(channel, "/t.T/Hold", NULL, &h, &hc);
    cr_assert(c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tw_grpc_ccall_send(c, (const uint8_t *)"x", 1), 0);
    tw_grpc_ccall_close_send(c);
    for (int i = 0; i < 100 && !st.held_started; i++)
        run_for(10);
    cr_assert_eq(st.held_started, 1, "only the first message is delivered");
    /* Same channel, same connection: another call is served. */
    tw_grpc_result r = {0};
    tw_grpc_call_opts opts = {.timeout_ms = 3000};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", (const uint8_t *)"hi", 2, &opts, &r), 0,
                 "%d %s", r.status, r.message);
    tw_grpc_result_free(&r);
    cr_assert_eq(tw_grpc_channel_connections(channel), 1);
    run_for(100);
    cr_assert_eq(st.held_started, 1, "the paused call gets nothing more");
    cr_assert_eq(hc.closed, 0, "its half-close waits behind the held messages");
    tw_grpc_ccall_cancel(c);
    run_for(50);
    cr_assert_eq(st.cancels, 1);
}

Test(grpc_server, flow_control_accounting_returns_to_zero)
{
    uint8_t big[2048] = {0};
    static uint8_t chunk[1000];
    static tw_grpc_buf msgs[300];
    for (int i = 0; i < 300; i++)
        msgs[i] = (tw_grpc_buf){chunk, sizeof chunk};
    tw_grpc_result r = {0};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", big, 1000, NULL, &r), 0);
    tw_grpc_result_free(&r);
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", big, sizeof big, NULL, &r),
                 TW_GRPC_RESOURCE_EXHAUSTED);
    tw_grpc_result_free(&r);
    cr_assert_eq(tw_grpc_client_stream(channel, "/t.T/Sum", msgs, 300, NULL, &r), 0);
    tw_grpc_result_free(&r);
    cr_assert_eq(tw_grpc_client_stream(channel, "/t.T/PauseSum", msgs, 300, NULL, &r), 0);
    tw_grpc_result_free(&r);
    run_for(100);
    tw_grpc_server_stats ss;
    tw_grpc_server_get_stats(server, &ss);
    cr_assert_eq(ss.calls, 0);
    cr_assert_eq(ss.input_buffered, 0, "every received byte was handed back (%zu held)",
                 ss.input_buffered);
    cr_assert_eq(ss.output_queued, 0);
    cr_assert_eq(ss.connections, 1);
}

/* ---- graceful shutdown --------------------------------------------------- */

typedef struct pending_call {
    int closed;
    int status;
} pending_call;

static void pc_close(tw_grpc_ccall *c, int status, const char *message,
                     const tw_grpc_md *trailers, size_t n, void *arg)
{
    (void)c;
    (void)message;
    (void)trailers;
    (void)n;
    pending_call *p = arg;
    p->closed = 1;
    p->status = status;
}

static int shutdown_done;
static void on_done(void *arg)
{
    (void)arg;
    shutdown_done++;
}

static void start_slow(pending_call *p, const char *ms)
{
    static const tw_grpc_client_handlers h = {.on_close = pc_close};
    tw_grpc_ccall *c = tw_grpc_channel_start(channel, "/t.T/Slow", NULL, &h, p);
    cr_assert(c);
    cr_assert_eq(tw_grpc_ccall_send(c, (const uint8_t *)ms, strlen(ms)), 0);
    tw_grpc_ccall_close_send(c);
}

Test(grpc_server, shutdown_lets_in_flight_calls_finish)
{
    pending_call p = {0};
    shutdown_done = 0;
    start_slow(&p, "300");
    run_for(50);
    cr_assert_eq(st.started, 1);
    tw_grpc_server_shutdown(server, 5000, on_done, NULL);
    for (int i = 0; i < 200 && !(p.closed && shutdown_done); i++)
        run_for(10);
    cr_assert(p.closed);
    cr_assert_eq(p.status, TW_GRPC_OK, "the in-flight call completes");
    cr_assert_eq(shutdown_done, 1);
    cr_assert_eq(st.cancels, 0);
    cr_assert_eq(tw_grpc_server_connection_count(server), 0);

    tw_grpc_result r = {0};
    tw_grpc_call_opts opts = {.timeout_ms = 1000};
    cr_assert_eq(tw_grpc_unary(channel, "/t.T/Echo", NULL, 0, &opts, &r), TW_GRPC_UNAVAILABLE,
                 "no new calls after shutdown: %d %s", r.status, r.message);
    tw_grpc_result_free(&r);
}

Test(grpc_server, shutdown_grace_cancels_stragglers)
{
    pending_call p = {0};
    shutdown_done = 0;
    start_slow(&p, "5000");
    run_for(50);
    tw_grpc_server_shutdown(server, 100, on_done, NULL);
    for (int i = 0; i < 200 && !(p.closed && shutdown_done); i++)
        run_for(10);
    cr_assert(p.closed);
    cr_assert_neq(p.status, TW_GRPC_OK);
    cr_assert_eq(st.cancels, 1, "the handler is told to stop");
    cr_assert_eq(shutdown_done, 1);
}
