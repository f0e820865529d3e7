/* tidewatch.v1.WorkerService on tidewatch-alerts: GetStatus (the
 * consumer), ListJobs (schedules and recorded runs) and RunJob (a run now,
 * answered when it has finished). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts.h"
#include "jobs.h"
#include "tidewatch/v1/worker.pb-c.h"
#include "tw_grpc_wire.h"
#include "tw_log.h"
#include "tw_worker.h"

#define RUNS_SQL                                                                                 \
    "SELECT run_id, job, floor(extract(epoch FROM as_of))::bigint, "                            \
    "floor(extract(epoch FROM started_at))::bigint, "                                           \
    "floor(extract(epoch FROM finished_at))::bigint, outcome, raised, updated, trigger, "       \
    "message, daemon FROM alert_job_runs WHERE ($1 = '' OR job = $1) "                           \
    "ORDER BY run_id DESC LIMIT $2::int"

#define RUNS_DEFAULT 20
#define RUNS_MAX 1000

/* A call waiting for the database or a run; call is NULL once cancelled. */
typedef struct pending {
    tw_grpc_call *call;
    alerts_service *svc;
} pending;

static void on_cancel(tw_grpc_call *call, void *arg)
{
    (void)arg;
    pending *p = tw_grpc_call_data(call);
    if (p)
        p->call = NULL;
}

static pending *pending_new(tw_grpc_call *call, alerts_service *svc)
{
    pending *p = calloc(1, sizeof *p);
    if (!p) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    p->call = call;
    p->svc = svc;
    tw_grpc_call_set_data(call, p);
    return p;
}

/* Send msg packed by pack/size, finish, free p. */
static void reply(pending *p, const ProtobufCMessage *msg)
{
    if (p->call) {
        size_t n = protobuf_c_message_get_packed_size(msg);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) {
            tw_grpc_call_finish(p->call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            protobuf_c_message_pack(msg, buf);
            tw_grpc_call_set_data(p->call, NULL);
            tw_grpc_call_reply(p->call, buf, n);
            free(buf);
        }
    }
    free(p);
}

static void finish(pending *p, int status, const char *message)
{
    if (p->call) {
        tw_grpc_call_set_data(p->call, NULL);
        tw_grpc_call_finish(p->call, status, message);
    }
    free(p);
}

static Google__Protobuf__Timestamp *ts(Google__Protobuf__Timestamp *t, int64_t secs)
{
    google__protobuf__timestamp__init(t);
    t->seconds = secs;
    return t;
}

/* ---- ListJobs ----------------------------------------------------------------- */

static void on_runs(const tw_pg_outcome *o, void *arg)
{
    pending *p = arg;
    if (o->kind != TW_PG_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "database: %s", o->message[0] ? o->message : tw_pg_kind_name(o->kind));
        finish(p, TW_GRPC_UNAVAILABLE, msg);
        return;
    }
    alerts_jobs *j = p->svc->jobs;
    const PGresult *r = o->results[0];
    size_t nr = (size_t)PQntuples(r);
    Tidewatch__V1__Job jobs[ALERTS_JOB_COUNT], *jp[ALERTS_JOB_COUNT];
    Google__Protobuf__Timestamp next[ALERTS_JOB_COUNT];
    for (int i = 0; i < ALERTS_JOB_COUNT; i++) {
        tidewatch__v1__job__init(&jobs[i]);
        jobs[i].name = (char *)alerts_job_name(i);
        jobs[i].description = (char *)alerts_job_description(i);
        jobs[i].schedule = (char *)alerts_job_schedule(j, i);
        int64_t nx = alerts_job_next(j, i);
        if (nx > 0)
            jobs[i].next_run = ts(&next[i], nx);
        jp[i] = &jobs[i];
    }
    Tidewatch__V1__JobRun *runs = calloc(nr ? nr : 1, sizeof *runs);
    Tidewatch__V1__JobRun **rp = calloc(nr ? nr : 1, sizeof *rp);
    Google__Protobuf__Timestamp *t = calloc(nr ? nr * 3 : 1, sizeof *t);
    if (!runs || !rp || !t) {
        free(runs);
        free(rp);
        free(t);
        finish(p, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < nr; i++) {
        int row = (int)i;
        Tidewatch__V1__JobRun *x = &runs[i];
        tidewatch__v1__job_run__init(x);
        x->run_id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        x->job = PQgetvalue(r, row, 1);
        x->as_of = ts(&t[3 * i], strtoll(PQgetvalue(r, row, 2), NULL, 10));
        x->started_at = ts(&t[3 * i + 1], strtoll(PQgetvalue(r, row, 3), NULL, 10));
        if (!PQgetisnull(r, row, 4))
            x->finished_at = ts(&t[3 * i + 2], strtoll(PQgetvalue(r, row, 4), NULL, 10));
        x->outcome = PQgetvalue(r, row, 5);
        x->raised = atoi(PQgetvalue(r, row, 6));
        x->updated = atoi(PQgetvalue(r, row, 7));
        x->trigger = PQgetvalue(r, row, 8);
        x->message = PQgetvalue(r, row, 9);
        x->daemon = PQgetvalue(r, row, 10);
        rp[i] = x;
    }
    Tidewatch__V1__ListJobsResponse res = TIDEWATCH__V1__LIST_JOBS_RESPONSE__INIT;
    res.n_jobs = ALERTS_JOB_COUNT;
    res.jobs = jp;
    res.n_runs = nr;
    res.runs = rp;
    reply(p, &res.base);
    free(runs);
    free(rp);
    free(t);
}

