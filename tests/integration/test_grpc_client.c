/* Integration tests for tw_grpc_client against a python3-grpcio reference
 * server (tests/integration/py_echo_server.py), one server per test. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "tw_grpc_client.h"

/* ---- The reference server -------------------------------------------- */

static pid_t server_pid = -1;
static int server_port = -1;
static struct event_base *base;

static void server_start(void) {
    const char *src = getenv("TW_SOURCE_DIR");
    char script[4096];
    int fds[2];

    signal(SIGPIPE, SIG_IGN);
    cr_assert_not_null(src, "TW_SOURCE_DIR is not set (run through ctest)");
    snprintf(script, sizeof(script), "%s/tests/integration/py_echo_server.py", src);
    cr_assert_eq(pipe(fds), 0);
    server_pid = fork();
    cr_assert_geq(server_pid, 0);
    if (server_pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", script, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);

    /* Read "PORT <n>\n", waiting at most 30 s. */
    char line[128];
    size_t have = 0;
    while (have < sizeof(line) - 1 && memchr(line, '\n', have) == NULL) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int rv = poll(&p, 1, 30000);
        cr_assert_gt(rv, 0, "reference server did not report its port");
        ssize_t n = read(fds[0], line + have, sizeof(line) - 1 - have);
        cr_assert_gt(n, 0, "reference server exited before listening");
        have += (size_t)n;
    }
    line[have] = '\0';
    close(fds[0]);
    cr_assert_eq(sscanf(line, "PORT %d", &server_port), 1, "unexpected line: %s", line);
    cr_assert_gt(server_port, 0);

    base = event_base_new();
    cr_assert_not_null(base);
}

static void server_stop(void) {
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    if (base != NULL) {
        event_base_free(base);
        base = NULL;
    }
}

static tw_grpc_channel *channel_to(const char *host) {
    char addr[128], err[256] = "";
    snprintf(addr, sizeof(addr), "%s:%d", host, server_port);
    tw_grpc_channel *ch = tw_grpc_channel_new(base, addr, err, sizeof(err));
    cr_assert_not_null(ch, "channel: %s", err);
    return ch;
}

/* A loopback port nobody listens on right now: bind, read the port, close. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    cr_assert_geq(fd, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TestSuite(grpc_client, .init = server_start, .fini = server_stop, .timeout = 60);

/* ---- Unary ------------------------------------------------------------ */

Test(grpc_client, unary_echo) {
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"hello", 5, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(r.len, 5);
    cr_assert_eq(memcmp(r.data, "hello", 5), 0);
    cr_assert_str_eq(r.message, "");
    tw_grpc_result_free(&r);

    /* A second call reuses the connection. */
    st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"again", 5, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK);
    cr_assert_eq(tw_grpc_channel_connections(ch), 1);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, unary_via_localhost) {
    tw_grpc_channel *ch = channel_to("localhost");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"hi", 2, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(r.len, 2);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, empty_message) {
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", NULL, 0, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(r.len, 0);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, one_mib_message) {
    size_t len = 1u << 20;
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 31u + (i >> 10));
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", buf, len, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(r.len, len);
    cr_assert_eq(memcmp(r.data, buf, len), 0);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
    free(buf);
}

