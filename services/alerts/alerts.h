/* tidewatch-alerts internals: the shared state (this file), the rule
 * context read from the database (context.c: hubs and thresholds), the
 * real-time consumer (realtime.c), the scheduled jobs (jobs.c) and the
 * WorkerService methods (rpc.c). The rules themselves are pure
 * (lib/domain/tw_alertrules). */
#ifndef TW_ALERTS_H
#define TW_ALERTS_H

#include <stdint.h>

#include "tw_alertrules.h"
#include "tw_arena.h"
#include "tw_consumer.h"
#include "tw_daemon.h"
#include "tw_pg.h"
#include "tw_worker.h"

/* The daemon's settings: the common ones first (see tw_daemon.h). */
typedef struct alerts_config {
    tw_daemon_config common;
    int64_t batch_max;
    int64_t poll_ms;
    int64_t statement_timeout_ms;
    int64_t idle_in_xact_timeout_ms;
    int64_t history_max;      /* hops per subject read for one batch */
    int64_t links_max;        /* parties linked to one party (clusters) */
    int64_t batch_alerts_max; /* alerts one batch may raise */
    char *bulk_schedule;
    char *quiet_schedule;
    int64_t job_rows_max;     /* rows one job run may read */
    int64_t job_statement_timeout_ms; /* one statement of a job run */
    int jobs;                 /* 0: never run scheduled jobs (RunJob still works) */
    int realtime;             /* 0: no real-time rules (a daemon for the jobs only) */
} alerts_config;

#define ALERTS_CONSUMER "alerts"
#define ALERTS_UPSTREAM "provenance"
#define ALERTS_SERVICE "tidewatch.v1.WorkerService"

typedef struct alerts_jobs alerts_jobs;

/* The rule context: enabled hubs and the newest thresholds, as last read.
 * Strings are owned by the context. */
typedef struct alerts_ctx {
    tw_ar_hub *hubs;
    size_t nhubs;
    char *names; /* the hubs' names, one block */
    tw_ar_config cfg;
    int loaded;  /* 1 once hubs and thresholds were read */
} alerts_ctx;

typedef struct alerts_service {
    tw_daemon *daemon;
    alerts_config *cfg;
    tw_pg *pg;        /* the consumer's connection */
    tw_pg *jobs_pg;   /* the jobs' connection (session advisory locks) */
    tw_consumer *consumer;
    alerts_ctx ctx;
    int ctx_loading;
    int ctx_dirty;    /* a change was announced while loading */
    alerts_jobs *jobs;
    void *rt;         /* realtime.c's state */
    int db_up;
    uint64_t raised, updated; /* by the real-time rules, since start */
    char daemon_id[96];       /* host:pid, recorded on job runs */
    tw_worker_consumer status_consumer; /* what GetStatus reports */
    tw_worker_status status;
} alerts_service;

/* context.c: read hubs and thresholds now (and again on every NOTIFY
 * tidewatch_hubs); the consumer applies nothing before the first read has
 * succeeded. Returns 0 or -1 (logged). */
int alerts_ctx_start(alerts_service *svc) TW_WUR;
/* Read hubs and thresholds again (after a refusal for want of them). */
void alerts_ctx_reload(alerts_service *svc);
void alerts_ctx_free(alerts_ctx *ctx);

/* realtime.c: the consumer (after provenance). Returns 0 or -1 (logged). */
int alerts_realtime_start(alerts_service *svc) TW_WUR;
void alerts_realtime_free(alerts_service *svc);

/* jobs.c: the scheduler and the job runs. Returns 0 or -1 (logged). */
int alerts_jobs_start(alerts_service *svc) TW_WUR;
void alerts_jobs_free(alerts_jobs *j);

/* rpc.c: WorkerService GetStatus, ListJobs, RunJob. Returns 0 or -1. */
int alerts_rpc_register(alerts_service *svc) TW_WUR;

/* The statement (registered on both connections) that raises a list of
 * alerts in one go: parameters are arrays, one element per alert, in
 * order; plus the job run (NULL for real-time). It answers one row:
 * (raised, updated). alerts_raise_params builds its parameters. */
#define ALERTS_ST_RAISE "alerts_raise"
/* The same for a job run ($14), also marking the run ok with the counts
 * and a message ($15): one more parameter, answers (raised, updated). */
#define ALERTS_ST_RAISE_RUN "alerts_raise_run"
int alerts_raise_register(tw_pg *pg) TW_WUR;

#define ALERTS_RAISE_NPARAMS 14

/* Parameters of ALERTS_ST_RAISE for a[0..n) (config version cfg_version,
 * job "" or a name, run_id 0 for none). The arrays are owned by *p; free
 * with alerts_raise_params_free. Returns 0 or -1 (out of memory). */
typedef struct alerts_raise_params {
    void *arrays; /* private */
    const char *values[ALERTS_RAISE_NPARAMS + 1];
    int lengths[ALERTS_RAISE_NPARAMS + 1];
    int formats[ALERTS_RAISE_NPARAMS + 1];
    char run[24];
    char version[16];
    char job[64];
} alerts_raise_params;
int alerts_raise_params_build(alerts_raise_params *p, const tw_ar_alerts *a, int cfg_version,
                              const char *job, int64_t run_id) TW_WUR;
void alerts_raise_params_free(alerts_raise_params *p);

#endif