static void list_jobs(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    alerts_service *svc = arg;
    Tidewatch__V1__ListJobsRequest *req = tidewatch__v1__list_jobs_request__unpack(NULL, len, msg);
    if (!req) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed ListJobsRequest");
        return;
    }
    char job[64], max[16];
    int bad = 0;
    if (req->job[0] && alerts_job_find(req->job) < 0)
        bad = 1;
    snprintf(job, sizeof job, "%s", req->job);
    int n = req->max_runs <= 0 ? RUNS_DEFAULT : req->max_runs > RUNS_MAX ? RUNS_MAX : req->max_runs;
    snprintf(max, sizeof max, "%d", n);
    tidewatch__v1__list_jobs_request__free_unpacked(req, NULL);
    if (bad) {
        tw_grpc_call_finish(call, TW_GRPC_NOT_FOUND,
                            "job: no such job (bulk_acquisition, quiet_near_coast)");
        return;
    }
    pending *p = pending_new(call, svc);
    if (!p)
        return;
    /* On the consumer's connection, not the jobs': a job reading for
     * minutes there would hold the listing up behind it. */
    const char *v[] = {job, max};
    if (tw_pg_query(svc->pg, RUNS_SQL, 2, v, NULL, NULL, 0, on_runs, p) != 0)
        finish(p, TW_GRPC_UNAVAILABLE, "database: could not queue the query");
}

/* ---- RunJob ------------------------------------------------------------------- */

static void on_run_done(void *arg, const alerts_run_result *res)
{
    pending *p = arg;
    char msg[700];
    if (!strcmp(res->outcome, "failed")) {
        snprintf(msg, sizeof msg, "run %lld of %s failed: %s", (long long)res->run_id, res->job,
                 res->message);
        finish(p, TW_GRPC_UNAVAILABLE, msg);
        return;
    }
    if (!strcmp(res->outcome, "skipped") && res->manual) {
        snprintf(msg, sizeof msg, "%s: %s", res->job, res->message);
        finish(p, TW_GRPC_ABORTED, msg);
        return;
    }
    Google__Protobuf__Timestamp t[3];
    Tidewatch__V1__JobRun x = TIDEWATCH__V1__JOB_RUN__INIT;
    x.run_id = res->run_id;
    x.job = (char *)res->job;
    x.as_of = ts(&t[0], res->as_of);
    x.started_at = ts(&t[1], res->started_at);
    x.finished_at = ts(&t[2], (int64_t)time(NULL));
    x.outcome = (char *)res->outcome;
    x.raised = res->raised;
    x.updated = res->updated;
    x.trigger = res->manual ? "manual" : "schedule";
    x.message = (char *)res->message;
    x.daemon = (char *)res->daemon;
    reply(p, &x.base);
}

static void run_job(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    alerts_service *svc = arg;
    Tidewatch__V1__RunJobRequest *req = tidewatch__v1__run_job_request__unpack(NULL, len, msg);
    if (!req) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed RunJobRequest");
        return;
    }
    int job = alerts_job_find(req->job);
    int64_t now = (int64_t)time(NULL);
    int64_t as_of = req->as_of ? req->as_of->seconds : now;
    int nanos_bad = req->as_of && (req->as_of->nanos < 0 || req->as_of->nanos > 999999999);
    int empty = !req->job[0];
    tidewatch__v1__run_job_request__free_unpacked(req, NULL);
    if (empty) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT,
                            "job: required (bulk_acquisition, quiet_near_coast)");
        return;
    }
    if (job < 0) {
        tw_grpc_call_finish(call, TW_GRPC_NOT_FOUND,
                            "job: no such job (bulk_acquisition, quiet_near_coast)");
        return;
    }
    if (nanos_bad || as_of < 0 || as_of > now + 366 * 86400) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT,
                            "as_of: must be a valid time between 1970 and a year from now");
        return;
    }
    pending *p = pending_new(call, svc);
    if (!p)
        return;
    char err[256];
    int rc = alerts_job_run(svc->jobs, job, as_of, 1, on_run_done, p, err, sizeof err);
    if (rc == -2)
        finish(p, TW_GRPC_ABORTED, err);
    else if (rc != 0)
        finish(p, TW_GRPC_UNAVAILABLE, err);
}

int alerts_rpc_register(alerts_service *svc)
{
    svc->status_consumer = (tw_worker_consumer){.name = ALERTS_CONSUMER,
                                                .consumer = &svc->consumer};
    svc->status = (tw_worker_status){.consumers = &svc->status_consumer, .n = 1};
    const tw_grpc_method methods[] = {
        {.path = "/tidewatch.v1.WorkerService/ListJobs", .kind = TW_GRPC_UNARY,
         .on_message = list_jobs, .on_cancel = on_cancel, .arg = svc},
        {.path = "/tidewatch.v1.WorkerService/RunJob", .kind = TW_GRPC_UNARY,
         .on_message = run_job, .on_cancel = on_cancel, .arg = svc},
    };
    if (tw_worker_register_status(svc->daemon->server, &svc->status) != 0)
        return -1;
    return tw_grpc_server_add_methods(svc->daemon->server, methods,
                                      sizeof methods / sizeof methods[0]);
}
