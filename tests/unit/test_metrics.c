#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "tw_grpc_server.h"
#include "tw_metrics.h"

/* The observer must be assignable to the server's observer type as is. */
static const tw_grpc_observer_fn observer_type_check = tw_metrics_observe_call;

static char *render(tw_metrics *m)
{
    size_t len = 0;
    char *s = tw_metrics_render_string(m, &len);
    cr_assert_not_null(s);
    cr_assert_eq(strlen(s), len);
    return s;
}

#define assert_has(text, needle)                                                                   \
    cr_assert(strstr((text), (needle)) != NULL, "missing:\n%s\nin:\n%s", (needle), (text))

Test(metrics, empty_registry_has_help_and_type)
{
    tw_metrics *m = tw_metrics_new("ingest");
    cr_assert_not_null(m);
    char *s = render(m);
    assert_has(s, "# HELP tidewatch_grpc_calls_total ");
    assert_has(s, "# TYPE tidewatch_grpc_calls_total counter\n");
    assert_has(s, "# TYPE tidewatch_grpc_call_duration_seconds histogram\n");
    cr_assert_null(strstr(s, "{"), "no series yet:\n%s", s);
    free(s);
    tw_metrics_free(m);
}

Test(metrics, calls_counted_by_method_and_code)
{
    tw_metrics *m = tw_metrics_new("ingest");
    observer_type_check(m, "/x.Y/Z", 0, 0.002);
    tw_metrics_observe_call(m, "/x.Y/Z", 0, 0.003);
    tw_metrics_observe_call(m, "/x.Y/Z", 3, 0.0004);
    tw_metrics_observe_call(m, "/x.Y/W", 14, 20.0);
    tw_metrics_observe_call(m, "/x.Y/W", 99, -1.0); /* unknown code, bogus duration */
    char *s = render(m);
    assert_has(s, "tidewatch_grpc_calls_total{service=\"ingest\",method=\"/x.Y/Z\",code=\"OK\"} 2\n");
    assert_has(s, "tidewatch_grpc_calls_total{service=\"ingest\",method=\"/x.Y/Z\","
                  "code=\"INVALID_ARGUMENT\"} 1\n");
    assert_has(s, "tidewatch_grpc_calls_total{service=\"ingest\",method=\"/x.Y/W\","
                  "code=\"UNAVAILABLE\"} 1\n");
    assert_has(s, "tidewatch_grpc_calls_total{service=\"ingest\",method=\"/x.Y/W\","
                  "code=\"UNKNOWN\"} 1\n");
    cr_assert_null(strstr(s, "method=\"/x.Y/Z\",code=\"UNAVAILABLE\""), "zero series omitted");
    free(s);
    tw_metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative)
{
    tw_metrics *m = tw_metrics_new("query");
    tw_metrics_observe_call(m, "/a.B/C", 0, 0.0004); /* <= 0.0005 */
    tw_metrics_observe_call(m, "/a.B/C", 0, 0.001);  /* le is inclusive */
    tw_metrics_observe_call(m, "/a.B/C", 0, 0.3);    /* <= 0.5 */
    tw_metrics_observe_call(m, "/a.B/C", 0, 11.0);   /* only +Inf */
    char *s = render(m);
#define B(le, n)                                                                                   \
    "tidewatch_grpc_call_duration_seconds_bucket{service=\"query\",method=\"/a.B/C\",le=\"" le     \
    "\"} " #n "\n"
    assert_has(s, B("0.0005", 1) B("0.001", 2) B("0.0025", 2) B("0.005", 2) B("0.01", 2)
                      B("0.025", 2) B("0.05", 2) B("0.1", 2) B("0.25", 2) B("0.5", 3) B("1", 3)
                          B("2.5", 3) B("5", 3) B("10", 3) B("+Inf", 4));
#undef B
    assert_has(s, "tidewatch_grpc_call_duration_seconds_sum{service=\"query\",method=\"/a.B/C\"} "
                  "11.3014\n");
    assert_has(s, "tidewatch_grpc_call_duration_seconds_count{service=\"query\",method=\"/a.B/C\"} "
                  "4\n");
    free(s);
    tw_metrics_free(m);
}