Test(grpc_client, max_receive_size) {
    uint8_t buf[2000];
    memset(buf, 'x', sizeof(buf));
    tw_grpc_call_opts opts = {.max_recv_message = 1000};
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", buf, sizeof(buf), &opts, &r);
    cr_assert_eq(st, TW_GRPC_RESOURCE_EXHAUSTED, "status %d: %s", st, r.message);
    cr_assert_eq(r.len, 0);
    tw_grpc_result_free(&r);
    /* The stream was reset; the connection still serves calls. */
    st = tw_grpc_unary(ch, "/echo.Echo/Unary", buf, 1000, &opts, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(tw_grpc_channel_connections(ch), 1);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

/* ---- Streaming -------------------------------------------------------- */

typedef struct stream_count {
    uint32_t next;
    int out_of_order;
    uint32_t stop_after; /* 0: never */
} stream_count;

static int count_msg(void *arg, const uint8_t *msg, size_t len) {
    stream_count *sc = arg;
    if (len != 4 || ((uint32_t)msg[0] << 24 | (uint32_t)msg[1] << 16 | (uint32_t)msg[2] << 8 |
                     msg[3]) != sc->next)
        sc->out_of_order = 1;
    sc->next++;
    return sc->stop_after != 0 && sc->next >= sc->stop_after;
}

Test(grpc_client, server_stream_1000) {
    const uint8_t req[4] = {0, 0, 0x03, 0xe8}; /* 1000 */
    stream_count sc = {0};
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_server_stream(ch, "/echo.Echo/ServerStream", req, 4, NULL, count_msg, &sc,
                                   &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(sc.next, 1000);
    cr_assert_eq(sc.out_of_order, 0);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, cancel_mid_stream) {
    const uint8_t req[4] = {0, 0x01, 0x86, 0xa0}; /* 100000 */
    stream_count sc = {.stop_after = 10};
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_server_stream(ch, "/echo.Echo/ServerStream", req, 4, NULL, count_msg, &sc,
                                   &r);
    cr_assert_eq(st, TW_GRPC_CANCELLED, "status %d: %s", st, r.message);
    cr_assert_eq(sc.next, 10, "messages after cancel: %u", sc.next);
    cr_assert_eq(sc.out_of_order, 0);
    tw_grpc_result_free(&r);
    /* The connection survives a cancelled stream. */
    st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"ok", 2, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(tw_grpc_channel_connections(ch), 1);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, client_stream) {
    const tw_grpc_buf msgs[] = {
        {(const uint8_t *)"a", 1},   {(const uint8_t *)"bb", 2}, {(const uint8_t *)"ccc", 3},
        {(const uint8_t *)NULL, 0},  {(const uint8_t *)"dddd", 4},
    };
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_client_stream(ch, "/echo.Echo/ClientStream", msgs, 5, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(r.len, 10);
    cr_assert_eq(memcmp(r.data, "abbcccdddd", 10), 0);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, client_stream_beyond_flow_control_window) {
    /* 150 x 16 KiB = 2.4 MB: far more than the initial 64 KiB windows, so
     * the data provider must defer and resume as WINDOW_UPDATEs arrive. */
    enum { N = 150, SZ = 16384 };
    uint8_t *blob = malloc((size_t)N * SZ);
    tw_grpc_buf msgs[N];
    cr_assert_not_null(blob);
    for (size_t i = 0; i < (size_t)N * SZ; i++)
        blob[i] = (uint8_t)(i % 251);
    for (int i = 0; i < N; i++) {
        msgs[i].data = blob + (size_t)i * SZ;
        msgs[i].len = SZ;
    }
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_client_stream(ch, "/echo.Echo/ClientStream", msgs, N, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    cr_assert_eq(r.len, (size_t)N * SZ);
    cr_assert_eq(memcmp(r.data, blob, r.len), 0);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
    free(blob);
}

typedef struct pingpong {
    int rounds;
    int received;
    int mismatch;
    int headers;
    int closed;
    int status;
} pingpong;

static void pp_send(tw_grpc_ccall *call, int i) {
    char msg[32];
    int n = snprintf(msg, sizeof(msg), "ping %d", i);
    cr_assert_eq(tw_grpc_ccall_send(call, (const uint8_t *)msg, (size_t)n), 0);
}

static void pp_headers(tw_grpc_ccall *call, const tw_grpc_md *md, size_t n, void *arg) {
    (void)call;
    (void)md;
    (void)n;
    ((pingpong *)arg)->headers++;
}

static void pp_message(tw_grpc_ccall *call, const uint8_t *msg, size_t len, void *arg) {
    pingpong *pp = arg;
    char want[32];
    int n = snprintf(want, sizeof(want), "ping %d", pp->received);
    if ((size_t)n != len || memcmp(msg, want, len) != 0)
        pp->mismatch = 1;
    pp->received++;
    if (pp->received < pp->rounds)
        pp_send(call, pp->received);
    else
        tw_grpc_ccall_close_send(call);
}

static void pp_close(tw_grpc_ccall *call, int status, const char *message,
                     const tw_grpc_md *trailers, size_t n, void *arg) {
    (void)call;
    (void)message;
    (void)trailers;
    (void)n;
    pingpong *pp = arg;
    pp->closed++;
    pp->status = status;
}

Test(grpc_client, bidi_ping_pong) {
    static const tw_grpc_client_handlers h = {pp_headers, pp_message, pp_close};
    pingpong pp = {.rounds = 100, .status = -1};
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_ccall *call = tw_grpc_channel_start(ch, "/echo.Echo/Bidi", NULL, &h, &pp);
    cr_assert_not_null(call);
    cr_assert_str_eq(tw_grpc_ccall_path(call), "/echo.Echo/Bidi");
    pp_send(call, 0);
    while (!pp.closed)
        cr_assert_eq(event_base_loop(base, EVLOOP_ONCE), 0);
    cr_assert_eq(pp.status, TW_GRPC_OK);
    cr_assert_eq(pp.received, 100);
    cr_assert_eq(pp.mismatch, 0);
    cr_assert_eq(pp.headers, 1);
    cr_assert_eq(pp.closed, 1);
    tw_grpc_channel_free(ch);
}

/* ---- Errors ----------------------------------------------------------- */

Test(grpc_client, deadline_exceeded) {
    tw_grpc_call_opts opts = {.timeout_ms = 200};
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    double t0 = now_s();
    int st = tw_grpc_unary(ch, "/echo.Echo/Sleep", (const uint8_t *)"z", 1, &opts, &r);
    double dt = now_s() - t0;
    cr_assert_eq(st, TW_GRPC_DEADLINE_EXCEEDED, "status %d: %s", st, r.message);
    cr_assert_lt(dt, 1.0, "took %.3f s", dt);
    cr_assert_geq(dt, 0.19, "took %.3f s", dt);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, unknown_method) {
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Nope", (const uint8_t *)"x", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_UNIMPLEMENTED, "status %d: %s", st, r.message);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, error_status_percent_decoded) {
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Fail", (const uint8_t *)"x", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_INVALID_ARGUMENT, "status %d: %s", st, r.message);
    cr_assert_str_eq(r.message, "bad \xe2\x9c\x93 100%");
    cr_assert_eq(r.len, 0);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, metadata_echo) {
    static const char bin[] = {0x00, (char)0xff, 0x10, 'a', 0x00};
    const tw_grpc_md md[] = {
        {"authorization", "Bearer t0ken", 0},
        {"x-echo", "hello metadata", 0},
        {"x-echo-bin", bin, sizeof(bin)},
    };
    tw_grpc_call_opts opts = {.metadata = md, .metadata_count = 3};
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"m", 1, &opts, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    const tw_grpc_md *h = tw_grpc_md_find(r.headers, r.nheaders, "x-echo");
    cr_assert_not_null(h, "x-echo missing from initial metadata");
    cr_assert_str_eq(h->value, "hello metadata");
    cr_assert_null(tw_grpc_md_find(r.headers, r.nheaders, "x-echo-bin"));
    const tw_grpc_md *t = tw_grpc_md_find(r.trailers, r.ntrailers, "x-echo-bin");
    cr_assert_not_null(t, "x-echo-bin missing from trailing metadata");
    cr_assert_eq(t->value_len, sizeof(bin));
    cr_assert_eq(memcmp(t->value, bin, sizeof(bin)), 0);
    /* Transport headers are not metadata. */
    cr_assert_null(tw_grpc_md_find(r.trailers, r.ntrailers, "grpc-status"));
    cr_assert_null(tw_grpc_md_find(r.headers, r.nheaders, "content-type"));
    tw_grpc_result_free(&r);

    /* Metadata also comes back on a trailers-only error. */
    st = tw_grpc_unary(ch, "/echo.Echo/Fail", (const uint8_t *)"m", 1, &opts, &r);
    cr_assert_eq(st, TW_GRPC_INVALID_ARGUMENT);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, connection_refused) {
    char addr[64], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
    tw_grpc_channel *ch = tw_grpc_channel_new(base, addr, err, sizeof(err));
    cr_assert_not_null(ch, "%s", err);
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"x", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_UNAVAILABLE, "status %d: %s", st, r.message);
    cr_assert_not_null(strstr(r.message, "refused"), "message: %s", r.message);
    tw_grpc_result_free(&r);
    /* The next call tries again with a new connection. */
    st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"x", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_UNAVAILABLE);
    cr_assert_eq(tw_grpc_channel_connections(ch), 2);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

static void kill_server_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    kill(server_pid, SIGKILL);
}

Test(grpc_client, server_dies_mid_call) {
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    struct timeval tv = {0, 200000};
    struct event *ev = evtimer_new(base, kill_server_cb, NULL);
    evtimer_add(ev, &tv);
    tw_grpc_result r;
    double t0 = now_s();
    int st = tw_grpc_unary(ch, "/echo.Echo/Sleep", (const uint8_t *)"z", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_UNAVAILABLE, "status %d: %s", st, r.message);
    cr_assert_lt(now_s() - t0, 1.5);
    tw_grpc_result_free(&r);
    event_free(ev);
    tw_grpc_channel_free(ch);
}

/* GOAWAY: the server shuts down gracefully while a call is in flight. The
 * call completes; the next call needs a new connection (and, the server
 * being gone, fails UNAVAILABLE rather than hanging). */
typedef struct one_call {
    int closed;
    int status;
    size_t msgs;
} one_call;

static void oc_message(tw_grpc_ccall *call, const uint8_t *msg, size_t len, void *arg) {
    (void)call;
    (void)msg;
    (void)len;
    ((one_call *)arg)->msgs++;
}

static void oc_close(tw_grpc_ccall *call, int status, const char *message,
                     const tw_grpc_md *trailers, size_t n, void *arg) {
    (void)call;
    (void)message;
    (void)trailers;
    (void)n;
    one_call *oc = arg;
    oc->closed++;
    oc->status = status;
}

Test(grpc_client, goaway_drains_then_reconnects) {
    static const tw_grpc_client_handlers h = {NULL, oc_message, oc_close};
    one_call sleeping = {0};
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    tw_grpc_ccall *call = tw_grpc_channel_start(ch, "/echo.Echo/Sleep", NULL, &h, &sleeping);
    cr_assert_not_null(call);
    cr_assert_eq(tw_grpc_ccall_send(call, (const uint8_t *)"s", 1), 0);
    tw_grpc_ccall_close_send(call);

    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Shutdown", (const uint8_t *)"x", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    tw_grpc_result_free(&r);

    while (!sleeping.closed)
        cr_assert_eq(event_base_loop(base, EVLOOP_ONCE), 0);
    cr_assert_eq(sleeping.status, TW_GRPC_OK, "in-flight call after GOAWAY: %d",
                 sleeping.status);
    cr_assert_eq(sleeping.msgs, 1);

    st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"x", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_UNAVAILABLE, "status %d: %s", st, r.message);
    cr_assert_eq(tw_grpc_channel_connections(ch), 2);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
}

/* ---- Concurrency and lifetime ----------------------------------------- */

typedef struct multi {
    int closed;
    int ok;
    int bad;
    char want[16];
    size_t want_len;
    int got;
} multi;

static void multi_message(tw_grpc_ccall *call, const uint8_t *msg, size_t len, void *arg) {
    (void)call;
    multi *m = arg;
    if (len == m->want_len && memcmp(msg, m->want, len) == 0)
        m->got++;
    else
        m->bad++;
}

static void multi_close(tw_grpc_ccall *call, int status, const char *message,
                        const tw_grpc_md *trailers, size_t n, void *arg) {
    (void)call;
    (void)message;
    (void)trailers;
    (void)n;
    multi *m = arg;
    m->closed++;
    m->ok = status == TW_GRPC_OK;
}

Test(grpc_client, ten_concurrent_calls_one_connection) {
    static const tw_grpc_client_handlers h = {NULL, multi_message, multi_close};
    multi m[10];
    tw_grpc_channel *ch = channel_to("127.0.0.1");
    memset(m, 0, sizeof(m));
    for (int i = 0; i < 10; i++) {
        m[i].want_len = (size_t)snprintf(m[i].want, sizeof(m[i].want), "call-%d", i);
        tw_grpc_ccall *c = tw_grpc_channel_start(ch, "/echo.Echo/Unary", NULL, &h, &m[i]);
        cr_assert_not_null(c);
        cr_assert_eq(tw_grpc_ccall_send(c, (const uint8_t *)m[i].want, m[i].want_len), 0);
        tw_grpc_ccall_close_send(c);
    }
    for (;;) {
        int done = 0;
        for (int i = 0; i < 10; i++)
            done += m[i].closed;
        if (done == 10)
            break;
        cr_assert_eq(event_base_loop(base, EVLOOP_ONCE), 0);
    }
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(m[i].closed, 1);
        cr_assert(m[i].ok, "call %d failed", i);
        cr_assert_eq(m[i].got, 1, "call %d got %d messages", i, m[i].got);
        cr_assert_eq(m[i].bad, 0);
    }
    cr_assert_eq(tw_grpc_channel_connections(ch), 1);
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_assert_eq(tw_grpc_channel_calls(ch), 0);
    tw_grpc_channel_free(ch);
}

Test(grpc_client, cancel_and_free_with_calls_in_flight) {
    static const tw_grpc_client_handlers h = {NULL, oc_message, oc_close};
    one_call a = {0}, b = {0}, c = {0};
    tw_grpc_channel *ch = channel_to("127.0.0.1");

    /* Cancelled before anything went out: on_close runs from cancel. */
    tw_grpc_ccall *ca = tw_grpc_channel_start(ch, "/echo.Echo/Sleep", NULL, &h, &a);
    cr_assert_not_null(ca);
    tw_grpc_ccall_cancel(ca);
    cr_assert_eq(a.closed, 1);
    cr_assert_eq(a.status, TW_GRPC_CANCELLED);

    /* Cancelled while the server works on it. */
    tw_grpc_ccall *cb = tw_grpc_channel_start(ch, "/echo.Echo/Sleep", NULL, &h, &b);
    cr_assert_not_null(cb);
    cr_assert_eq(tw_grpc_ccall_send(cb, (const uint8_t *)"s", 1), 0);
    tw_grpc_ccall_close_send(cb);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    tw_grpc_ccall_cancel(cb);
    cr_assert_eq(b.closed, 1);
    cr_assert_eq(b.status, TW_GRPC_CANCELLED);

    /* Both are released once nghttp2 is done with their streams, and the
     * connection still works. */
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"u", 1, NULL, &r);
    cr_assert_eq(st, TW_GRPC_OK, "status %d: %s", st, r.message);
    tw_grpc_result_free(&r);
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_assert_eq(tw_grpc_channel_calls(ch), 0);
    cr_assert_eq(tw_grpc_channel_connections(ch), 1);

    /* Still running when the channel is freed. */
    tw_grpc_ccall *cc = tw_grpc_channel_start(ch, "/echo.Echo/Sleep", NULL, &h, &c);
    cr_assert_not_null(cc);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    tw_grpc_channel_free(ch);
    cr_assert_eq(c.closed, 1);
    cr_assert_eq(c.status, TW_GRPC_CANCELLED);
    cr_assert_eq(a.closed + b.closed, 2, "on_close ran more than once");
}

