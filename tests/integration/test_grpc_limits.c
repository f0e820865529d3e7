/* Hostile and clumsy clients against a real daemon (tidewatch-query, which
 * needs no database), over raw HTTP/2 where a stock client cannot send the
 * bytes. Each test reproduces one finding of the server-limits issue and
 * watches the daemon from outside: its memory (/proc VmHWM), its CPU time,
 * its log, what it answers.
 *
 *   header_table_amplification_is_refused      max-header-list / -fields
 *   flow_control_bounds_buffered_requests      max-conn-input (windows)
 *   reflection_flood_to_a_non_reader_is_paused max-call-output, pause
 *   refused_streams_to_a_non_reader_stop_its_reading  outbound queue guard
 *   max_connections_refuses_the_extra_one      max-connections
 *   idle_timeout_closes_quiet_connections      idle-timeout
 *   handshake_timeout_closes_silent_sockets    handshake-timeout
 *   accept_backs_off_at_the_descriptor_limit   EMFILE backoff, rate-limited log
 *   every_limit_is_a_setting                   the daemons' settings tables
 *   info_asks_reflection_not_guessed_paths     tidewatch info */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "support_daemon.h"
#include "support_h2.h"
#include "support_pg.h"
#include "tw_grpc_client.h"

#define CHECK_PATH "/grpc.health.v1.Health/Check"
#define WATCH_PATH "/grpc.health.v1.Health/Watch"
#define REFLECTION_PATH "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define MIB (1024L * 1024L)

static tw_test_daemon daemon_;

static void stop_daemon(void)
{
    tw_test_daemon_stop(&daemon_);
}

static void ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN); /* writes to connections the daemon closed */
}

TestSuite(grpc_limits, .init = ignore_sigpipe, .fini = stop_daemon, .timeout = 120);

/* Growth of the daemon's peak resident memory since `base_kib`, in MiB. */
static double peak_growth_mib(long base_kib)
{
    return (double)(tw_test_proc_kib(daemon_.pid, "VmHWM") - base_kib) / 1024.0;
}

/* ---- header lists ------------------------------------------------------ */

/* Header blocks past the limits. A block moderately over them (150
 * references to one 500-byte HPACK table entry: 156 fields, ~80 KB) is
 * answered RESOURCE_EXHAUSTED as soon as its headers end, and the connection
 * stays good. A decompression bomb (one ~4 KB entry referenced 16,000 times
 * in one frame: ~64 MB decoded) ends its connection once it is 4x past a
 * limit, so the server neither copies it (the old server kept ~50 MB per
 * frame while the streams stayed open) nor spends CPU decoding the rest. */
static size_t add_indexed_entry(uint8_t *block, size_t n, size_t value_len)
{
    /* "x-big": value_len x 'A', literal with incremental indexing: it
     * becomes dynamic entry 62. value_len >= 127 (multi-byte length). */
    block[n++] = 0x40;
    block[n++] = 5;
    memcpy(block + n, "x-big", 5);
    n += 5;
    size_t rest = value_len - 127;
    block[n++] = 0x7f;
    block[n++] = (uint8_t)(0x80 | (rest & 0x7f));
    block[n++] = (uint8_t)(rest >> 7);
    memset(block + n, 'A', value_len);
    return n + value_len;
}

