/* tidewatch-interop-server: grpc.testing.TestService on the Tidewatch gRPC
 * stack, as gRPC's doc/interop-test-descriptions.md specifies the server
 * side, plus health and reflection. Driven by python3-grpcio's client in
 * tests/interop. Sleeps (interval_us) are timers, never blocking. */
#include <event2/event.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/testing/empty.pb-c.h"
#include "grpc/testing/messages.pb-c.h"
#include "tw_arena.h"
#include "tw_grpc_server.h"
#include "tw_health.h"
#include "tw_log.h"
#include "tw_reflection.h"
#include "tw_settings.h"

extern const unsigned char tw_descriptor_set[];
extern const size_t tw_descriptor_set_len;

#define SVC "/grpc.testing.TestService/"

typedef struct config {
    int64_t port;
    char *host;
    int log_level;
} config;


static const tw_setting settings[] = {
    {.name = "port", .env = "TW_INTEROP_PORT", .flag = "port", .type = TW_SET_INT,
     .def = "10000", .min = 0, .max = 65535, .help = "TCP port (0: any free port)",
     .offset = offsetof(config, port)},
    {.name = "host", .flag = "host", .type = TW_SET_STRING, .def = "127.0.0.1",
     .help = "address to bind", .offset = offsetof(config, host)},
    {.name = "log_level", .env = "TIDEWATCH_LOG_LEVEL", .flag = "log-level",
     .type = TW_SET_ENUM, .def = "warn", .choices = tw_log_level_names,
     .help = "least severe level logged", .offset = offsetof(config, log_level)},
};

/* ---- helpers ----------------------------------------------------------- */

static ProtobufCAllocator *alloc(void) { return tw_protobuf_zeroing_allocator(); }

/* Echo the custom metadata the interop client sends. */
static void echo_metadata(tw_grpc_call *call, void *arg)
{
    (void)arg;
    const char *initial = tw_grpc_call_metadata(call, "x-grpc-test-echo-initial");
    const char *trailing = tw_grpc_call_metadata(call, "x-grpc-test-echo-trailing-bin");
    if ((initial && tw_grpc_call_add_header(call, "x-grpc-test-echo-initial", initial) != 0) ||
        (trailing &&
         tw_grpc_call_add_trailer(call, "x-grpc-test-echo-trailing-bin", trailing) != 0))
        TW_WARN(NULL, "could not echo metadata");
}

/* A payload of `size` zero bytes, as the interop spec asks. */
static int send_payload(tw_grpc_call *call, int32_t size, int compress, int streaming)
{
    uint8_t *zeros = calloc(1, size > 0 ? (size_t)size : 1);
    if (!zeros)
        return -1;
    Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
    payload.body.data = zeros;
    payload.body.len = size > 0 ? (size_t)size : 0;
    size_t len;
    uint8_t *buf;
    if (streaming) {
        Grpc__Testing__StreamingOutputCallResponse r =
            GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
        r.payload = &payload;
        len = grpc__testing__streaming_output_call_response__get_packed_size(&r);
        buf = malloc(len ? len : 1);
        if (buf)
            grpc__testing__streaming_output_call_response__pack(&r, buf);
    } else {
        Grpc__Testing__SimpleResponse r = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
        r.payload = &payload;
        len = grpc__testing__simple_response__get_packed_size(&r);
        buf = malloc(len ? len : 1);
        if (buf)
            grpc__testing__simple_response__pack(&r, buf);
    }
    free(zeros);
    if (!buf)
        return -1;
    int rv = tw_grpc_call_send_ex(call, buf, len, compress);
    free(buf);
    return rv;
}

/* ---- unary --------------------------------------------------------------- */

static void empty_call(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    Grpc__Testing__Empty *req = grpc__testing__empty__unpack(alloc(), len, msg);
    if (!req) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed Empty");
        return;
    }
    grpc__testing__empty__free_unpacked(req, alloc());
    tw_grpc_call_reply(call, (const uint8_t *)"", 0);
}

static void unary_call(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    Grpc__Testing__SimpleRequest *req = grpc__testing__simple_request__unpack(alloc(), len, msg);
    if (!req) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed SimpleRequest");
        return;
    }
    if (req->expect_compressed && req->expect_compressed->value &&
        !tw_grpc_call_request_compressed(call)) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "expected a compressed request");
    } else if (req->response_status && req->response_status->code != 0) {
        tw_grpc_call_finish(call, req->response_status->code, req->response_status->message);
    } else {
        int compress = req->response_compressed && req->response_compressed->value;
        tw_grpc_call_set_compress(call, compress);
        if (send_payload(call, req->response_size, compress, 0) != 0)
            tw_grpc_call_finish(call, TW_GRPC_INTERNAL, "could not send the response");
        else
            tw_grpc_call_finish(call, TW_GRPC_OK, NULL);
    }
    grpc__testing__simple_request__free_unpacked(req, alloc());
}

/* ---- streaming ------------------------------------------------------------ */