/* ---- No server needed ------------------------------------------------- */

Test(grpc_client_local, bad_arguments) {
    char err[256] = "";
    struct event_base *b = event_base_new();
    cr_assert_null(tw_grpc_channel_new(b, "no-port", err, sizeof(err)));
    cr_assert_neq(err[0], '\0');
    cr_assert_null(tw_grpc_channel_new(b, "127.0.0.1:0", err, sizeof(err)));
    cr_assert_null(tw_grpc_channel_new(b, "::1:5", err, sizeof(err)));

    tw_grpc_channel *ch = tw_grpc_channel_new(b, "[::1]:5", err, sizeof(err));
    cr_assert_not_null(ch, "%s", err);
    cr_assert_null(tw_grpc_channel_start(ch, "no-slash", NULL, NULL, NULL));
    const tw_grpc_md upper[] = {{"X-Upper", "v", 0}};
    tw_grpc_call_opts o1 = {.metadata = upper, .metadata_count = 1};
    cr_assert_null(tw_grpc_channel_start(ch, "/a/b", &o1, NULL, NULL));
    const tw_grpc_md reserved[] = {{"grpc-timeout", "1S", 0}};
    tw_grpc_call_opts o2 = {.metadata = reserved, .metadata_count = 1};
    cr_assert_null(tw_grpc_channel_start(ch, "/a/b", &o2, NULL, NULL));
    cr_assert_eq(tw_grpc_channel_connections(ch), 0);
    tw_grpc_channel_free(ch);
    event_base_free(b);
}

