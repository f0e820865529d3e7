/* The scheduled jobs (jobs.c) as the WorkerService methods see them. */
#ifndef TW_ALERTS_JOBS_H
#define TW_ALERTS_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "alerts.h"

#define ALERTS_JOB_COUNT 2

typedef struct alerts_run alerts_run;

/* How a run ended (valid during the callback only). */
typedef struct alerts_run_result {
    int64_t run_id;       /* 0: no row was written (the lock could not be taken, ...) */
    const char *job;
    int64_t as_of;
    int64_t started_at;
    const char *outcome;  /* "ok", "failed", "skipped" */
    int raised, updated;
    int manual;
    const char *message;
    const char *daemon;
} alerts_run_result;

typedef void (*alerts_run_done_fn)(void *arg, const alerts_run_result *res);

/* Job i's name ("bulk_acquisition", ...), description, schedule text ("" for
 * on demand only) and next scheduled slot (-1 none); NULL past the end. */
const char *alerts_job_name(int i);
const char *alerts_job_description(int i);
const char *alerts_job_schedule(const alerts_jobs *j, int i);
int64_t alerts_job_next(const alerts_jobs *j, int i);

/* The index of the job called name, or -1. */
int alerts_job_find(const char *name);

/* Start a run of job `job` as of `as_of` (Unix seconds). done (may be NULL)
 * gets the result once, from the loop. Returns 0 when started; -1 unknown
 * job; -2 a run of it is already in progress in this daemon; -3 anything
 * else (not loaded yet, out of memory); with a reason in err. */
int alerts_job_run(alerts_jobs *j, int job, int64_t as_of, int manual, alerts_run_done_fn done,
                   void *arg, char *err, size_t errlen) TW_WUR;

#endif