typedef struct pending {
    struct pending *next;
    int32_t size;
    int32_t interval_us;
    int compress;
} pending;

typedef struct stream {
    tw_grpc_call *call;
    struct event *timer;
    pending *head, *tail;
    int half_closed;
    int has_status;
    int status;
    char *message;
    int32_t aggregated; /* StreamingInputCall */
} stream;

static struct event_base *loop_base(void *arg) { return arg; }

static stream *stream_get(tw_grpc_call *call)
{
    return tw_grpc_call_data(call);
}

static void stream_free(stream *st)
{
    while (st->head) {
        pending *p = st->head;
        st->head = p->next;
        free(p);
    }
    if (st->timer)
        event_free(st->timer);
    free(st->message);
    free(st);
}

static void stream_on_start(tw_grpc_call *call, void *arg)
{
    echo_metadata(call, arg);
    stream *st = calloc(1, sizeof *st);
    if (!st) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    st->call = call;
    tw_grpc_call_set_data(call, st);
}

static void stream_on_cancel(tw_grpc_call *call, void *arg)
{
    (void)arg;
    stream *st = stream_get(call);
    if (st)
        stream_free(st);
}

static void stream_end(stream *st, int status, const char *message)
{
    /* `message` may belong to st: finish (which copies it) before freeing. */
    tw_grpc_call *call = st->call;
    tw_grpc_call_set_data(call, NULL);
    tw_grpc_call_finish(call, status, message);
    stream_free(st);
}

static void stream_pump(stream *st);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream *st = arg;
    pending *p = st->head;
    if (!p)
        return;
    st->head = p->next;
    if (!st->head)
        st->tail = NULL;
    int rv = send_payload(st->call, p->size, p->compress, 1);
    free(p);
    if (rv != 0) {
        stream_end(st, TW_GRPC_INTERNAL, "could not send a response");
        return;
    }
    stream_pump(st);
}

/* Start the next queued response's timer, or end the call when the queue
 * is empty and the client half-closed (or a status was requested). */
static void stream_pump(stream *st)
{
    if (st->head) {
        if (evtimer_pending(st->timer, NULL))
            return;
        int64_t us = st->head->interval_us > 0 ? st->head->interval_us : 0;
        struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
        evtimer_add(st->timer, &tv);
        return;
    }
    if (st->has_status)
        stream_end(st, st->status, st->message);
    else if (st->half_closed)
        stream_end(st, TW_GRPC_OK, NULL);
}

static void output_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    stream *st = stream_get(call);
    if (!st)
        return;
    Grpc__Testing__StreamingOutputCallRequest *req =
        grpc__testing__streaming_output_call_request__unpack(alloc(), len, msg);
    if (!req) {
        stream_end(st, TW_GRPC_INVALID_ARGUMENT, "malformed StreamingOutputCallRequest");
        return;
    }
    if (!st->timer)
        st->timer = evtimer_new(loop_base(arg), timer_cb, st);
    int compress_any = 0;
    for (size_t i = 0; i < req->n_response_parameters; i++) {
        Grpc__Testing__ResponseParameters *rp = req->response_parameters[i];
        pending *p = calloc(1, sizeof *p);
        if (!p || !st->timer) {
            free(p);
            grpc__testing__streaming_output_call_request__free_unpacked(req, alloc());
            stream_end(st, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        p->size = rp->size;
        p->interval_us = rp->interval_us;
        p->compress = rp->compressed && rp->compressed->value;
        compress_any |= p->compress;
        if (st->tail)
            st->tail->next = p;
        else
            st->head = p;
        st->tail = p;
    }
    if (compress_any)
        tw_grpc_call_set_compress(call, 1);
    if (req->response_status && req->response_status->code != 0) {
        st->has_status = 1;
        st->status = req->response_status->code;
        st->message = strdup(req->response_status->message ? req->response_status->message : "");
    }
    grpc__testing__streaming_output_call_request__free_unpacked(req, alloc());
    stream_pump(st);
}

static void output_on_half_close(tw_grpc_call *call, void *arg)
{
    (void)arg;
    stream *st = stream_get(call);
    if (!st)
        return;
    st->half_closed = 1;
    if (!st->timer || !evtimer_pending(st->timer, NULL))
        stream_pump(st);
}

static void input_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    stream *st = stream_get(call);
    if (!st)
        return;
    Grpc__Testing__StreamingInputCallRequest *req =
        grpc__testing__streaming_input_call_request__unpack(alloc(), len, msg);
    if (!req) {
        stream_end(st, TW_GRPC_INVALID_ARGUMENT, "malformed StreamingInputCallRequest");
        return;
    }
    int want_compressed = req->expect_compressed && req->expect_compressed->value;
    if (req->payload)
        st->aggregated += (int32_t)req->payload->body.len;
    grpc__testing__streaming_input_call_request__free_unpacked(req, alloc());
    if (want_compressed && !tw_grpc_call_request_compressed(call))
        stream_end(st, TW_GRPC_INVALID_ARGUMENT, "expected a compressed message");
}