Test(grpc_client_local, http_status_mapping) {
    cr_assert_eq(tw_grpc_status_from_http(400), TW_GRPC_INTERNAL);
    cr_assert_eq(tw_grpc_status_from_http(401), TW_GRPC_UNAUTHENTICATED);
    cr_assert_eq(tw_grpc_status_from_http(403), TW_GRPC_PERMISSION_DENIED);
    cr_assert_eq(tw_grpc_status_from_http(404), TW_GRPC_UNIMPLEMENTED);
    cr_assert_eq(tw_grpc_status_from_http(429), TW_GRPC_UNAVAILABLE);
    cr_assert_eq(tw_grpc_status_from_http(502), TW_GRPC_UNAVAILABLE);
    cr_assert_eq(tw_grpc_status_from_http(503), TW_GRPC_UNAVAILABLE);
    cr_assert_eq(tw_grpc_status_from_http(504), TW_GRPC_UNAVAILABLE);
    cr_assert_eq(tw_grpc_status_from_http(415), TW_GRPC_UNKNOWN);
    cr_assert_eq(tw_grpc_status_from_http(500), TW_GRPC_UNKNOWN);
}

/* ---- A plain HTTP/2 server (no gRPC): HTTP status mapping ------------- */

static pid_t nghttpd_pid = -1;
static char docroot[64];

