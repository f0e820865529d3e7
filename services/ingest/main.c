/* tidewatch-ingest: accepts purchase, shipment and seizure records into the
 * event log. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ingest.h"
#include "tw_horizon.h"
#include "tw_log.h"
#include "tw_places.h"

#ifndef TW_DATA_DIR
#define TW_DATA_DIR "deploy/data"
#endif

#define OFF(f) offsetof(ingest_config, f)

static const tw_setting extra[] = {
    {.name = "data_dir", .env = "TIDEWATCH_DATA_DIR", .flag = "data-dir", .type = TW_SET_STRING,
     .def = TW_DATA_DIR, .help = "directory with channel-hubs.csv and gazetteer.csv",
     .offset = OFF(data_dir)},
    {.name = "batch_max", .env = "TIDEWATCH_INGEST_BATCH", .flag = "batch", .type = TW_SET_INT,
     .def = "1000", .min = 1, .max = 20000, .help = "most records per group-commit transaction",
     .offset = OFF(batch_max)},
    {.name = "batch_bytes", .env = "TIDEWATCH_INGEST_BATCH_BYTES", .flag = "batch-bytes",
     .type = TW_SET_SIZE, .def = "4MiB", .min = 64 << 10, .max = 256 << 20,
     .help = "most record bytes per group-commit transaction (one record always fits)",
     .offset = OFF(batch_bytes)},
    {.name = "flush_delay", .env = "TIDEWATCH_INGEST_FLUSH_DELAY", .flag = "flush-delay",
     .type = TW_SET_DURATION_MS, .def = "2ms", .min = 0, .max = 1000,
     .help = "how long a batch waits for company before it is written",
     .offset = OFF(flush_delay_ms)},
    {.name = "pipeline", .env = "TIDEWATCH_INGEST_PIPELINE", .flag = "pipeline",
     .type = TW_SET_INT, .def = "2", .min = 1, .max = 16,
     .help = "group-commit transactions in flight at once", .offset = OFF(pipeline)},
    {.name = "stream_window", .env = "TIDEWATCH_INGEST_STREAM_WINDOW", .flag = "stream-window",
     .type = TW_SET_INT, .def = "4000", .min = 1, .max = 1000000,
     .help = "records one SubmitStream may have awaiting commit before it is paused",
     .offset = OFF(stream_window)},
    {.name = "stream_window_bytes", .env = "TIDEWATCH_INGEST_STREAM_WINDOW_BYTES",
     .flag = "stream-window-bytes", .type = TW_SET_SIZE, .def = "8MiB", .min = 64 << 10,
     .max = 1LL << 30,
     .help = "record bytes one SubmitStream may have awaiting commit before it is paused",
     .offset = OFF(stream_window_bytes)},
    {.name = "connections", .env = "TIDEWATCH_INGEST_CONNECTIONS", .flag = "connections",
     .type = TW_SET_INT, .def = "2", .min = 1, .max = INGEST_MAX_CONNECTIONS,
     .help = "database connections the group commits are spread over",
     .offset = OFF(connections)},
    {.name = "record_max", .env = "TIDEWATCH_INGEST_RECORD_MAX", .flag = "record-max",
     .type = TW_SET_SIZE, .def = "64KiB", .min = 1 << 10, .max = 4 << 20,
     .help = "largest record accepted, in encoded bytes (larger ones are rejected)",
     .offset = OFF(record_max)},
    {.name = "decode_memory", .env = "TIDEWATCH_INGEST_DECODE_MEMORY", .flag = "decode-memory",
     .type = TW_SET_SIZE, .def = "8MiB", .min = 256 << 10, .max = 1LL << 30,
     .help = "most memory decoding one record may take (a record needing more is rejected)",
     .offset = OFF(decode_memory)},
    {.name = "slice", .env = "TIDEWATCH_INGEST_SLICE", .flag = "slice", .type = TW_SET_SIZE,
     .def = "256KiB", .min = 4 << 10, .max = 64 << 20,
     .help = "request bytes a Submit processes per event-loop turn before other calls run",
     .offset = OFF(slice_bytes)},
    {.name = "log_rejections", .env = "TIDEWATCH_INGEST_LOG_REJECTIONS",
     .flag = "log-rejections", .type = TW_SET_INT, .def = "20", .min = 1, .max = 1000000,
     .help = "lines per second at most about rejected records (bursts of 10 s worth; the "
             "next line counts the rest)",
     .offset = OFF(log_rejections)},
    {.name = "response_issues", .env = "TIDEWATCH_INGEST_RESPONSE_ISSUES",
     .flag = "response-issues", .type = TW_SET_INT, .def = "8", .min = 1, .max = 100,
     .help = "errors, and warnings, listed per record in answers (then one \"truncated\")",
     .offset = OFF(response_issues)},
    {.name = "statement_timeout", .env = "TIDEWATCH_INGEST_STATEMENT_TIMEOUT",
     .flag = "statement-timeout", .type = TW_SET_DURATION_MS, .def = "60s", .min = 0,
     .max = 3600 * 1000,
     .help = "longest a group commit's statement may run before PostgreSQL cancels it (its "
             "records are answered UNAVAILABLE and the client retries); 0: the server's setting",
     .offset = OFF(statement_timeout_ms)},
    {.name = "idle_in_transaction_timeout", .env = "TIDEWATCH_INGEST_IDLE_IN_TRANSACTION_TIMEOUT",
     .flag = "idle-in-transaction-timeout", .type = TW_SET_DURATION_MS, .def = "60s", .min = 0,
     .max = 3600 * 1000,
     .help = "PostgreSQL ends a daemon session idle inside a transaction this long (an open "
             "transaction holds back every consumer of the log); 0: the server's setting",
     .offset = OFF(idle_in_xact_timeout_ms)},
    {.name = "horizon_interval", .env = "TIDEWATCH_HORIZON_INTERVAL", .flag = "horizon-interval",
     .type = TW_SET_DURATION_MS, .def = "5s", .min = 100, .max = 3600 * 1000,
     .help = "how often the log's horizon and the consumers' lag are read for /metrics",
     .offset = OFF(horizon_interval_ms)},
};

static ingest_config cfg;

static const tw_daemon_spec spec = {
    .name = "ingest",
    .summary = "accepts purchase, shipment and seizure records into the event log",
    .default_listen = "127.0.0.1:50051",
    .default_metrics_listen = "127.0.0.1:9101",
    .extra = extra,
    .nextra = sizeof extra / sizeof extra[0],
    .cfg = &cfg,
};

/* SERVING while at least one connection is up. */
static void on_db_state(void *arg, int up)
{
    (void)up;
    ingest_service *svc = arg;
    int any = 0;
    for (size_t i = 0; i < svc->npg; i++)
        any |= svc->pg[i] && tw_pg_is_up(svc->pg[i]);
    if (any == svc->db_up)
        return;
    svc->db_up = any;
    if (tw_health_set(svc->daemon->health, "tidewatch.v1.IngestService",
                      any ? TW_HEALTH_SERVING : TW_HEALTH_NOT_SERVING) != 0)
        TW_ERROR(NULL, "could not update health");
    TW_LOG(any ? TW_LOG_INFO : TW_LOG_WARN, NULL, "database %s", any ? "connected" : "unavailable");
}