Test(grpc_limits, header_table_amplification_is_refused)
{
    tw_test_daemon_start(&daemon_, "tidewatch-query", NULL, 0);
    long base = tw_test_proc_kib(daemon_.pid, "VmRSS");
    tw_h2 h;
    tw_h2_connect(&h, daemon_.port, 1);
    cr_assert_eq(h.max_header_list, 64 * 1024, "the limit is advertised: %u", h.max_header_list);

    /* Moderately over: refused, the connection lives on. */
    static uint8_t block[16384];
    size_t n = tw_h2_grpc_request_block(block, CHECK_PATH);
    n = add_indexed_entry(block, n, 500);
    memset(block + n, 0x80 | 62, 150);
    n += 150;
    tw_h2_stream_of(&h, 1)->window = h.initial_window;
    cr_assert_eq(tw_h2_send_frame(&h, 0x1, 0x4, 1, block, n), 0);
    cr_assert(tw_h2_wait_stream(&h, 1, 5000), "no answer to an over-limit header block");
    tw_h2_stream *st = tw_h2_stream_of(&h, 1);
    cr_assert_str_eq(st->grpc_status, "8", "RESOURCE_EXHAUSTED expected, got '%s' (%s)",
                     st->grpc_status, st->grpc_message);
    cr_assert(strstr(st->grpc_message, "max-header-list"), "message: %s", st->grpc_message);
    cr_assert_eq(tw_h2_unary_empty(&h, 3, CHECK_PATH, 5000), 0, "the connection is still good");
    tw_h2_close(&h);

    /* A bomb per connection, several connections: each is closed. */
    enum { BOMBS = 6 };
    for (int i = 0; i < BOMBS; i++) {
        tw_h2_connect(&h, daemon_.port, 1);
        n = tw_h2_grpc_request_block(block, CHECK_PATH);
        n = add_indexed_entry(block, n, 4000);
        memset(block + n, 0x80 | 62, sizeof block - n); /* indexed: entry 62 */
        tw_h2_stream_of(&h, 1)->window = h.initial_window;
        (void)tw_h2_send_frame(&h, 0x1, 0x4, 1, block, sizeof block);
        cr_assert(tw_h2_wait_eof(&h, 5000), "bomb %d: the connection stayed open", i);
        cr_assert(!h.goaway || h.goaway_code == 0xb, "GOAWAY code %u", h.goaway_code);
        cr_assert(!tw_h2_stream_of(&h, 1)->ended || strcmp(tw_h2_stream_of(&h, 1)->grpc_status, "0"),
                  "a bomb was answered OK");
        tw_h2_close(&h);
    }
    double grew = peak_growth_mib(base);
    cr_log_info("header amplification: daemon peak grew %.1f MiB", grew);
    cr_assert_lt(grew, 32.0, "%d amplified header blocks grew the daemon by %.0f MiB", BOMBS, grew);

    /* The daemon still serves. */
    tw_h2_connect(&h, daemon_.port, 1);
    cr_assert_eq(tw_h2_unary_empty(&h, 1, CHECK_PATH, 5000), 0);
    tw_h2_close(&h);
}

/* ---- request flow control ---------------------------------------------- */

/* 100 streams, each sending a 4 MiB message all but its last byte, as fast
 * as the server's windows allow. The old server refilled the windows while
 * it buffered (413 MB on one connection). */
Test(grpc_limits, flow_control_bounds_buffered_requests)
{
    tw_test_daemon_start(&daemon_, "tidewatch-query", NULL, 0);
    long base = tw_test_proc_kib(daemon_.pid, "VmRSS");
    tw_h2 h;
    tw_h2_connect(&h, daemon_.port, 1);
    tw_h2_pump(&h, 100); /* the connection WINDOW_UPDATE */

    const size_t msg_len = 4 * MIB - 1;
    uint8_t *wire = calloc(1, msg_len + 5);
    cr_assert(wire);
    wire[1] = (uint8_t)(msg_len >> 24);
    wire[2] = (uint8_t)(msg_len >> 16);
    wire[3] = (uint8_t)(msg_len >> 8);
    wire[4] = (uint8_t)msg_len;
    size_t total = 0;
    int stalled = 0;
    for (int i = 0; i < 100 && !h.eof && !h.goaway; i++) {
        int32_t id = 2 * i + 1;
        cr_assert_eq(tw_h2_send_request(&h, id, CHECK_PATH, 0), 0);
        /* All but the last byte: the message never completes. */
        size_t sent = tw_h2_send_data(&h, id, wire, msg_len + 5 - 1, 0, stalled ? 0 : 1000);
        total += sent;
        if (sent < msg_len + 4)
            stalled = 1;
    }
    free(wire);
    tw_h2_pump(&h, 500);
    double grew = peak_growth_mib(base);
    cr_log_info("flow control: client sent %.1f MiB, daemon peak grew %.1f MiB",
                (double)total / MIB, grew);
    cr_assert(!h.eof, "the server keeps the connection");
    cr_assert_leq(total, 16 * MIB + 64 * 1024,
                  "the client could send %.1f MiB: windows were refilled for buffered bytes",
                  (double)total / MIB);
    cr_assert_lt(grew, 64.0, "buffered requests grew the daemon by %.0f MiB", grew);
    tw_h2_close(&h);
    /* The daemon is fine afterwards. */
    tw_h2 h2;
    tw_h2_connect(&h2, daemon_.port, 1);
    cr_assert_eq(tw_h2_unary_empty(&h2, 1, CHECK_PATH, 5000), 0);
    tw_h2_close(&h2);
}