static void nghttpd_stop(void) {
    if (nghttpd_pid > 0) {
        kill(nghttpd_pid, SIGKILL);
        waitpid(nghttpd_pid, NULL, 0);
        nghttpd_pid = -1;
    }
    if (docroot[0] != '\0')
        rmdir(docroot);
}

TestSuite(grpc_client_http, .fini = nghttpd_stop, .timeout = 30);

Test(grpc_client_http, http_404_is_unimplemented) {
    cr_assert_eq(access("/usr/sbin/nghttpd", X_OK), 0,
                 "nghttpd (Debian nghttp2-server) is missing: tests/run.sh installs it");
    signal(SIGPIPE, SIG_IGN);
    snprintf(docroot, sizeof(docroot), "/tmp/tw-nghttpd-XXXXXX");
    cr_assert_not_null(mkdtemp(docroot));
    int port = free_port();
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    nghttpd_pid = fork();
    cr_assert_geq(nghttpd_pid, 0);
    if (nghttpd_pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        execl("/usr/sbin/nghttpd", "nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", docroot,
              portstr, (char *)NULL);
        _exit(127);
    }
    /* Wait until it accepts connections. */
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        up = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
        close(fd);
        if (!up)
            usleep(50000);
    }
    cr_assert(up, "nghttpd did not start");

    struct event_base *b = event_base_new();
    char addr[64], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    tw_grpc_channel *ch = tw_grpc_channel_new(b, addr, err, sizeof(err));
    cr_assert_not_null(ch, "%s", err);
    tw_grpc_call_opts opts = {.timeout_ms = 5000};
    tw_grpc_result r;
    int st = tw_grpc_unary(ch, "/echo.Echo/Unary", (const uint8_t *)"x", 1, &opts, &r);
    cr_assert_eq(st, TW_GRPC_UNIMPLEMENTED, "status %d: %s", st, r.message);
    cr_assert_str_eq(r.message, "HTTP status 404");
    tw_grpc_result_free(&r);
    event_base_loop(b, EVLOOP_NONBLOCK);
    cr_assert_eq(tw_grpc_channel_calls(ch), 0);
    tw_grpc_channel_free(ch);
    event_base_free(b);
}

