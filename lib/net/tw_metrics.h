/* tw_metrics: a Prometheus metrics registry and its HTTP endpoint.
 *
 * One registry per process (passed around, no globals) holds:
 *   - per gRPC method and status code, a call counter
 *       tidewatch_grpc_calls_total{service,method,code}
 *   - per gRPC method, a latency histogram
 *       tidewatch_grpc_call_duration_seconds{service,method}
 *     with buckets 0.5ms .. 10s and +Inf
 *   - gauges read through callbacks when scraped, such as
 *       tidewatch_grpc_connections{service}
 *   - generic counters and gauges with at most one extra label.
 * Every series carries service="<service>".
 *
 * tw_metrics_render writes the text exposition format 0.0.4;
 * tw_metrics_listen serves it at GET /metrics over HTTP/1.1 (evhttp) on the
 * caller's event loop. Everything runs on that loop; the registry is not
 * thread-safe. */
#ifndef TW_METRICS_H
#define TW_METRICS_H

#include <stddef.h>

#include "tw_grpc_wire.h"

struct event_base;
struct evbuffer;

typedef struct tw_metrics tw_metrics;

/* Distinct gRPC paths tracked; calls to further paths (scanners, typos)
 * are counted under method="other" so label cardinality stays bounded. */
#define TW_METRICS_MAX_METHODS 64

/* Create a registry whose series carry service="<service>" (copied).
 * Returns NULL on allocation failure. */
tw_metrics *tw_metrics_new(const char *service) TW_WUR;

/* Close the HTTP listener if any and free everything. Must run before the
 * event_base passed to tw_metrics_listen is freed. NULL is a no-op. */
void tw_metrics_free(tw_metrics *m);

/* Record one finished call: bump the counter for (path, status name) and
 * observe `seconds` in the path's histogram. The signature matches
 * tw_grpc_observer_fn, so pass it with arg = the registry:
 *   tw_grpc_server_set_observer(srv, tw_metrics_observe_call, m);
 * Status codes outside 0..16 count as UNKNOWN; negative or NaN durations
 * count as 0. On allocation failure the observation is dropped. */
void tw_metrics_observe_call(void *m, const char *path, int grpc_status, double seconds);

/* Register a gauge whose value is fn(arg) at each scrape, exposed as
 * `name`{service}. Returns 0, or -1 on an invalid or already used name or
 * ENOMEM. */
int tw_metrics_gauge_callback(tw_metrics *m, const char *name, const char *help,
                              size_t (*fn)(void *arg), void *arg) TW_WUR;

/* tidewatch_grpc_connections, read from fn(arg) (e.g. a wrapper around
 * tw_grpc_server_connection_count). Same contract as gauge_callback. */
int tw_metrics_set_connections(tw_metrics *m, size_t (*fn)(void *arg), void *arg) TW_WUR;

/* Generic metrics. The family `name` is created on first use with `help`
 * and an optional label name (label_name NULL: no extra label); later calls
 * must use the same kind and label name. Each distinct label_value is a
 * series (keep them few). Names follow [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]*; values are escaped on output. Counters only go up:
 * counter_add rejects negative or NaN values. Return 0, or -1 (invalid
 * name, kind or label mismatch, bad value, ENOMEM) leaving the value as it
 * was. */
int tw_metrics_counter_add(tw_metrics *m, const char *name, const char *help,
                           const char *label_name, const char *label_value, double value) TW_WUR;
int tw_metrics_gauge_set(tw_metrics *m, const char *name, const char *help,
                         const char *label_name, const char *label_value, double value) TW_WUR;
int tw_metrics_gauge_add(tw_metrics *m, const char *name, const char *help,
                         const char *label_name, const char *label_value, double delta) TW_WUR;

/* Append the exposition text to `out`. Calls the gauge callbacks. Returns
 * 0, or -1 on ENOMEM (out may hold a partial rendering). */
int tw_metrics_render(tw_metrics *m, struct evbuffer *out) TW_WUR;

/* The same as a malloc'd NUL-terminated string (length in *len if
 * non-NULL), or NULL on ENOMEM. */
char *tw_metrics_render_string(tw_metrics *m, size_t *len) TW_WUR;

/* Serve GET /metrics on "host:port" (port 0 picks a free port; an empty
 * host, ":9100", means all IPv4 interfaces) with evhttp on `base`. Other
 * paths get 404, other methods on /metrics 405. Returns 0, or -1 with a
 * reason in err (bad address, bind failure, already listening). */
int tw_metrics_listen(tw_metrics *m, struct event_base *base, const char *hostport, char *err,
                      size_t errlen) TW_WUR;

/* The bound port after a successful listen, else -1. */
int tw_metrics_port(const tw_metrics *m);

#endif