int main(int argc, char **argv)
{
    static const char *const info_paths[] = {"/tidewatch.v1.IngestService/GetServerInfo", NULL};
    tw_daemon d;
    int rv = tw_daemon_init(&d, &spec, info_paths, argc, argv);
    if (rv != 0)
        return rv < 0 ? 2 : 0;

    ingest_service svc = {.daemon = &d, .cfg = &cfg};
    tw_horizon *horizon = NULL; /* the log's horizon and consumer lag in /metrics */
    char err[512], hubs[1024], gaz[1024];
    int status = 1;
    if (ingest_config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "tidewatch-ingest: %s\n", err);
        status = 2;
        goto out;
    }
    snprintf(hubs, sizeof hubs, "%s/channel-hubs.csv", cfg.data_dir);
    snprintf(gaz, sizeof gaz, "%s/gazetteer.csv", cfg.data_dir);
    svc.places = tw_places_load(hubs, gaz, err, sizeof err);
    if (!svc.places) {
        TW_ERROR(NULL, "place tables: %s", err);
        goto out;
    }
    for (svc.npg = 0; svc.npg < (size_t)cfg.connections; svc.npg++) {
        char name[32];
        snprintf(name, sizeof name, "ingest-%zu", svc.npg + 1);
        tw_pg_opts opts = {.name = name, .on_state = on_db_state, .state_arg = &svc,
                           .statement_timeout_ms = (int)cfg.statement_timeout_ms,
                           .idle_in_xact_timeout_ms = cfg.idle_in_xact_timeout_ms
                                                          ? (int)cfg.idle_in_xact_timeout_ms
                                                          : -1};
        svc.pg[svc.npg] = tw_pg_new(d.base, cfg.common.database_url, &opts, err, sizeof err);
        if (!svc.pg[svc.npg]) {
            TW_ERROR(NULL, "database: %s", err);
            goto out;
        }
    }
    if (tw_health_set(d.health, "tidewatch.v1.IngestService", TW_HEALTH_NOT_SERVING) != 0 ||
        ingest_writer_init(&svc.writer, d.base, svc.pg, svc.npg, d.metrics,
                           &(ingest_writer_opts){.batch_max = (size_t)cfg.batch_max,
                                                 .batch_bytes = (size_t)cfg.batch_bytes,
                                                 .flush_delay_ms = (int)cfg.flush_delay_ms,
                                                 .max_in_flight = (int)cfg.pipeline}) != 0 ||
        ingest_register(&svc) != 0) {
        TW_ERROR(NULL, "could not set up the ingest service");
        goto out;
    }
    if (!(horizon = tw_horizon_new(d.base, svc.pg[0], d.metrics,
                                   &(tw_horizon_opts){.interval_ms = (int)cfg.horizon_interval_ms},
                                   err, sizeof err))) {
        TW_ERROR(NULL, "horizon metrics: %s", err);
        goto out;
    }
    status = tw_daemon_run(&d);
out:
    tw_horizon_free(horizon);
    ingest_writer_free(&svc.writer);
    ingest_service_cleanup(&svc);
    for (size_t i = 0; i < svc.npg; i++)
        tw_pg_free(svc.pg[i]);
    tw_daemon_free(&d);
    tw_places_free(svc.places);
    return status;
}
