#include "tw_metrics.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tw_hostport.h"

#define N_CODES 17 /* gRPC status codes 0..16 */
#define N_FINITE_BUCKETS 14

static const double bucket_bounds[N_FINITE_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const char *const bucket_le[N_FINITE_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

#define CALLS_NAME "tidewatch_grpc_calls_total"
#define DURATION_NAME "tidewatch_grpc_call_duration_seconds"
#define CONNECTIONS_NAME "tidewatch_grpc_connections"

typedef struct method_stats {
    char *path;
    uint64_t calls[N_CODES];
    uint64_t buckets[N_FINITE_BUCKETS]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
} method_stats;

typedef enum { FAM_COUNTER, FAM_GAUGE, FAM_GAUGE_FN } family_kind;

typedef struct series {
    char *label_value; /* NULL when the family has no label */
    double value;
} series;

typedef struct family {
    char *name;
    char *help;
    char *label_name; /* NULL: no extra label */
    family_kind kind;
    series *series;
    size_t nseries;
    size_t (*fn)(void *arg); /* FAM_GAUGE_FN */
    void *arg;
} family;

struct tw_metrics {
    char *service;
    method_stats *methods;
    size_t nmethods;
    family *families;
    size_t nfamilies;
    struct evhttp *http;
    int port;
};

tw_metrics *tw_metrics_new(const char *service)
{
    tw_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->service = strdup(service ? service : "");
    if (!m->service) {
        free(m);
        return NULL;
    }
    m->port = -1;
    return m;
}

static void family_clear(family *f)
{
    for (size_t i = 0; i < f->nseries; i++)
        free(f->series[i].label_value);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f->label_name);
}

void tw_metrics_free(tw_metrics *m)
{
    if (!m)
        return;
    if (m->http)
        evhttp_free(m->http);
    for (size_t i = 0; i < m->nmethods; i++)
        free(m->methods[i].path);
    free(m->methods);
    for (size_t i = 0; i < m->nfamilies; i++)
        family_clear(&m->families[i]);
    free(m->families);
    free(m->service);
    free(m);
}

/* ---- gRPC calls -------------------------------------------------------- */

static method_stats *method_find_or_add(tw_metrics *m, const char *path)
{
    for (size_t i = 0; i < m->nmethods; i++) {
        if (strcmp(m->methods[i].path, path) == 0)
            return &m->methods[i];
    }
    if (m->nmethods >= TW_METRICS_MAX_METHODS && strcmp(path, "other") != 0)
        return method_find_or_add(m, "other");
    method_stats *grown = realloc(m->methods, (m->nmethods + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    m->methods = grown;
    method_stats *ms = &m->methods[m->nmethods];
    memset(ms, 0, sizeof *ms);
    ms->path = strdup(path);
    if (!ms->path)
        return NULL;
    m->nmethods++;
    return ms;
}

void tw_metrics_observe_call(void *arg, const char *path, int grpc_status, double seconds)
{
    tw_metrics *m = arg;
    method_stats *ms = method_find_or_add(m, path ? path : "");
    if (!ms)
        return;
    if (grpc_status < 0 || grpc_status >= N_CODES)
        grpc_status = TW_GRPC_UNKNOWN;
    ms->calls[grpc_status]++;
    if (!(seconds >= 0)) /* negative or NaN */
        seconds = 0;
    for (int i = 0; i < N_FINITE_BUCKETS; i++) {
        if (seconds <= bucket_bounds[i]) {
            ms->buckets[i]++;
            break;
        }
    }
    ms->count++;
    ms->sum += seconds;
}

/* ---- Generic families -------------------------------------------------- */

static int valid_name(const char *s, int colon_ok)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (colon_ok && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static int reserved_name(const char *name)
{
    return strcmp(name, CALLS_NAME) == 0 || strncmp(name, DURATION_NAME, strlen(DURATION_NAME)) == 0;
}

static int label_name_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Find family `name` or create it with the given kind/label. Returns NULL
 * on mismatch, invalid names or ENOMEM. */
static family *family_get(tw_metrics *m, const char *name, const char *help, family_kind kind,
                          const char *label_name)
{
    if (!valid_name(name, 1) || (label_name && (!valid_name(label_name, 0) ||
                                                strcmp(label_name, "service") == 0)))
        return NULL;
    for (size_t i = 0; i < m->nfamilies; i++) {
        family *f = &m->families[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (f->kind != kind || !label_name_eq(f->label_name, label_name))
            return NULL;
        return f;
    }
    if (reserved_name(name))
        return NULL;
    family *grown = realloc(m->families, (m->nfamilies + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    m->families = grown;
    family *f = &m->families[m->nfamilies];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->label_name = label_name ? strdup(label_name) : NULL;
    if (!f->name || !f->help || (label_name && !f->label_name)) {
        family_clear(f);
        return NULL;
    }
    m->nfamilies++;
    return f;
}

static series *series_get(family *f, const char *label_value)
{
    if (f->label_name && !label_value)
        return NULL;
    if (!f->label_name)
        label_value = NULL;
    for (size_t i = 0; i < f->nseries; i++) {
        const char *v = f->series[i].label_value;
        if ((!v && !label_value) || (v && label_value && strcmp(v, label_value) == 0))
            return &f->series[i];
    }
    series *grown = realloc(f->series, (f->nseries + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    f->series = grown;
    series *s = &f->series[f->nseries];
    s->value = 0;
    s->label_value = NULL;
    if (label_value && !(s->label_value = strdup(label_value)))
        return NULL;
    f->nseries++;
    return s;
}

static int update(tw_metrics *m, family_kind kind, const char *name, const char *help,
                  const char *label_name, const char *label_value, double value, int add)
{
    if (isnan(value) || (kind == FAM_COUNTER && value < 0))
        return -1;
    family *f = family_get(m, name, help, kind, label_name);
    if (!f)
        return -1;
    series *s = series_get(f, label_value);
    if (!s)
        return -1;
    s->value = add ? s->value + value : value;
    return 0;
}

int tw_metrics_counter_add(tw_metrics *m, const char *name, const char *help,
                           const char *label_name, const char *label_value, double value)
{
    return update(m, FAM_COUNTER, name, help, label_name, label_value, value, 1);
}

int tw_metrics_gauge_set(tw_metrics *m, const char *name, const char *help,
                         const char *label_name, const char *label_value, double value)
{
    return update(m, FAM_GAUGE, name, help, label_name, label_value, value, 0);
}

int tw_metrics_gauge_add(tw_metrics *m, const char *name, const char *help,
                         const char *label_name, const char *label_value, double delta)
{
    return update(m, FAM_GAUGE, name, help, label_name, label_value, delta, 1);
}

int tw_metrics_gauge_callback(tw_metrics *m, const char *name, const char *help,
                              size_t (*fn)(void *arg), void *arg)
{
    if (!fn || !valid_name(name, 1))
        return -1;
    for (size_t i = 0; i < m->nfamilies; i++) {
        if (strcmp(m->families[i].name, name) == 0)
            return -1;
    }
    family *f = family_get(m, name, help, FAM_GAUGE_FN, NULL);
    if (!f)
        return -1;
    f->fn = fn;
    f->arg = arg;
    return 0;
}

int tw_metrics_set_connections(tw_metrics *m, size_t (*fn)(void *arg), void *arg)
{
    return tw_metrics_gauge_callback(m, CONNECTIONS_NAME, "Open gRPC (HTTP/2) connections.", fn,
                                     arg);
}

/* ---- Rendering --------------------------------------------------------- */

/* Append s escaped for a label value (\\, \", \n) or, with quotes == 0, for
 * HELP text (\\, \n). */
static int add_escaped(struct evbuffer *out, const char *s, int quotes)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (quotes && *p == '"')
            esc = "\\\"";
        else if (*p != '\0')
            continue;
        if (p > run && evbuffer_add(out, run, (size_t)(p - run)) != 0)
            return -1;
        if (!esc)
            return 0;
        if (evbuffer_add(out, esc, strlen(esc)) != 0)
            return -1;
        run = p + 1;
    }
}

static void format_double(double v, char buf[40])
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
    } else if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, 40, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, 40, "%.17g", v);
    }
}

static int add_header(struct evbuffer *out, const char *name, const char *help, const char *type)
{
    if (evbuffer_add_printf(out, "# HELP %s ", name) < 0 || add_escaped(out, help, 0) != 0 ||
        evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type) < 0)
        return -1;
    return 0;
}

/* name{service="..." [,k="v"]...} with up to two extra labels. */
static int add_series(struct evbuffer *out, const tw_metrics *m, const char *name,
                      const char *k1, const char *v1, const char *k2, const char *v2)
{
    if (evbuffer_add_printf(out, "%s{service=\"", name) < 0 || add_escaped(out, m->service, 1))
        return -1;
    if (k1 && (evbuffer_add_printf(out, "\",%s=\"", k1) < 0 || add_escaped(out, v1, 1)))
        return -1;
    if (k2 && (evbuffer_add_printf(out, "\",%s=\"", k2) < 0 || add_escaped(out, v2, 1)))
        return -1;
    return evbuffer_add(out, "\"} ", 3);
}

static int render_grpc(tw_metrics *m, struct evbuffer *out)
{
    if (add_header(out, CALLS_NAME, "gRPC calls finished, by method and status code.",
                   "counter") != 0)
        return -1;
    for (size_t i = 0; i < m->nmethods; i++) {
        const method_stats *ms = &m->methods[i];
        for (int c = 0; c < N_CODES; c++) {
            if (!ms->calls[c])
                continue;
            if (add_series(out, m, CALLS_NAME, "method", ms->path, "code",
                           tw_grpc_status_name(c)) != 0 ||
                evbuffer_add_printf(out, "%" PRIu64 "\n", ms->calls[c]) < 0)
                return -1;
        }
    }
    if (add_header(out, DURATION_NAME, "gRPC call duration in seconds, by method.",
                   "histogram") != 0)
        return -1;
    char num[40];
    for (size_t i = 0; i < m->nmethods; i++) {
        const method_stats *ms = &m->methods[i];
        uint64_t cumulative = 0;
        for (int b = 0; b <= N_FINITE_BUCKETS; b++) {
            cumulative = b < N_FINITE_BUCKETS ? cumulative + ms->buckets[b] : ms->count;
            if (add_series(out, m, DURATION_NAME "_bucket", "method", ms->path, "le",
                           b < N_FINITE_BUCKETS ? bucket_le[b] : "+Inf") != 0 ||
                evbuffer_add_printf(out, "%" PRIu64 "\n", cumulative) < 0)
                return -1;
        }
        format_double(ms->sum, num);
        if (add_series(out, m, DURATION_NAME "_sum", "method", ms->path, NULL, NULL) != 0 ||
            evbuffer_add_printf(out, "%s\n", num) < 0 ||
            add_series(out, m, DURATION_NAME "_count", "method", ms->path, NULL, NULL) != 0 ||
            evbuffer_add_printf(out, "%" PRIu64 "\n", ms->count) < 0)
            return -1;
    }
    return 0;
}

static int render_family(tw_metrics *m, const family *f, struct evbuffer *out)
{
    if (add_header(out, f->name, f->help, f->kind == FAM_COUNTER ? "counter" : "gauge") != 0)
        return -1;
    char num[40];
    if (f->kind == FAM_GAUGE_FN) {
        if (add_series(out, m, f->name, NULL, NULL, NULL, NULL) != 0 ||
            evbuffer_add_printf(out, "%zu\n", f->fn(f->arg)) < 0)
            return -1;
        return 0;
    }
    for (size_t i = 0; i < f->nseries; i++) {
        format_double(f->series[i].value, num);
        if (add_series(out, m, f->name, f->label_name, f->series[i].label_value, NULL, NULL) != 0 ||
            evbuffer_add_printf(out, "%s\n", num) < 0)
            return -1;
    }
    return 0;
}

int tw_metrics_render(tw_metrics *m, struct evbuffer *out)
{
    if (render_grpc(m, out) != 0)
        return -1;
    for (size_t i = 0; i < m->nfamilies; i++) {
        if (render_family(m, &m->families[i], out) != 0)
            return -1;
    }
    return 0;
}

char *tw_metrics_render_string(tw_metrics *m, size_t *len)
{
    struct evbuffer *b = evbuffer_new();
    char *s = NULL;
    if (!b)
        return NULL;
    if (tw_metrics_render(m, b) != 0)
        goto out;
    size_t n = evbuffer_get_length(b);
    s = malloc(n + 1);
    if (!s)
        goto out;
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    if (len)
        *len = n;
out:
    evbuffer_free(b);
    return s;
}

/* ---- HTTP -------------------------------------------------------------- */

static void http_cb(struct evhttp_request *req, void *arg)
{
    tw_metrics *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || strcmp(path, "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, NULL);
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(headers, "Allow", "GET, HEAD");
        evhttp_send_error(req, HTTP_BADMETHOD, "Method Not Allowed");
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body || tw_metrics_render(m, body) != 0) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        goto out;
    }
    evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
out:
    if (body)
        evbuffer_free(body);
}

int tw_metrics_listen(tw_metrics *m, struct event_base *base, const char *hostport, char *err,
                      size_t errlen)
{
    char host[256];
    int port;
    if (m->http) {
        snprintf(err, errlen, "metrics: already listening on port %d", m->port);
        return -1;
    }
    if (tw_hostport_parse(hostport, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "metrics: invalid listen address \"%s\": expected host:port",
                 hostport ? hostport : "");
        return -1;
    }
    struct evhttp *http = evhttp_new(base);
    if (!http) {
        snprintf(err, errlen, "metrics: out of memory");
        return -1;
    }
    evhttp_set_timeout(http, 30);
    evhttp_set_max_headers_size(http, 16384);
    evhttp_set_max_body_size(http, 4096);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(http, http_cb, m);
    struct evhttp_bound_socket *sock =
        evhttp_bind_socket_with_handle(http, host[0] ? host : "0.0.0.0", (ev_uint16_t)port);
    if (!sock) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(err, errlen, "metrics: cannot listen on %s: %s", hostport,
                 evutil_socket_error_to_string(e));
        evhttp_free(http);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(sock);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, errlen, "metrics: getsockname: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        evhttp_free(http);
        return -1;
    }
    if (ss.ss_family == AF_INET6)
        m->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        m->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    m->http = http;
    return 0;
}

int tw_metrics_port(const tw_metrics *m)
{
    return m->http ? m->port : -1;
}