/* ---- A scripted HTTP/2 server: GOAWAY that refuses a stream ------------
 * A forked child serving connections one after another with an nghttp2
 * server session on blocking sockets. On the first connection it waits for
 * the requests on streams 1 and 3, then sends GOAWAY(last_stream_id=1) and
 * a trailers-only OK for stream 1: stream 3 was never processed. Later
 * connections get a trailers-only OK for every request. */

static pid_t stub_pid = -1;

static void stub_stop(void) {
    if (stub_pid > 0) {
        kill(stub_pid, SIGKILL);
        waitpid(stub_pid, NULL, 0);
        stub_pid = -1;
    }
}

typedef struct stub_conn {
    int fd;
    int first;        /* first connection: the GOAWAY script */
    int ended[8];     /* END_STREAM seen, by stream id (small ids only) */
    int goaway_sent;
} stub_conn;

static ssize_t stub_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                         void *arg) {
    (void)s;
    (void)flags;
    stub_conn *sc = arg;
    ssize_t n = write(sc->fd, data, len);
    return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static void stub_ok(nghttp2_session *s, int32_t stream_id) {
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE},
    };
    (void)nghttp2_submit_response(s, stream_id, nv, 3, NULL);
}

static int stub_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *arg) {
    stub_conn *sc = arg;
    int32_t id = frame->hd.stream_id;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) || id <= 0 || id >= 8)
        return 0;
    sc->ended[id] = 1;
    if (!sc->first) {
        stub_ok(s, id);
    } else if (sc->ended[1] && sc->ended[3] && !sc->goaway_sent) {
        sc->goaway_sent = 1;
        (void)nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, NULL, 0);
        stub_ok(s, 1);
    }
    return 0;
}