static void input_on_half_close(tw_grpc_call *call, void *arg)
{
    (void)arg;
    stream *st = stream_get(call);
    if (!st)
        return;
    Grpc__Testing__StreamingInputCallResponse resp =
        GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
    resp.aggregated_payload_size = st->aggregated;
    uint8_t buf[16];
    size_t n = grpc__testing__streaming_input_call_response__pack(&resp, buf);
    tw_grpc_call_set_data(call, NULL);
    stream_free(st);
    tw_grpc_call_reply(call, buf, n);
}

/* ---- main ------------------------------------------------------------------ */

typedef struct app {
    struct event_base *base;
    tw_grpc_server *server;
    tw_health *health;
    int stopping;
} app;

static void done(void *arg) { event_base_loopexit(((app *)arg)->base, NULL); }

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    app *a = arg;
    if (a->stopping++) {
        event_base_loopbreak(a->base);
        return;
    }
    tw_health_shutdown(a->health);
    tw_grpc_server_shutdown(a->server, 5000, done, a);
}

int main(int argc, char **argv)
{
    config cfg = {0};
    char err[512];
    tw_settings_about about = {.program = "tidewatch-interop-server",
                               .summary = "grpc.testing.TestService for gRPC interop tests"};
    size_t nset = sizeof settings / sizeof settings[0];
    int rv = tw_settings_load(settings, nset, &cfg, argc, argv, &about, err, sizeof err);
    if (rv != 0) {
        if (rv < 0)
            fprintf(stderr, "tidewatch-interop-server: %s\n", err);
        tw_settings_free(settings, nset, &cfg);
        return rv < 0 ? 2 : 0;
    }
    tw_log_init("interop", (tw_log_level)cfg.log_level, TW_LOG_FORMAT_TEXT);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    app a = {0};
    tw_reflection *refl = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    a.base = event_base_new();
    if (!a.base)
        goto out;
    a.server = tw_grpc_server_new(a.base, NULL);
    a.health = tw_health_new();
    refl = tw_reflection_new(tw_descriptor_set, tw_descriptor_set_len);
    if (!a.server || !a.health || !refl)
        goto out;
    const tw_grpc_method methods[] = {
        {.path = SVC "EmptyCall", .kind = TW_GRPC_UNARY, .on_start = echo_metadata,
         .on_message = empty_call},
        {.path = SVC "UnaryCall", .kind = TW_GRPC_UNARY, .on_start = echo_metadata,
         .on_message = unary_call},
        {.path = SVC "CacheableUnaryCall", .kind = TW_GRPC_UNARY, .on_start = echo_metadata,
         .on_message = unary_call},
        {.path = SVC "StreamingOutputCall", .kind = TW_GRPC_SERVER_STREAM,
         .on_start = stream_on_start, .on_message = output_on_message,
         .on_half_close = output_on_half_close, .on_cancel = stream_on_cancel, .arg = a.base},
        {.path = SVC "StreamingInputCall", .kind = TW_GRPC_CLIENT_STREAM,
         .on_start = stream_on_start, .on_message = input_on_message,
         .on_half_close = input_on_half_close, .on_cancel = stream_on_cancel, .arg = a.base},
        {.path = SVC "FullDuplexCall", .kind = TW_GRPC_BIDI, .on_start = stream_on_start,
         .on_message = output_on_message, .on_half_close = output_on_half_close,
         .on_cancel = stream_on_cancel, .arg = a.base},
    };
    if (tw_grpc_server_add_methods(a.server, methods, sizeof methods / sizeof methods[0]) != 0 ||
        tw_health_register(a.health, a.server) != 0 || tw_reflection_register(refl, a.server) != 0 ||
        tw_health_set(a.health, "grpc.testing.TestService", TW_HEALTH_SERVING) != 0)
        goto out;
    char hostport[300];
    snprintf(hostport, sizeof hostport, strchr(cfg.host, ':') ? "[%s]:%lld" : "%s:%lld",
             cfg.host, (long long)cfg.port);
    if (tw_grpc_server_listen(a.server, hostport, err, sizeof err) != 0) {
        fprintf(stderr, "tidewatch-interop-server: %s\n", err);
        goto out;
    }
    sigterm = evsignal_new(a.base, SIGTERM, on_signal, &a);
    sigint = evsignal_new(a.base, SIGINT, on_signal, &a);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL))
        goto out;
    printf("PORT %d\n", tw_grpc_server_port(a.server));
    fflush(stdout);
    status = event_base_dispatch(a.base) < 0 ? 1 : 0;
out:
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    tw_grpc_server_free(a.server);
    tw_health_free(a.health);
    tw_reflection_free(refl);
    if (a.base)
        event_base_free(a.base);
    tw_settings_free(settings, nset, &cfg);
    tw_log_shutdown();
    libevent_global_shutdown();
    return status;
}