/* ---- queued output --------------------------------------------------- */

/* Reflection answers ~20 KB for a ~40-byte request. A client sends 1 MiB
 * of requests and reads nothing: the old server queued every answer
 * (hundreds of MB). */
Test(grpc_limits, reflection_flood_to_a_non_reader_is_paused)
{
    tw_test_daemon_start(&daemon_, "tidewatch-query", NULL, 0);
    long base = tw_test_proc_kib(daemon_.pid, "VmRSS");
    tw_h2 h;
    tw_h2_connect(&h, daemon_.port, 1);
    tw_h2_pump(&h, 100); /* the connection WINDOW_UPDATE */

    Grpc__Reflection__V1__ServerReflectionRequest req =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    req.file_containing_symbol = (char *)"tidewatch.v1.IngestService";
    uint8_t one[128];
    size_t plen = grpc__reflection__v1__server_reflection_request__pack(&req, one + 5);
    one[0] = 0;
    one[1] = one[2] = one[3] = 0;
    one[4] = (uint8_t)plen;
    size_t rlen = plen + 5;

    /* As much as the windows we know of allow, at most 1 MiB; then never
     * read again (no WINDOW_UPDATE is seen either). */
    int64_t budget = h.initial_window < h.conn_window ? h.initial_window : h.conn_window;
    if (budget > MIB)
        budget = MIB;
    size_t count = (size_t)budget / rlen;
    uint8_t *flood = malloc(count * rlen);
    cr_assert(flood);
    for (size_t i = 0; i < count; i++)
        memcpy(flood + i * rlen, one, rlen);
    cr_assert_eq(tw_h2_send_request(&h, 1, REFLECTION_PATH, 0), 0);
    size_t off = 0;
    while (off < count * rlen) {
        size_t chunk = count * rlen - off > 16384 ? 16384 : count * rlen - off;
        cr_assert_eq(tw_h2_send_frame(&h, 0x0, 0, 1, flood + off, chunk), 0,
                     "the server stopped reading the connection");
        off += chunk;
    }
    free(flood);
    tw_test_sleep_ms(1500);
    double grew = peak_growth_mib(base);
    cr_log_info("reflection flood: %zu requests, daemon peak grew %.1f MiB", count, grew);
    cr_assert_lt(grew, 32.0, "%zu reflection requests to a non-reader grew the daemon by %.0f MiB",
                 count, grew);

    /* Other clients are served meanwhile. */
    tw_h2 other;
    tw_h2_connect(&other, daemon_.port, 1);
    cr_assert_eq(tw_h2_unary_empty(&other, 1, CHECK_PATH, 5000), 0);
    tw_h2_close(&other);

    /* The flood call was paused, not lost: reading lets it go on. */
    tw_h2_pump(&h, 1000);
    tw_h2_stream *st = tw_h2_stream_of(&h, 1);
    cr_assert_gt(st->data_bytes, 0);
    cr_assert(!st->rst, "the call was reset (code %u)", st->rst_code);
    cr_assert_str_eq(st->grpc_status, "", "the call ended: %s %s", st->grpc_status,
                     st->grpc_message);
    tw_h2_close(&h);
}

/* A client that never reads (nor acknowledges SETTINGS) and opens stream
 * after stream past SETTINGS_MAX_CONCURRENT_STREAMS: each extra one makes
 * nghttp2 queue a RST_STREAM(REFUSED_STREAM) that cannot be sent. The
 * server stops reading such a connection until its queue drains. */
