/* tidewatch jobs: the scheduled alert jobs of tidewatch-alerts (its
 * WorkerService): their schedules and recorded runs, and a run now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "tidewatch/v1/worker.pb-c.h"

#define SERVICE "tidewatch.v1.WorkerService"
#define ALERTS_DEFAULT "127.0.0.1:50054"
/* A run answers when it has finished: wait at least this long. */
#define RUN_TIMEOUT_MS (15 * 60 * 1000)


static void print_run(const Tidewatch__V1__JobRun *r)
{
    char a[32], s[32], f[32];
    printf("%-6lld %-18s %-21s %-21s %-21s %-8s %6d %7d %-8s %s%s%s\n", (long long)r->run_id,
           r->job, cli_when(r->as_of, a), cli_when(r->started_at, s), cli_when(r->finished_at, f), r->outcome,
           r->raised, r->updated, r->trigger, r->daemon, r->message[0] ? "  " : "", r->message);
}

static void print_runs_header(void)
{
    printf("%-6s %-18s %-21s %-21s %-21s %-8s %6s %7s %-8s %s\n", "RUN", "JOB", "AS OF",
           "STARTED", "FINISHED", "OUTCOME", "RAISED", "UPDATED", "TRIGGER", "DAEMON");
}

/* The alerts daemon to talk to: --alerts, else --target when given (flag
 * or TIDEWATCH_TARGET), else TIDEWATCH_ALERTS_TARGET, else the default. */
static tw_cli alerts_cli(const tw_cli *cli, const char *flag)
{
    tw_cli c = *cli;
    const char *env = getenv("TIDEWATCH_ALERTS_TARGET");
    if (flag)
        c.target = (char *)flag;
    else if (!cli->target_given)
        c.target = (char *)(env && env[0] ? env : ALERTS_DEFAULT);
    return c;
}

static const char ALERTS_HELP[] =
    "talks to tidewatch-alerts at --alerts HOST:PORT, or --target when given, or "
    "TIDEWATCH_ALERTS_TARGET; default " ALERTS_DEFAULT " (not the query service).";

static int jobs_list(const tw_cli *cli, int argc, char **argv)
{
    const char *job = NULL, *alerts = NULL;
    int64_t runs = 0;
    int json = 0;
    const cli_opt opts[] = {
        {"job", CLI_OPT_STR, "NAME", "only this job's runs", &job, 0},
        {"runs", CLI_OPT_INT, "N", "runs listed, newest first (default 20)", &runs, 1},
        {"alerts", CLI_OPT_STR, "HOST:PORT", "the alerts daemon", &alerts, 0},
        {"json", CLI_OPT_FLAG, NULL, "the answer as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const cli_help help = {"jobs list", "jobs [list] [--job NAME] [--runs N] [--json]",
                           "The scheduled alert jobs (schedule in UTC, next run) and their "
                           "recorded runs: as of, start, end, outcome, alerts raised and updated.",
                           ALERTS_HELP};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    tw_cli c = alerts_cli(cli, alerts);
    Tidewatch__V1__ListJobsRequest req = TIDEWATCH__V1__LIST_JOBS_REQUEST__INIT;
    req.job = (char *)(job ? job : "");
    req.max_runs = (int32_t)(runs > 1000 ? 1000 : runs);
    ProtobufCMessage *m = NULL;
    rc = cli_call_service(&c, "jobs", SERVICE, "ListJobs", &req.base,
                          &tidewatch__v1__list_jobs_response__descriptor, &m, "no such job");
    if (rc)
        return rc;
    Tidewatch__V1__ListJobsResponse *r = (Tidewatch__V1__ListJobsResponse *)m;
    if (json) {
        rc = cli_print_json(m);
    } else {
        char n[32];
        printf("%-18s %-14s %-21s %s\n", "JOB", "SCHEDULE", "NEXT RUN", "WHAT");
        for (size_t i = 0; i < r->n_jobs; i++)
            printf("%-18s %-14s %-21s %s\n", r->jobs[i]->name,
                   r->jobs[i]->schedule[0] ? r->jobs[i]->schedule : "(on demand)",
                   cli_when(r->jobs[i]->next_run, n), r->jobs[i]->description);
        printf("\n");
        if (r->n_runs == 0) {
            printf("No run recorded%s%s.\n", job ? " for " : "", job ? job : "");
        } else {
            print_runs_header();
            for (size_t i = 0; i < r->n_runs; i++)
                print_run(r->runs[i]);
        }
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish("jobs", rc);
}

static int jobs_run(const tw_cli *cli, int argc, char **argv)
{
    const char *as_of = NULL, *alerts = NULL;
    int json = 0;
    const cli_opt opts[] = {
        {"as-of", CLI_OPT_STR, "TIME",
         "run as of this event time (YYYY-MM-DD or RFC 3339, UTC); default now", &as_of, 0},
        {"alerts", CLI_OPT_STR, "HOST:PORT", "the alerts daemon", &alerts, 0},
        {"json", CLI_OPT_FLAG, NULL, "the run as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const cli_help help = {
        "jobs run", "jobs run NAME [--as-of TIME] [--json]",
        "Run a scheduled job now and wait for it (one run of a job at a time across every alerts "
        "daemon: exit 1 when another holds it). Re-running a past day raises only what was not "
        "raised yet. Jobs: bulk_acquisition, quiet_near_coast.",
        ALERTS_HELP};
    char *job;
    int rc = cli_parse_one(&help, opts, sizeof opts / sizeof opts[0], argc, argv,
                           "the job's name (bulk_acquisition, quiet_near_coast)", &job);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    Tidewatch__V1__RunJobRequest req = TIDEWATCH__V1__RUN_JOB_REQUEST__INIT;
    Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    if (as_of && (rc = cli_date("jobs run", "as-of", as_of, &t)) != 0)
        return rc;
    req.job = job;
    req.as_of = as_of ? &t : NULL;
    tw_cli c = alerts_cli(cli, alerts);
    if (c.timeout_ms < RUN_TIMEOUT_MS)
        c.timeout_ms = RUN_TIMEOUT_MS;
    ProtobufCMessage *m = NULL;
    rc = cli_call_service(&c, "jobs run", SERVICE, "RunJob", &req.base,
                          &tidewatch__v1__job_run__descriptor, &m, "no such job");
    if (rc)
        return rc;
    Tidewatch__V1__JobRun *r = (Tidewatch__V1__JobRun *)m;
    if (json) {
        rc = cli_print_json(m);
    } else {
        char a[32];
        printf("run %lld of %s as of %s: %s, %d raised, %d updated", (long long)r->run_id,
               r->job, cli_when(r->as_of, a), r->outcome, r->raised, r->updated);
        printf(r->message[0] ? " (%s)\n" : "%s\n", r->message);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish("jobs run", rc);
}

int tw_cli_jobs(const tw_cli *cli, int argc, char **argv)
{
    if (argc > 0 && !strcmp(argv[0], "run"))
        return jobs_run(cli, argc - 1, argv + 1);
    if (argc > 0 && !strcmp(argv[0], "list"))
        return jobs_list(cli, argc - 1, argv + 1);
    return jobs_list(cli, argc, argv);
}
