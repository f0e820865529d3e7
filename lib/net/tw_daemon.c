#include "tw_daemon.h"

#include <event2/event.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    tw_grpc_server_config scfg = {.max_recv_message = (size_t)d->cfg->max_message,
                                  .max_send_message = (size_t)d->cfg->max_message,
                                  .log_name = spec->name};
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
    if (tw_metrics_set_connections(d->metrics, connection_gauge, d->server) != 0)
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
