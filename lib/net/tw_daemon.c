#include "tw_daemon.h"

#include <event2/event.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tw_hostport.h"
#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_reflection.h"

extern const unsigned char tw_descriptor_set[];
extern const size_t tw_descriptor_set_len;


#define OFF(f) offsetof(tw_daemon_config, f)

/* Build the settings table: the common rows (with this daemon's default
 * addresses) followed by the daemon's own. */
static int build_table(tw_daemon *d)
{
    const tw_daemon_spec *sp = d->spec;
    const tw_setting common[] = {
        {.name = "listen", .env = "TIDEWATCH_LISTEN", .flag = "listen", .type = TW_SET_STRING,
         .def = sp->default_listen, .help = "gRPC listen address, host:port",
         .offset = OFF(listen), .check = tw_hostport_check},
        {.name = "database_url", .env = "TIDEWATCH_DATABASE_URL", .flag = "database-url",
         .type = TW_SET_STRING, .def = "", .secret = 1,
         .help = "libpq connection string (empty: libpq's PG* defaults)",
         .offset = OFF(database_url)},
        {.name = "log_level", .env = "TIDEWATCH_LOG_LEVEL", .flag = "log-level",
         .type = TW_SET_ENUM, .def = "info", .choices = tw_log_level_names, .reloadable = 1,
         .help = "least severe level logged", .offset = OFF(log_level)},
        {.name = "log_format", .env = "TIDEWATCH_LOG_FORMAT", .flag = "log-format",
         .type = TW_SET_ENUM, .def = "text", .choices = tw_log_format_names,
         .help = "log lines as text or JSON", .offset = OFF(log_format)},
        {.name = "metrics_listen", .env = "TIDEWATCH_METRICS_LISTEN", .flag = "metrics-listen",
         .type = TW_SET_STRING, .def = sp->default_metrics_listen,
         .help = "Prometheus /metrics address, host:port (empty: off)",
         .offset = OFF(metrics_listen)},
        {.name = "shutdown_grace", .env = "TIDEWATCH_SHUTDOWN_GRACE", .flag = "shutdown-grace",
         .type = TW_SET_DURATION_MS, .def = "10s", .min = 0, .max = 3600000,
         .help = "how long in-flight calls may run after SIGTERM",
         .offset = OFF(shutdown_grace_ms)},
        {.name = "max_message", .env = "TIDEWATCH_MAX_MESSAGE", .flag = "max-message",
         .type = TW_SET_SIZE, .def = "4MiB", .min = 1024, .max = 64 << 20,
         .help = "largest gRPC message received or sent", .offset = OFF(max_message)},
        {.name = "max_connections", .env = "TIDEWATCH_MAX_CONNECTIONS",
         .flag = "max-connections", .type = TW_SET_INT, .def = "1024", .min = 1,
         .max = 1000000,
         .help = "open gRPC connections; one more is closed at once (clients see UNAVAILABLE)",
         .offset = OFF(max_connections)},
        {.name = "idle_timeout", .env = "TIDEWATCH_IDLE_TIMEOUT", .flag = "idle-timeout",
         .type = TW_SET_DURATION_MS, .def = "5m", .min = 0, .max = 7 * 24 * 3600000LL,
         .help = "close a connection with no open call for this long (GOAWAY; 0: never)",
         .offset = OFF(idle_timeout_ms)},
        {.name = "handshake_timeout", .env = "TIDEWATCH_HANDSHAKE_TIMEOUT",
         .flag = "handshake-timeout", .type = TW_SET_DURATION_MS, .def = "10s", .min = 0,
         .max = 3600000,
         .help = "close a connection that has not sent the HTTP/2 preface and SETTINGS by then "
                 "(0: never)",
         .offset = OFF(handshake_timeout_ms)},
        {.name = "max_streams", .env = "TIDEWATCH_MAX_STREAMS", .flag = "max-streams",
         .type = TW_SET_INT, .def = "100", .min = 1, .max = 10000,
         .help = "concurrent calls per connection (SETTINGS_MAX_CONCURRENT_STREAMS)",
         .offset = OFF(max_streams)},
        {.name = "max_header_list", .env = "TIDEWATCH_MAX_HEADER_LIST",
         .flag = "max-header-list", .type = TW_SET_SIZE, .def = "64KiB", .min = 4096,
         .max = 16 << 20,
         .help = "request headers per call, name + value + 32 bytes per field; more: "
                 "RESOURCE_EXHAUSTED",
         .offset = OFF(max_header_list)},
        {.name = "max_header_fields", .env = "TIDEWATCH_MAX_HEADER_FIELDS",
         .flag = "max-header-fields", .type = TW_SET_INT, .def = "100", .min = 16,
         .max = 10000, .help = "request header fields per call; more: RESOURCE_EXHAUSTED",
         .offset = OFF(max_header_fields)},
        {.name = "max_conn_input", .env = "TIDEWATCH_MAX_CONN_INPUT", .flag = "max-conn-input",
         .type = TW_SET_SIZE, .def = "16MiB", .min = 64 << 10, .max = 1LL << 30,
         .help = "request bytes buffered per connection (its HTTP/2 window; at least "
                 "max-message + 5)",
         .offset = OFF(max_conn_input)},
        {.name = "max_call_output", .env = "TIDEWATCH_MAX_CALL_OUTPUT",
         .flag = "max-call-output", .type = TW_SET_SIZE, .def = "4MiB", .min = 64 << 10,
         .max = 1LL << 30,
         .help = "response bytes queued per call for a client that does not read",
         .offset = OFF(max_call_output)},
        {.name = "max_conn_output", .env = "TIDEWATCH_MAX_CONN_OUTPUT",
         .flag = "max-conn-output", .type = TW_SET_SIZE, .def = "16MiB", .min = 64 << 10,
         .max = 1LL << 30,
         .help = "response bytes queued per connection for a client that does not read",
         .offset = OFF(max_conn_output)},
    };
    size_t ncommon = sizeof common / sizeof common[0];
    d->ntable = ncommon + sp->nextra;
    d->table = calloc(d->ntable, sizeof *d->table);
    if (!d->table)
        return -1;
    memcpy(d->table, common, sizeof common);
    if (sp->nextra)
        memcpy(d->table + ncommon, sp->extra, sp->nextra * sizeof *sp->extra);
    return 0;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    tw_daemon *d = arg;
    if (d->stopping) {
        TW_WARN(NULL, "second %s: stopping now", sig == SIGINT ? "SIGINT" : "SIGTERM");
        event_base_loopbreak(d->base);
        return;
    }
    TW_INFO(NULL, "%s: shutting down (grace %lld ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            (long long)d->cfg->shutdown_grace_ms);
    tw_daemon_stop(d);
}

static void shutdown_done(void *arg)
{
    tw_daemon *d = arg;
    event_base_loopexit(d->base, NULL);
}

void tw_daemon_stop(tw_daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    tw_health_shutdown(d->health);
    tw_grpc_server_shutdown(d->server, (int)d->cfg->shutdown_grace_ms, shutdown_done, d);
}

static size_t connection_gauge(void *arg)
{
    return tw_grpc_server_connection_count(arg);
}

/* The server's counters as scrape-time gauges. */
#define STATS_GAUGE(fn, field)                                                                     \
    static size_t fn(void *arg)                                                                    \
    {                                                                                              \
        tw_grpc_server_stats st;                                                                   \
        tw_grpc_server_get_stats(arg, &st);                                                        \
        return (size_t)st.field;                                                                   \
    }
STATS_GAUGE(calls_gauge, calls)
STATS_GAUGE(input_gauge, input_buffered)
STATS_GAUGE(output_gauge, output_queued)
STATS_GAUGE(refused_gauge, refused_connections)
STATS_GAUGE(accept_pause_gauge, accept_pauses)
STATS_GAUGE(header_refusal_gauge, header_refusals)
STATS_GAUGE(output_refusal_gauge, output_refusals)
#undef STATS_GAUGE

static int register_gauges(tw_daemon *d)
{
    static const struct {
        const char *name, *help;
        size_t (*fn)(void *);
    } g[] = {
        {"tidewatch_grpc_calls", "Open gRPC calls.", calls_gauge},
        {"tidewatch_grpc_input_buffered_bytes",
         "Request bytes received and not yet released (bounded by max-conn-input per connection).",
         input_gauge},
        {"tidewatch_grpc_output_queued_bytes",
         "Response bytes queued for clients (bounded by max-conn-output per connection).",
         output_gauge},
        {"tidewatch_grpc_refused_connections",
         "Connections refused over max-connections since start.", refused_gauge},
        {"tidewatch_grpc_accept_pauses",
         "Times accepting paused for lack of file descriptors or memory since start.",
         accept_pause_gauge},
        {"tidewatch_grpc_header_refusals",
         "Calls refused over max-header-list or max-header-fields since start.",
         header_refusal_gauge},
        {"tidewatch_grpc_output_refusals",
         "Sends refused over max-call-output or max-conn-output since start.",
         output_refusal_gauge},
    };
    if (tw_metrics_set_connections(d->metrics, connection_gauge, d->server) != 0)
        return -1;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        if (tw_metrics_gauge_callback(d->metrics, g[i].name, g[i].help, g[i].fn, d->server) != 0)
            return -1;
    return 0;
}

/* Warn when the descriptor limit cannot hold max-connections: accepting
 * then pauses at the limit instead of refusing politely. */
static void check_fd_limit(const tw_daemon *d)
{
    struct rlimit rl;
    const rlim_t reserve = 64; /* listeners, database, metrics, logs */
    rlim_t want = (rlim_t)d->cfg->max_connections + reserve;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        TW_WARN(NULL, "file descriptor limit %llu is below max-connections (%lld) + %llu: "
                "accepting pauses at the limit; raise it (ulimit -n) or lower max-connections",
                (unsigned long long)rl.rlim_cur, (long long)d->cfg->max_connections,
                (unsigned long long)reserve);
}

int tw_daemon_init(tw_daemon *d, const tw_daemon_spec *spec, const char *const *info_paths,
                   int argc, char **argv)
{
    memset(d, 0, sizeof *d);
    d->spec = spec;
    d->cfg = spec->cfg ? spec->cfg : &d->own_cfg;
    char err[512];
    char prog[64];
    snprintf(prog, sizeof prog, "tidewatch-%s", spec->name);
    tw_settings_about about = {.program = prog, .summary = spec->summary};

    if (build_table(d) != 0) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto fail;
    }
    int rv = tw_settings_load(d->table, d->ntable, d->cfg, argc, argv, &about, err, sizeof err);
    if (rv == 1) {
        tw_daemon_free(d);
        return 1;
    }
    if (rv != 0) {
        fprintf(stderr, "%s: %s\n%s: try --help\n", prog, err, prog);
        goto fail;
    }
    tw_log_init(spec->name, (tw_log_level)d->cfg->log_level, (tw_log_format)d->cfg->log_format);
    char *dump = tw_settings_dump(d->table, d->ntable, d->cfg);
    TW_DEBUG(NULL, "settings: %s", dump ? dump : "?");
    free(dump);

    signal(SIGPIPE, SIG_IGN);
    d->base = event_base_new();
    if (!d->base)
        goto oom;
    const tw_daemon_config *c = d->cfg;
    tw_grpc_server_config scfg = {
        .max_recv_message = (size_t)c->max_message,
        .max_send_message = (size_t)c->max_message,
        .max_concurrent_streams = (uint32_t)c->max_streams,
        .max_connections = (size_t)c->max_connections,
        .idle_timeout_ms = c->idle_timeout_ms > 0 ? c->idle_timeout_ms : -1,
        .handshake_timeout_ms = c->handshake_timeout_ms > 0 ? c->handshake_timeout_ms : -1,
        .max_header_list = (size_t)c->max_header_list,
        .max_header_fields = (size_t)c->max_header_fields,
        .max_conn_input = (size_t)c->max_conn_input,
        .max_call_output = (size_t)c->max_call_output,
        .max_conn_output = (size_t)c->max_conn_output,
        .log_name = spec->name,
    };
    d->server = tw_grpc_server_new(d->base, &scfg);
    d->health = tw_health_new();
    d->reflection = tw_reflection_new(tw_descriptor_set, tw_descriptor_set_len);
    d->metrics = tw_metrics_new(spec->name);
    if (!d->server || !d->health || !d->reflection || !d->metrics)
        goto oom;
    d->info.service = spec->name;
    d->info.started = time(NULL);
    if (tw_health_register(d->health, d->server) != 0 ||
        tw_reflection_register(d->reflection, d->server) != 0)
        goto oom;
    for (size_t i = 0; info_paths && info_paths[i]; i++)
        if (tw_info_register(&d->info, d->server, info_paths[i]) != 0)
            goto oom;
    tw_grpc_server_set_observer(d->server, tw_metrics_observe_call, d->metrics);
    if (register_gauges(d) != 0)
        goto oom;

    d->sigterm = evsignal_new(d->base, SIGTERM, signal_cb, d);
    d->sigint = evsignal_new(d->base, SIGINT, signal_cb, d);
    if (!d->sigterm || !d->sigint || evsignal_add(d->sigterm, NULL) != 0 ||
        evsignal_add(d->sigint, NULL) != 0)
        goto oom;
    return 0;
oom:
    fprintf(stderr, "%s: could not initialise (out of memory?)\n", prog);
fail:
    tw_daemon_free(d);
    return -1;
}