Test(metrics, label_values_are_escaped)
{
    tw_metrics *m = tw_metrics_new("in\"g\\est\n");
    tw_metrics_observe_call(m, "/we\"ird\\pa\nth", 0, 0.1);
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_things_total", "Things\\ done\nok.", "kind",
                                        "a\"b", 1),
                 0);
    char *s = render(m);
    assert_has(s, "{service=\"in\\\"g\\\\est\\n\",method=\"/we\\\"ird\\\\pa\\nth\",code=\"OK\"} 1\n");
    assert_has(s, "# HELP tidewatch_things_total Things\\\\ done\\nok.\n");
    assert_has(s, "tidewatch_things_total{service=\"in\\\"g\\\\est\\n\",kind=\"a\\\"b\"} 1\n");
    free(s);
    tw_metrics_free(m);
}

static size_t fake_connections(void *arg)
{
    return *(size_t *)arg;
}

Test(metrics, connections_gauge_and_generic_metrics)
{
    tw_metrics *m = tw_metrics_new("ingest");
    size_t conns = 3;
    cr_assert_eq(tw_metrics_set_connections(m, fake_connections, &conns), 0);
    cr_assert_eq(tw_metrics_set_connections(m, fake_connections, &conns), -1, "registered twice");
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_records_total", "Records.", "result",
                                        "accepted", 5),
                 0);
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_records_total", "Records.", "result",
                                        "accepted", 2),
                 0);
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_records_total", "Records.", "result",
                                        "rejected", 1),
                 0);
    cr_assert_eq(tw_metrics_gauge_set(m, "tidewatch_lag_events", "Lag.", NULL, NULL, 10), 0);
    cr_assert_eq(tw_metrics_gauge_add(m, "tidewatch_lag_events", "Lag.", NULL, NULL, -2.5), 0);
    cr_assert_eq(tw_metrics_gauge_set(m, "tidewatch_ratio", "Ratio.", NULL, NULL, 0.1), 0);

    /* Misuse is refused. */
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_records_total", "x", NULL, NULL, 1), -1,
                 "label name mismatch");
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_records_total", "x", "result", "a", -1), -1,
                 "counters only go up");
    cr_assert_eq(tw_metrics_gauge_set(m, "tidewatch_records_total", "x", "result", "a", 1), -1,
                 "kind mismatch");
    cr_assert_eq(tw_metrics_counter_add(m, "bad-name", "x", NULL, NULL, 1), -1);
    cr_assert_eq(tw_metrics_counter_add(m, "ok_name", "x", "bad label", "v", 1), -1);
    cr_assert_eq(tw_metrics_counter_add(m, "ok_name", "x", "service", "v", 1), -1);
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_grpc_calls_total", "x", NULL, NULL, 1), -1);
    cr_assert_eq(tw_metrics_counter_add(m, "tidewatch_grpc_connections", "x", NULL, NULL, 1), -1);

    char *s = render(m);
    assert_has(s, "# HELP tidewatch_grpc_connections Open gRPC (HTTP/2) connections.\n"
                  "# TYPE tidewatch_grpc_connections gauge\n"
                  "tidewatch_grpc_connections{service=\"ingest\"} 3\n");
    assert_has(s, "# TYPE tidewatch_records_total counter\n"
                  "tidewatch_records_total{service=\"ingest\",result=\"accepted\"} 7\n"
                  "tidewatch_records_total{service=\"ingest\",result=\"rejected\"} 1\n");
    assert_has(s, "tidewatch_lag_events{service=\"ingest\"} 7.5\n");
    assert_has(s, "tidewatch_ratio{service=\"ingest\"} 0.1\n");
    free(s);

    conns = 0; /* read at scrape time */
    s = render(m);
    assert_has(s, "tidewatch_grpc_connections{service=\"ingest\"} 0\n");
    free(s);
    tw_metrics_free(m);
}

Test(metrics, method_cardinality_is_bounded)
{
    tw_metrics *m = tw_metrics_new("ingest");
    char path[64];
    for (int i = 0; i < TW_METRICS_MAX_METHODS + 10; i++) {
        snprintf(path, sizeof path, "/scan.S/M%d", i);
        tw_metrics_observe_call(m, path, 12, 0.001);
    }
    char *s = render(m);
    snprintf(path, sizeof path, "method=\"/scan.S/M%d\"", TW_METRICS_MAX_METHODS - 1);
    assert_has(s, path);
    snprintf(path, sizeof path, "method=\"/scan.S/M%d\"", TW_METRICS_MAX_METHODS);
    cr_assert_null(strstr(s, path), "beyond the cap");
    assert_has(s, "method=\"other\",code=\"UNIMPLEMENTED\"} 10\n");
    free(s);
    tw_metrics_free(m);
}