static void stub_serve(int lfd) {
    for (int n = 0;; n++) {
        stub_conn sc = {.fd = accept(lfd, NULL, NULL), .first = n == 0};
        nghttp2_session_callbacks *cbs;
        nghttp2_session *s;
        if (sc.fd < 0)
            _exit(1);
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_send_callback(cbs, stub_send);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, stub_frame_recv);
        nghttp2_session_server_new(&s, cbs, &sc);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
        uint8_t buf[16384];
        for (;;) {
            if (nghttp2_session_send(s) != 0)
                break;
            ssize_t r = read(sc.fd, buf, sizeof(buf));
            if (r <= 0 || nghttp2_session_mem_recv(s, buf, (size_t)r) < 0)
                break;
        }
        nghttp2_session_del(s);
        close(sc.fd);
    }
}

typedef struct goaway_call {
    int closed;
    int status;
    char message[128];
} goaway_call;

static void ga_close(tw_grpc_ccall *call, int status, const char *message,
                     const tw_grpc_md *trailers, size_t n, void *arg) {
    (void)call;
    (void)trailers;
    (void)n;
    goaway_call *g = arg;
    g->closed++;
    g->status = status;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

TestSuite(grpc_client_goaway, .fini = stub_stop, .timeout = 30);

Test(grpc_client_goaway, streams_above_last_stream_id_are_unavailable) {
    static const tw_grpc_client_handlers h = {NULL, NULL, ga_close};
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(lfd, 8), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
    stub_pid = fork();
    cr_assert_geq(stub_pid, 0);
    if (stub_pid == 0)
        stub_serve(lfd); /* never returns */
    close(lfd);

    struct event_base *b = event_base_new();
    char addr[64], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
    tw_grpc_channel *ch = tw_grpc_channel_new(b, addr, err, sizeof(err));
    cr_assert_not_null(ch, "%s", err);
    tw_grpc_call_opts opts = {.timeout_ms = 5000};
    goaway_call g1 = {0}, g3 = {0};
    tw_grpc_ccall *c1 = tw_grpc_channel_start(ch, "/stub.S/A", &opts, &h, &g1);
    tw_grpc_ccall *c3 = tw_grpc_channel_start(ch, "/stub.S/B", &opts, &h, &g3);
    cr_assert(c1 != NULL && c3 != NULL);
    tw_grpc_ccall_close_send(c1);
    tw_grpc_ccall_close_send(c3);
    while (!(g1.closed && g3.closed))
        cr_assert_eq(event_base_loop(b, EVLOOP_ONCE), 0);
    cr_assert_eq(g1.status, TW_GRPC_OK, "stream 1: %d %s", g1.status, g1.message);
    cr_assert_eq(g3.status, TW_GRPC_UNAVAILABLE, "stream 3: %d %s", g3.status, g3.message);
    cr_assert_not_null(strstr(g3.message, "GOAWAY"), "%s", g3.message);

    /* The next call opens a new connection and succeeds there. */
    goaway_call g5 = {0};
    tw_grpc_ccall *c5 = tw_grpc_channel_start(ch, "/stub.S/C", &opts, &h, &g5);
    cr_assert_not_null(c5);
    tw_grpc_ccall_close_send(c5);
    while (!g5.closed)
        cr_assert_eq(event_base_loop(b, EVLOOP_ONCE), 0);
    cr_assert_eq(g5.status, TW_GRPC_OK, "after GOAWAY: %d %s", g5.status, g5.message);
    cr_assert_eq(tw_grpc_channel_connections(ch), 2);
    cr_assert_eq(g1.closed + g3.closed + g5.closed, 3);
    tw_grpc_channel_free(ch);
    event_base_free(b);
}