Test(grpc_limits, refused_streams_to_a_non_reader_stop_its_reading)
{
    tw_test_daemon_start(&daemon_, "tidewatch-query", NULL, 0);
    long base = tw_test_proc_kib(daemon_.pid, "VmRSS");
    tw_h2 h;
    tw_h2_connect_rcvbuf(&h, daemon_.port, 0, 4096);
    static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    cr_assert_eq(write(h.fd, magic, sizeof magic - 1), (ssize_t)(sizeof magic - 1));
    cr_assert_eq(tw_h2_send_frame(&h, 0x4, 0, 0, NULL, 0), 0);
    uint8_t block[128];
    size_t n = tw_h2_grpc_request_block(block, CHECK_PATH);
    h.send_timeout_ms = 1000;
    enum { MAX_STREAMS = 1000000 };
    int sent = 0;
    for (int32_t id = 1; sent < MAX_STREAMS; id += 2, sent++)
        if (tw_h2_send_frame(&h, 0x1, 0x4, id, block, n) != 0)
            break;
    tw_test_sleep_ms(500);
    double grew = peak_growth_mib(base);
    cr_log_info("refused streams: %d HEADERS sent before the server stopped reading, daemon "
                "peak grew %.1f MiB", sent, grew);
    cr_assert_lt(sent, MAX_STREAMS, "the server read all %d HEADERS frames", sent);
    cr_assert_lt(grew, 32.0, "%d refused streams grew the daemon by %.0f MiB", sent, grew);
    tw_h2_close(&h);
}

/* ---- connections --------------------------------------------------------- */

/* Read from fd until EOF or reset (at most ms); returns the bytes read, or
 * -1 if the connection stayed open. */
static long bytes_until_closed(int fd, int ms)
{
    long total = 0;
    for (int waited = 0; waited < ms; waited += 20) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0) {
            char buf[4096];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n > 0)
                total += n;
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                return total;
        }
    }
    return -1;
}

Test(grpc_limits, max_connections_refuses_the_extra_one)
{
    const char *args[] = {"--max-connections", "3", NULL};
    tw_test_daemon_start(&daemon_, "tidewatch-query", args, 0);
    tw_h2 h[3];
    for (int i = 0; i < 3; i++)
        tw_h2_connect(&h[i], daemon_.port, 1);

    /* The fourth is closed before any HTTP/2 byte. */
    int extra = tw_test_tcp_connect(daemon_.port);
    cr_assert(extra >= 0);
    static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    (void)!send(extra, magic, sizeof magic - 1, MSG_NOSIGNAL);
    cr_assert_eq(bytes_until_closed(extra, 5000), 0, "refused: closed without a SETTINGS frame");
    close(extra);
    /* A gRPC client learns at once: UNAVAILABLE, not a wait for its deadline. */
    char target[32], err[256];
    snprintf(target, sizeof target, "127.0.0.1:%d", daemon_.port);
    struct event_base *base = event_base_new();
    tw_grpc_channel *ch = tw_grpc_channel_new(base, target, err, sizeof err);
    cr_assert(ch, "%s", err);
    tw_grpc_result r = {0};
    tw_grpc_call_opts opts = {.timeout_ms = 10000};
    cr_assert_eq(tw_grpc_unary(ch, CHECK_PATH, NULL, 0, &opts, &r), TW_GRPC_UNAVAILABLE, "%d %s",
                 r.status, r.message);
    tw_grpc_result_free(&r);

    /* The first three are served. */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tw_h2_unary_empty(&h[i], 1, CHECK_PATH, 5000), 0, "connection %d", i);
    /* One leaves: a new one is accepted. */
    tw_h2_close(&h[1]);
    tw_test_sleep_ms(200);
    cr_assert_eq(tw_grpc_unary(ch, CHECK_PATH, NULL, 0, &opts, &r), TW_GRPC_OK, "%d %s",
                 r.status, r.message);
    tw_grpc_result_free(&r);
    tw_grpc_channel_free(ch);
    event_base_free(base);
    tw_h2_close(&h[0]);
    tw_h2_close(&h[2]);
    cr_assert(tw_test_file_contains(daemon_.log, "max-connections (3) reached"));
}

