/* tidewatch-alerts: raises alerts on equipment moving toward the Channel
 * coast (real-time rules after provenance, scheduled jobs). */
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "alerts.h"
#include "tw_consumer_settings.h"
#include "tw_log.h"

#define OFF(f) offsetof(alerts_config, f)

static const tw_setting extra[] = {
    TW_CONSUMER_SETTING_ROWS(alerts_config, "500", "most events evaluated per transaction"),
    {.name = "history_max", .env = "TIDEWATCH_ALERTS_HISTORY_MAX", .flag = "history-max",
     .type = TW_SET_INT, .def = "200", .min = 2, .max = 100000,
     .help = "newest hops of one subject (item, consignment, party cluster) the real-time rules "
             "read",
     .offset = OFF(history_max)},
    {.name = "links_max", .env = "TIDEWATCH_ALERTS_LINKS_MAX", .flag = "links-max",
     .type = TW_SET_INT, .def = "200", .min = 1, .max = 100000,
     .help = "most earlier parties one party is linked to (by identifier or name and address) "
             "when its cluster and its history are read",
     .offset = OFF(links_max)},
    {.name = "batch_alerts_max", .env = "TIDEWATCH_ALERTS_BATCH_ALERTS_MAX",
     .flag = "batch-alerts-max", .type = TW_SET_INT, .def = "10000", .min = 1, .max = 1000000,
     .help = "most alerts one batch of events may raise or update (the rest of the batch is "
             "logged and not evaluated)",
     .offset = OFF(batch_alerts_max)},
    {.name = "bulk_schedule", .env = "TIDEWATCH_ALERTS_BULK_SCHEDULE", .flag = "bulk-schedule",
     .type = TW_SET_STRING, .def = "7 * * * *",
     .help = "cron schedule (UTC) of the bulk_acquisition job; \"\": on demand only",
     .offset = OFF(bulk_schedule)},
    {.name = "quiet_schedule", .env = "TIDEWATCH_ALERTS_QUIET_SCHEDULE", .flag = "quiet-schedule",
     .type = TW_SET_STRING, .def = "37 */6 * * *",
     .help = "cron schedule (UTC) of the quiet_near_coast job; \"\": on demand only",
     .offset = OFF(quiet_schedule)},
    {.name = "job_rows_max", .env = "TIDEWATCH_ALERTS_JOB_ROWS_MAX", .flag = "job-rows-max",
     .type = TW_SET_INT, .def = "2000000", .min = 1, .max = 100000000,
     .help = "most rows one job run reads (hops of the bulk window, items near the coast); a "
             "run that reaches it says so in its record",
     .offset = OFF(job_rows_max)},
    {.name = "job_statement_timeout", .env = "TIDEWATCH_ALERTS_JOB_STATEMENT_TIMEOUT",
     .flag = "job-statement-timeout", .type = TW_SET_DURATION_MS, .def = "30m", .min = 0,
     .max = 24 * 3600 * 1000LL,
     .help = "longest one statement of a job run (its read, its writes) may run before "
             "PostgreSQL cancels it and the run is recorded failed; 0: the server's setting",
     .offset = OFF(job_statement_timeout_ms)},
    {.name = "realtime", .env = "TIDEWATCH_ALERTS_REALTIME", .flag = "realtime",
     .type = TW_SET_BOOL, .def = "true",
     .help = "evaluate the real-time rules as provenance applies events (false: this daemon "
             "runs jobs only; another must consume)",
     .offset = OFF(realtime)},
    {.name = "jobs", .env = "TIDEWATCH_ALERTS_JOBS", .flag = "jobs", .type = TW_SET_BOOL,
     .def = "true", .help = "run the scheduled jobs on their schedules (RunJob works either way)",
     .offset = OFF(jobs)},
};

static alerts_config cfg;

static const tw_daemon_spec spec = {
    .name = "alerts",
    .summary = "raises alerts on equipment moving toward the Channel coast",
    .default_listen = "127.0.0.1:50054",
    .default_metrics_listen = "127.0.0.1:9104",
    .extra = extra,
    .nextra = sizeof extra / sizeof extra[0],
    .cfg = &cfg,
};

int main(int argc, char **argv)
{
    static const char *const info_paths[] = {"/tidewatch.v1.WorkerService/GetServerInfo", NULL};
    tw_daemon d;
    int rv = tw_daemon_init(&d, &spec, info_paths, argc, argv);
    if (rv != 0)
        return rv < 0 ? 2 : 0;
    alerts_service svc = {.daemon = &d, .cfg = &cfg};
    char host[64] = "";
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    snprintf(svc.daemon_id, sizeof svc.daemon_id, "%s:%ld", host, (long)getpid());
    int status = 1;
    if (tw_health_set(d.health, ALERTS_SERVICE, TW_HEALTH_NOT_SERVING) != 0 ||
        alerts_realtime_start(&svc) != 0 || alerts_jobs_start(&svc) != 0 ||
        alerts_rpc_register(&svc) != 0) {
        TW_ERROR(NULL, "could not set up the alerts daemon");
        goto out;
    }
    status = tw_daemon_run(&d);
out:
    tw_pg_free(svc.jobs_pg); /* first: pending runs end, their callers are answered */
    tw_pg_free(svc.pg);      /* before the consumer, which must outlive its callbacks */
    tw_consumer_free(svc.consumer);
    alerts_jobs_free(svc.jobs);
    alerts_realtime_free(&svc);
    alerts_ctx_free(&svc.ctx);
    tw_daemon_free(&d);
    return status;
}
