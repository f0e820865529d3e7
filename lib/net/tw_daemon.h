/* tw_daemon: what every Tidewatch daemon shares. Settings (one table:
 * listen address, database URL, logging, metrics, shutdown grace), the
 * event loop, the gRPC server with health, reflection and server info, the
 * metrics endpoint, and SIGTERM/SIGINT handling: stop accepting, mark
 * health NOT_SERVING, let in-flight calls finish within the grace period,
 * GOAWAY, exit 0. A daemon's main.c declares a tw_daemon_spec, registers its
 * methods between tw_daemon_init and tw_daemon_run, and frees. */
#ifndef TW_DAEMON_H
#define TW_DAEMON_H

#include <stdint.h>
#include <time.h>

#include "tw_grpc_server.h"
#include "tw_health.h"
#include "tw_info.h"
#include "tw_settings.h"

struct event_base;
struct event;
typedef struct tw_reflection tw_reflection;
typedef struct tw_metrics tw_metrics;

/* Settings every daemon has. A daemon with more settings puts this struct
 * FIRST in its own config struct and passes extra rows whose offsets are
 * relative to that struct. */
typedef struct tw_daemon_config {
    char *listen;
    char *database_url;
    int log_level;  /* tw_log_level */
    int log_format; /* tw_log_format */
    char *metrics_listen;
    int64_t shutdown_grace_ms;
    int64_t max_message;
    /* Client limits (tw_grpc_server_config; README "Limits"). */
    int64_t max_connections;
    int64_t idle_timeout_ms;      /* 0: never */
    int64_t handshake_timeout_ms; /* 0: never */
    int64_t max_streams;
    int64_t max_header_list;
    int64_t max_header_fields;
    int64_t max_conn_input;
    int64_t max_call_output;
    int64_t max_conn_output;
} tw_daemon_config;

typedef struct tw_daemon_spec {
    const char *name;    /* "ingest": log name, metrics label, ServerInfo.service */
    const char *summary; /* one line for --help */
    const char *default_listen;
    const char *default_metrics_listen;
    const tw_setting *extra; /* the daemon's own settings, or NULL */
    size_t nextra;
    void *cfg; /* struct starting with tw_daemon_config, or NULL */
} tw_daemon_spec;

typedef struct tw_daemon {
    const tw_daemon_spec *spec;
    tw_daemon_config *cfg; /* spec->cfg or &own_cfg */
    tw_daemon_config own_cfg;
    tw_setting *table;
    size_t ntable;
    struct event_base *base;
    tw_grpc_server *server;
    tw_health *health;
    tw_reflection *reflection;
    tw_metrics *metrics;
    struct event *sigterm, *sigint;
    tw_info info;
    int stopping;
} tw_daemon;

/* Parse settings (defaults, environment, flags), set up logging, the loop,
 * the gRPC server with health, reflection and GetServerInfo at each path
 * in `info_paths` (NULL-terminated, may be NULL).
 * Returns 0 when ready, 1 when --help/--version was printed (exit 0), -1 on
 * error (already reported on stderr; exit 2). On non-zero the daemon is
 * already freed. */
int tw_daemon_init(tw_daemon *d, const tw_daemon_spec *spec, const char *const *info_paths,
                   int argc, char **argv) __attribute__((warn_unused_result));

/* Listen (gRPC and metrics), run the loop until a signal ends it, and
 * return the process exit code (0 after a clean shutdown). */
int tw_daemon_run(tw_daemon *d) __attribute__((warn_unused_result));

/* Free everything (safe after a failed or completed run). */
void tw_daemon_free(tw_daemon *d);

/* A consumer daemon's database connection went up (1) or down (0): when
 * that differs from *current, record it, set `service`'s health to
 * SERVING or NOT_SERVING accordingly and log it. For tw_pg's on_state. */
void tw_daemon_db_state(tw_daemon *d, const char *service, int *current, int up);

/* Begin a graceful shutdown, as SIGTERM does. */
void tw_daemon_stop(tw_daemon *d);

#endif