Test(grpc_limits, idle_timeout_closes_quiet_connections)
{
    const char *args[] = {"--idle-timeout", "500ms", NULL};
    tw_test_daemon_start(&daemon_, "tidewatch-query", args, 0);

    /* A connection that made one call and then went quiet. */
    tw_h2 quiet;
    tw_h2_connect(&quiet, daemon_.port, 1);
    cr_assert_eq(tw_h2_unary_empty(&quiet, 1, CHECK_PATH, 5000), 0);
    /* One with an open stream (Watch) is not idle. */
    tw_h2 busy;
    tw_h2_connect(&busy, daemon_.port, 1);
    static const uint8_t empty[5] = {0};
    cr_assert_eq(tw_h2_send_request(&busy, 1, WATCH_PATH, 0), 0);
    cr_assert_eq(tw_h2_send_frame(&busy, 0x0, 0x1, 1, empty, sizeof empty), 0);

    cr_assert(tw_h2_wait_eof(&quiet, 5000), "the idle connection is closed");
    cr_assert(quiet.goaway, "with a GOAWAY");
    cr_assert_eq(quiet.goaway_code, 0, "NO_ERROR, got %u", quiet.goaway_code);
    cr_assert(strstr(quiet.goaway_debug, "idle"), "debug: %s", quiet.goaway_debug);

    tw_h2_pump(&busy, 1500);
    cr_assert(!busy.eof && !busy.goaway, "a connection with an open call stays");
    cr_assert_gt(tw_h2_stream_of(&busy, 1)->data_bytes, 0, "the Watch answered");
    tw_h2_close(&quiet);
    tw_h2_close(&busy);
}

/* Whether the server closes `fd` within ms milliseconds. */
static int closed_within(int fd, int ms)
{
    for (int waited = 0; waited < ms; waited += 20) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0) {
            char buf[4096];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return 1;
        }
    }
    return 0;
}

Test(grpc_limits, handshake_timeout_closes_silent_sockets)
{
    const char *args[] = {"--handshake-timeout", "500ms", NULL};
    tw_test_daemon_start(&daemon_, "tidewatch-query", args, 0);
    int silent = tw_test_tcp_connect(daemon_.port);
    int half = tw_test_tcp_connect(daemon_.port);
    cr_assert(silent >= 0 && half >= 0);
    static const char part[] = "PRI * HTTP/2.0\r\n";
    cr_assert_eq(write(half, part, sizeof part - 1), (ssize_t)(sizeof part - 1));
    tw_h2 good;
    tw_h2_connect(&good, daemon_.port, 1);

    cr_assert(closed_within(silent, 5000), "a socket that sends nothing is closed");
    cr_assert(closed_within(half, 5000), "a socket that sends half a preface is closed");
    tw_h2_pump(&good, 1000);
    cr_assert(!good.eof, "a connection that sent its preface stays");
    cr_assert_eq(tw_h2_unary_empty(&good, 1, CHECK_PATH, 5000), 0);
    close(silent);
    close(half);
    tw_h2_close(&good);
}

/* With few descriptors, connections queue up beyond what accept can take.
 * The old accept loop spun on EMFILE at 100% CPU, logging each failure. */
Test(grpc_limits, accept_backs_off_at_the_descriptor_limit)
{
    tw_test_daemon_start(&daemon_, "tidewatch-query", NULL, 48);
    enum { N = 100 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = tw_test_tcp_connect(daemon_.port);
        cr_assert(fds[i] >= 0, "connect %d: %s", i, strerror(errno));
    }
    tw_test_sleep_ms(300);
    double cpu0 = tw_test_proc_cpu_seconds(daemon_.pid);
    tw_test_sleep_ms(2000);
    double cpu = tw_test_proc_cpu_seconds(daemon_.pid) - cpu0;
    long log_size = tw_test_file_size(daemon_.log);
    cr_log_info("descriptor limit: %.2f s CPU in 2 s, log %ld bytes", cpu, log_size);
    cr_assert_lt(cpu, 1.0, "the daemon used %.2f s of CPU in 2 s at the descriptor limit", cpu);
    cr_assert_lt(log_size, 16 * 1024, "its log grew to %ld bytes", log_size);
    cr_assert(tw_test_file_contains(daemon_.log, "Too many open files"),
              "the condition is logged");

    for (int i = 0; i < N; i++)
        close(fds[i]);
    /* Descriptors come back: it accepts and serves again. */
    tw_h2 h;
    tw_h2_connect(&h, daemon_.port, 1);
    cr_assert_eq(tw_h2_unary_empty(&h, 1, CHECK_PATH, 5000), 0);
    tw_h2_close(&h);
}