int tw_daemon_run(tw_daemon *d)
{
    char err[512];
    check_fd_limit(d);
    if (tw_grpc_server_listen(d->server, d->cfg->listen, err, sizeof err) != 0) {
        TW_ERROR(NULL, "gRPC: %s", err);
        return 1;
    }
    if (d->cfg->metrics_listen && d->cfg->metrics_listen[0] &&
        tw_metrics_listen(d->metrics, d->base, d->cfg->metrics_listen, err, sizeof err) != 0) {
        TW_ERROR(NULL, "metrics: %s", err);
        return 1;
    }
    TW_INFO(NULL, "tidewatch-%s %s serving gRPC on %s (port %d)%s%s", d->spec->name, TW_VERSION,
            d->cfg->listen, tw_grpc_server_port(d->server),
            d->cfg->metrics_listen && d->cfg->metrics_listen[0] ? ", metrics on " : "",
            d->cfg->metrics_listen ? d->cfg->metrics_listen : "");
    if (event_base_dispatch(d->base) < 0) {
        TW_ERROR(NULL, "event loop failed");
        return 1;
    }
    /* The loop is done: a late SIGTERM during teardown must not turn a
     * clean exit into death by signal. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    TW_INFO(NULL, "stopped");
    return 0;
}

void tw_daemon_free(tw_daemon *d)
{
    tw_grpc_server_free(d->server);
    tw_health_free(d->health);
    tw_reflection_free(d->reflection);
    tw_metrics_free(d->metrics);
    if (d->sigterm)
        event_free(d->sigterm);
    if (d->sigint)
        event_free(d->sigint);
    if (d->base)
        event_base_free(d->base);
    if (d->table)
        tw_settings_free(d->table, d->ntable, d->cfg);
    free(d->table);
    tw_log_shutdown();
    libevent_global_shutdown();
    memset(d, 0, sizeof *d);
}

void tw_daemon_db_state(tw_daemon *d, const char *service, int *current, int up)
{
    if (up == *current)
        return;
    *current = up;
    if (tw_health_set(d->health, service, up ? TW_HEALTH_SERVING : TW_HEALTH_NOT_SERVING) != 0)
        TW_ERROR(NULL, "could not update health");
    TW_LOG(up ? TW_LOG_INFO : TW_LOG_WARN, NULL, "database %s", up ? "connected" : "unavailable");
}