/* ---- HTTP -------------------------------------------------------------- */

typedef struct http_result {
    struct event_base *base;
    int status;
    char *body;
    char *content_type;
} http_result;

static void on_response(struct evhttp_request *req, void *arg)
{
    http_result *r = arg;
    if (req) {
        r->status = evhttp_request_get_response_code(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        r->body = calloc(1, n + 1);
        evbuffer_remove(in, r->body, n);
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        r->content_type = ct ? strdup(ct) : NULL;
    }
    event_base_loopexit(r->base, NULL);
}

static void fetch(struct event_base *base, int port, enum evhttp_cmd_type cmd, const char *uri,
                  http_result *r)
{
    memset(r, 0, sizeof *r);
    r->base = base;
    r->status = -1;
    struct evhttp_connection *conn =
        evhttp_connection_base_new(base, NULL, "127.0.0.1", (ev_uint16_t)port);
    cr_assert_not_null(conn);
    evhttp_connection_set_timeout(conn, 5);
    struct evhttp_request *req = evhttp_request_new(on_response, r);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    cr_assert_eq(evhttp_make_request(conn, req, cmd, uri), 0);
    struct timeval guard = {10, 0};
    event_base_loopexit(base, &guard);
    event_base_dispatch(base);
    evhttp_connection_free(conn);
}

static void free_result(http_result *r)
{
    free(r->body);
    free(r->content_type);
}

Test(metrics, serves_metrics_over_http)
{
    struct event_base *base = event_base_new();
    cr_assert_not_null(base);
    tw_metrics *m = tw_metrics_new("ingest");
    tw_metrics_observe_call(m, "/tidewatch.v1.IngestService/Submit", 0, 0.01);
    char err[256] = "";
    cr_assert_eq(tw_metrics_port(m), -1);
    cr_assert_eq(tw_metrics_listen(m, base, "127.0.0.1:0", err, sizeof err), 0, "%s", err);
    int port = tw_metrics_port(m);
    cr_assert_gt(port, 0);
    cr_assert_eq(tw_metrics_listen(m, base, "127.0.0.1:0", err, sizeof err), -1,
                 "second listen refused");

    http_result r;
    fetch(base, port, EVHTTP_REQ_GET, "/metrics", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_has(r.body, "# TYPE tidewatch_grpc_calls_total counter\n");
    assert_has(r.body, "tidewatch_grpc_calls_total{service=\"ingest\",method=\"/tidewatch.v1."
                       "IngestService/Submit\",code=\"OK\"} 1\n");
    free_result(&r);

    fetch(base, port, EVHTTP_REQ_GET, "/metrics?x=1", &r);
    cr_assert_eq(r.status, 200, "query strings are ignored");
    free_result(&r);

    fetch(base, port, EVHTTP_REQ_GET, "/", &r);
    cr_assert_eq(r.status, 404);
    free_result(&r);

    fetch(base, port, EVHTTP_REQ_GET, "/metrics/extra", &r);
    cr_assert_eq(r.status, 404);
    free_result(&r);

    fetch(base, port, EVHTTP_REQ_POST, "/metrics", &r);
    cr_assert_eq(r.status, 405);
    free_result(&r);

    tw_metrics_free(m);
    event_base_free(base);
}

Test(metrics, listen_errors)
{
    struct event_base *base = event_base_new();
    tw_metrics *m = tw_metrics_new("ingest");
    char err[256] = "";
    cr_assert_eq(tw_metrics_listen(m, base, "nonsense", err, sizeof err), -1);
    cr_assert(strstr(err, "invalid listen address \"nonsense\""), "%s", err);
    cr_assert_eq(tw_metrics_listen(m, base, "127.0.0.1:0", err, sizeof err), 0, "%s", err);

    tw_metrics *m2 = tw_metrics_new("ingest");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", tw_metrics_port(m));
    cr_assert_eq(tw_metrics_listen(m2, base, addr, err, sizeof err), -1, "port in use");
    cr_assert(strstr(err, "cannot listen on"), "%s", err);
    cr_assert_eq(tw_metrics_port(m2), -1);
    tw_metrics_free(m2);
    tw_metrics_free(m);
    event_base_free(base);
}