/* ---- the settings table ------------------------------------------------- */

Test(grpc_limits, every_limit_is_a_setting)
{
    static const char *const rows[][2] = {
        {"TIDEWATCH_MAX_CONNECTIONS", "1024"},  {"TIDEWATCH_IDLE_TIMEOUT", "5m"},
        {"TIDEWATCH_HANDSHAKE_TIMEOUT", "10s"}, {"TIDEWATCH_MAX_STREAMS", "100"},
        {"TIDEWATCH_MAX_HEADER_LIST", "64KiB"}, {"TIDEWATCH_MAX_HEADER_FIELDS", "100"},
        {"TIDEWATCH_MAX_CONN_INPUT", "16MiB"},  {"TIDEWATCH_MAX_CALL_OUTPUT", "4MiB"},
        {"TIDEWATCH_MAX_CONN_OUTPUT", "16MiB"}, {"TIDEWATCH_MAX_MESSAGE", "4MiB"},
    };
    static const char *const daemons[] = {"tidewatch-query", "tidewatch-ingest",
                                          "tidewatch-provenance", "tidewatch-alerts"};
    for (size_t d = 0; d < sizeof daemons / sizeof daemons[0]; d++) {
        char bin[512];
        static char out[32768];
        char *argv[] = {(char *)tw_test_bin(daemons[d], bin, sizeof bin), (char *)"--help", NULL};
        cr_assert_eq(tw_test_run(out, sizeof out, argv), 0, "%s --help", daemons[d]);
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            const char *line = strstr(out, rows[i][0]);
            cr_assert(line, "%s --help lacks %s", daemons[d], rows[i][0]);
            const char *eol = strchr(line, '\n');
            cr_assert(eol && strstr(line, rows[i][1]) && strstr(line, rows[i][1]) < eol,
                      "%s: %s defaults to %s", daemons[d], rows[i][0], rows[i][1]);
        }
    }
}

/* ---- the CLI --------------------------------------------------------- */

/* GET /metrics from 127.0.0.1:port into a malloc'd string. */
static char *fetch_metrics(int port)
{
    int fd = tw_test_tcp_connect(port);
    cr_assert(fd >= 0, "metrics port %d", port);
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    cr_assert_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf);
        }
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

Test(grpc_limits, info_asks_reflection_not_guessed_paths)
{
    int mport = tw_test_free_port();
    char maddr[32];
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", mport);
    const char *args[] = {"--metrics-listen", maddr, NULL};
    tw_test_daemon_start(&daemon_, "tidewatch-query", args, 0);
    char bin[512], target[32], out[4096];
    snprintf(target, sizeof target, "127.0.0.1:%d", daemon_.port);
    char *argv[] = {(char *)tw_test_bin("tidewatch", bin, sizeof bin), (char *)"info",
                    (char *)"--target", target, NULL};
    int rc = tw_test_run(out, sizeof out, argv);
    cr_assert_eq(rc, 0, "tidewatch info: %d\n%s", rc, out);
    cr_assert(strstr(out, "service  query"), "%s", out);

    char *metrics = fetch_metrics(mport);
    cr_assert(strstr(metrics, "GetServerInfo\",code=\"OK\""), "%s", metrics);
    cr_assert_null(strstr(metrics, "code=\"UNIMPLEMENTED\""),
                   "tidewatch info made the server count UNIMPLEMENTED calls:\n%s", metrics);
    free(metrics);
}
