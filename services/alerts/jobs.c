/* Scheduled alert jobs (rules 5 and 6): a cron schedule per job, runs on
 * demand (RunJob), one run of a job at a time across every alerts daemon,
 * every run recorded in alert_job_runs.
 *
 * A run, on the jobs' own connection (session advisory locks need one
 * session):
 *   1. pg_try_advisory_lock(the job's key): taken, or the run is recorded
 *      "skipped" (another daemon's run holds it) and ends;
 *   2. in one transaction: runs of this job still marked running are
 *      abandoned ones (their daemon died: the lock is free) and marked
 *      failed; this run's row is inserted. A scheduled slot (job, as_of)
 *      that another daemon already ran is not run again (a unique index):
 *      the run ends there, unlocked;
 *   3. the hops the rule needs, as of the run's time (event time: hops
 *      that happened at or before as_of), in one read-only transaction;
 *      then what is known of the parties those hops name (PARTIES_SQL:
 *      once per identity, not once per record);
 *   4. the rule (tw_ar_bulk; tw_ar_quiet and tw_ar_quiet_cluster) computes
 *      the alerts in C;
 *   5. one transaction raises them (alert_raise dedups: a re-run raises
 *      nothing new) and records the outcome and the counts;
 *   6. the lock is released.
 * A failure after 2 marks the run failed with the reason. A crash leaves
 * the row "running" until the next run of the job marks it abandoned. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts.h"
#include "jobs.h"
#include "rows.h"
#include "tw_cron.h"
#include "tw_log.h"
#include "tw_pgarray.h"

#define JOB_LOCK_BASE 7243298466392740100LL

/* The sale and shipment hops of the bulk window (rule 5) whose receiver
 * may belong to a cluster acquiring bulk_min_items ($4) or more: alone
 * (its own lines reach it), or sharing an identifier, or a name at an
 * address, with another receiver of the window. A receiver seen once with
 * a few items and nothing in common with anyone (the leisure buyer, the
 * common case) cannot, and is not read further. Capped by job_rows_max
 * ($3). $1 as_of, $2 bulk_window_days. */
#define BULK_WINDOW                                                                              \
    "WITH w AS MATERIALIZED (SELECT h.event_id, h.line, h.to_party, h.quantity FROM prov_hops h " \
    " WHERE h.kind IN (1, 2) AND h.status = 0 AND h.to_party IS NOT NULL "                       \
    " AND h.occurred_at > to_timestamp($1::float8) - make_interval(days => $2::int) "           \
    " AND h.occurred_at <= to_timestamp($1::float8)), "                                          \
    "wp AS MATERIALIZED (SELECT DISTINCT to_party FROM w), "                                     \
    "ids AS (SELECT i.kind, i.value FROM wp JOIN prov_party_identifiers i "                      \
    " ON i.party_id = wp.to_party AND i.kind <> 'other' GROUP BY 1, 2 HAVING count(*) > 1), "    \
    "nk AS (SELECT p.name_key, p.address_key FROM wp JOIN prov_parties p "                       \
    " ON p.party_id = wp.to_party WHERE p.name_key <> '' AND p.address_key <> '' "               \
    " GROUP BY 1, 2 HAVING count(*) > 1), "                                                      \
    "cand AS (SELECT i.party_id AS to_party FROM ids JOIN prov_party_identifiers i "             \
    " USING (kind, value) JOIN wp ON wp.to_party = i.party_id "                                  \
    " UNION SELECT p.party_id FROM nk JOIN prov_parties p USING (name_key, address_key) "        \
    " JOIN wp ON wp.to_party = p.party_id "                                                      \
    " UNION SELECT to_party FROM w GROUP BY to_party HAVING sum(quantity) >= $4::int), "         \
    "hb AS (SELECT h.event_id, h.line FROM w JOIN cand USING (to_party) "                        \
    " JOIN prov_hops h USING (event_id, line) "                                                  \
    " ORDER BY h.occurred_at, h.event_id, h.line LIMIT $3::bigint) "

static const char BULK_HOPS_SQL[] =
    BULK_WINDOW "SELECT " ALERTS_HOP_COLS " FROM hb JOIN prov_hops h USING (event_id, line) "
    "LEFT JOIN prov_items it ON it.item_id = h.item_id "
    "LEFT JOIN prov_parties f ON f.party_id = h.from_party "
    "LEFT JOIN prov_parties t ON t.party_id = h.to_party ORDER BY h.event_id, h.line";

/* Per item (root), its newest active hop at or before as_of within the
 * lookback, kept when it is older than quiet_days, is not a seizure, and
 * lies near an enabled coast hub (a box around each; the rule measures). */
#define QUIET_CAND                                                                               \
    "WITH last AS (SELECT DISTINCT ON (it.root_id) it.root_id, h.event_id, h.line, h.kind, "    \
    " h.occurred_at, h.place_lat, h.place_lon FROM prov_hops h "                                 \
    " JOIN prov_items it ON it.item_id = h.item_id "                                             \
    " WHERE h.item_id IS NOT NULL AND h.status = 0 AND h.occurred_at <= to_timestamp($1::float8) " \
    " AND h.occurred_at > to_timestamp($1::float8) - make_interval(days => $3::int) "            \
    " ORDER BY it.root_id, h.occurred_at DESC, h.event_id DESC, h.line DESC), "                  \
    "cand AS (SELECT * FROM last WHERE kind <> 3 AND place_lat IS NOT NULL "                     \
    " AND occurred_at <= to_timestamp($1::float8) - make_interval(days => $2::int) "             \
    " AND EXISTS (SELECT 1 FROM hubs c WHERE c.enabled AND c.kind = 'coast' "                    \
    "  AND abs(c.lat - last.place_lat) <= $5::float8 / 111.0 "                                   \
    "  AND abs(c.lon - last.place_lon) <= $5::float8 / (111.0 * greatest(cos(radians(c.lat)), 0.1))) " \
    " ORDER BY root_id LIMIT $4::bigint) "

/* Per item (root), its newest active hop at or before as_of within the
 * lookback, kept when it is older than quiet_days, is not a seizure, and
 * lies near an enabled coast hub (a box around each; the rule measures). */
static const char QUIET_SQL[] =
    QUIET_CAND "SELECT cand.root_id, " ALERTS_HOP_COLS " FROM cand "
    "JOIN prov_hops h ON h.event_id = cand.event_id AND h.line = cand.line "
    "LEFT JOIN prov_items it ON it.item_id = h.item_id "
    "LEFT JOIN prov_parties f ON f.party_id = h.from_party "
    "LEFT JOIN prov_parties t ON t.party_id = h.to_party ORDER BY cand.root_id";

/* Rule 6 for party clusters. Seeds: the receivers (not agencies) of sales
 * and shipments between quiet_days and the lookback old whose destination
 * (a sale's buyer's place, else its place) lies near an enabled coast hub.
 * A seed's cluster: the seed and its linked parties (ALERTS_PARTY_LINKS,
 * earlier and later ones: the bound is no event). Its records: the active
 * hops naming a member as receiver (rcv) or sender (snd), at or before
 * as_of. Kept: clusters whose newest record is old enough, has a time and
 * is no seizure (the rule decides the rest); of each, the newest
 * history_max records, oldest first. $1 as_of, $2 quiet_days, $3 lookback
 * days, $4 most seeds, $5 km, $6 links_max, $7 history_max. */
static const char QUIET_CLUSTER_SQL[] =
    "WITH seed AS MATERIALIZED (SELECT DISTINCT t.party_id, (1::bigint << 52) AS event_id, "
    " t.name_key, t.address_key FROM prov_hops h JOIN prov_parties t ON t.party_id = h.to_party "
    " CROSS JOIN LATERAL (SELECT CASE WHEN h.kind = 1 AND t.lat IS NOT NULL THEN t.lat "
    "  ELSE h.place_lat END AS lat, CASE WHEN h.kind = 1 AND t.lat IS NOT NULL THEN t.lon "
    "  ELSE h.place_lon END AS lon) d "
    " WHERE h.kind IN (1, 2) AND h.status = 0 AND t.kind <> 3 "
    " AND h.occurred_at <= to_timestamp($1::float8) - make_interval(days => $2::int) "
    " AND h.occurred_at > to_timestamp($1::float8) - make_interval(days => $3::int) "
    " AND EXISTS (SELECT 1 FROM hubs c WHERE c.enabled AND c.kind = 'coast' "
    "  AND abs(c.lat - d.lat) <= $5::float8 / 111.0 "
    "  AND abs(c.lon - d.lon) <= $5::float8 / (111.0 * greatest(cos(radians(c.lat)), 0.1))) "
    " ORDER BY t.party_id LIMIT $4::bigint), "
    "mem AS MATERIALIZED (SELECT bp.party_id AS seed, bp.party_id AS member FROM seed bp UNION "
    " SELECT bp.party_id, x FROM seed bp " ALERTS_PARTY_LINKS("$6::bigint")
    " CROSS JOIN LATERAL unnest(l.others) x), "
    "rec AS MATERIALIZED (SELECT seed, event_id, line, occurred_at, kind, max(rcv) AS rcv, "
    " max(snd) AS snd FROM (SELECT m.seed, h.event_id, h.line, h.occurred_at, h.kind, 1 AS rcv, "
    "  0 AS snd FROM mem m JOIN prov_hops h ON h.to_party = m.member WHERE h.status = 0 "
    "  AND (h.occurred_at IS NULL OR h.occurred_at <= to_timestamp($1::float8)) "
    " UNION ALL SELECT m.seed, h.event_id, h.line, h.occurred_at, h.kind, 0, 1 FROM mem m "
    "  JOIN prov_hops h ON h.from_party = m.member WHERE h.status = 0 "
    "  AND (h.occurred_at IS NULL OR h.occurred_at <= to_timestamp($1::float8))) x "
    " GROUP BY 1, 2, 3, 4, 5), "
    "quiet AS (SELECT seed FROM rec GROUP BY seed "
    " HAVING max(occurred_at) <= to_timestamp($1::float8) - make_interval(days => $2::int) "
    " AND bool_and(occurred_at IS NOT NULL) AND bool_and(kind <> 3)), "
    "top AS (SELECT r.*, row_number() OVER (PARTITION BY r.seed ORDER BY r.occurred_at DESC, "
    " r.event_id DESC, r.line DESC) AS rn FROM rec r JOIN quiet USING (seed)) "
    "SELECT top.seed, top.rcv, top.snd, " ALERTS_HOP_COLS " FROM top "
    "JOIN prov_hops h ON h.event_id = top.event_id AND h.line = top.line "
    "LEFT JOIN prov_items it ON it.item_id = h.item_id "
    "LEFT JOIN prov_parties f ON f.party_id = h.from_party "
    "LEFT JOIN prov_parties t ON t.party_id = h.to_party "
    "WHERE top.rn <= $7::bigint ORDER BY top.seed, h.occurred_at, h.event_id, h.line";

/* What is known of the parties a job's hops name ($1: their ids), once per
 * identity: the parties with the same kind, identifiers, name key and
 * address key are one identity, and its trading history, links and
 * seizure link are read once, as they stood at its newest record among
 * them (a job speaks as of its own time, not as of each record's: a
 * dealer named by ten thousand records is read once, with all it had
 * traded by then). Each party keeps its own name and place. $2: the most
 * parties followed per identity (links_max). ALERTS_PARTY_NCOLS columns. */
static const char PARTIES_SQL[] =
    "WITH p0 AS MATERIALIZED (SELECT *, max(party_id) OVER (PARTITION BY kind, name_key, "
    " address_key, ids) AS rep FROM (SELECT p.party_id, p.event_id, p.kind, p.name, p.name_key, "
    " p.address_key, p.lat, p.lon, (SELECT array_agg(i.kind || ':' || i.value "
    " ORDER BY i.kind, i.value) FROM prov_party_identifiers i WHERE i.party_id = p.party_id) AS ids "
    " FROM prov_parties p WHERE p.party_id = ANY ($1::bigint[])) x), "
    "bp AS MATERIALIZED (SELECT party_id, event_id, kind, ''::text AS name, name_key, "
    " address_key, NULL::float8 AS lat, NULL::float8 AS lon FROM p0 WHERE party_id = rep), "
    "f (party_id, kind, name, name_key, address_key, lat, lon, idents, records, first, "
    " seized) AS MATERIALIZED (SELECT " ALERTS_PARTY_COLS " FROM bp "
    ALERTS_PARTY_LINKS("$2::bigint") ALERTS_PARTY_TRADE ") "
    "SELECT p0.party_id, p0.kind, p0.name, p0.name_key, p0.address_key, p0.lat, p0.lon, "
    "f.idents, f.records, f.first, f.seized FROM p0 JOIN f ON f.party_id = p0.rep";

static const char LOCK_SQL[] = "SELECT pg_try_advisory_lock($1::bigint)";
static const char UNLOCK_SQL[] = "SELECT pg_advisory_unlock($1::bigint)";
static const char ABANDON_SQL[] =
    "UPDATE alert_job_runs SET outcome = 'failed', finished_at = clock_timestamp(), "
    "message = 'abandoned: its daemon stopped before the end' "
    "WHERE job = $1 AND outcome = 'running'";
static const char CLAIM_SQL[] =
    "INSERT INTO alert_job_runs (job, as_of, trigger, daemon, config_version) "
    "VALUES ($1, to_timestamp($2::float8), $3, $4, $5::int) "
    "ON CONFLICT (job, as_of) WHERE trigger = 'schedule' AND outcome IN ('running', 'ok') "
    "DO NOTHING RETURNING run_id, floor(extract(epoch FROM started_at))::bigint";
static const char SKIPPED_SQL[] =
    "INSERT INTO alert_job_runs (job, as_of, trigger, daemon, outcome, finished_at, message) "
    "VALUES ($1, to_timestamp($2::float8), $3, $4, 'skipped', clock_timestamp(), $5) "
    "RETURNING run_id, floor(extract(epoch FROM started_at))::bigint";
static const char FAILED_SQL[] =
    "UPDATE alert_job_runs SET outcome = 'failed', finished_at = clock_timestamp(), "
    "message = $2 WHERE run_id = $1::bigint";

typedef enum { JOB_BULK = 0, JOB_QUIET = 1, JOB_COUNT = ALERTS_JOB_COUNT } job_id;

static const struct {
    const char *name;
    const char *description;
} job_defs[JOB_COUNT] = {
    {"bulk_acquisition", "rule 5: one buyer cluster acquiring many engines or boats within a "
                         "window, across sellers"},
    {"quiet_near_coast", "rule 6: items and party clusters last seen near a coast hub, with "
                         "nothing recorded since"},
};

struct alerts_run {
    alerts_jobs *jobs;
    job_id job;
    int64_t as_of;
    int manual;
    int64_t run_id;
    int64_t started_at;
    int locked;
    char lock_key[24];
    char as_of_param[32];
    char message[512];
    int raised, updated;
    const char *outcome;
    alerts_run_done_fn done;
    void *done_arg;
    tw_arena arena;
    tw_ar_alerts alerts;
    tw_ar_config cfg;     /* the thresholds of the run */
    PGresult *hops[2];    /* step 3's hops (bulk: [0]; quiet: items, clusters), kept
                           * until the rule ran: the hops point into them */
};

typedef struct job_sched {
    alerts_jobs *jobs;
    int index;
    tw_cron cron;
    int scheduled;        /* a schedule is set */
    int64_t next;         /* the next slot, Unix seconds */
    struct event *timer;
    alerts_run *running;  /* this daemon's run of the job, or NULL */
} job_sched;

struct alerts_jobs {
    alerts_service *svc;
    job_sched sched[JOB_COUNT];
};

static void run_finish(alerts_run *r);

const char *alerts_job_name(int i)
{
    return i >= 0 && i < JOB_COUNT ? job_defs[i].name : NULL;
}

const char *alerts_job_description(int i)
{
    return i >= 0 && i < JOB_COUNT ? job_defs[i].description : NULL;
}

int alerts_job_find(const char *name)
{
    for (int i = 0; i < JOB_COUNT; i++)
        if (!strcmp(job_defs[i].name, name))
            return i;
    return -1;
}

const char *alerts_job_schedule(const alerts_jobs *j, int i)
{
    const alerts_config *cfg = j->svc->cfg;
    return i == JOB_BULK ? cfg->bulk_schedule : cfg->quiet_schedule;
}

int64_t alerts_job_next(const alerts_jobs *j, int i)
{
    return j->sched[i].scheduled ? j->sched[i].next : -1;
}

/* ---- run steps ------------------------------------------------------------- */

static void fail(alerts_run *r, const char *what, const tw_pg_outcome *o)
{
    if (o)
        snprintf(r->message, sizeof r->message, "%s: %s%s%s", what, tw_pg_kind_name(o->kind),
                 o->message[0] ? ": " : "", o->message);
    else
        snprintf(r->message, sizeof r->message, "%s", what);
    r->outcome = "failed";
    TW_ERROR(NULL, "job %s (as of %lld): %s", job_defs[r->job].name, (long long)r->as_of,
             r->message);
}

static void on_unlocked(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    if (o->kind != TW_PG_OK && o->kind != TW_PG_SHUTDOWN)
        TW_WARN(NULL, "job %s: unlock: %s (the session's end releases it)", job_defs[r->job].name,
                o->message);
    run_finish(r);
}

/* Release the lock (if held) and finish. */
static void run_end(alerts_run *r)
{
    tw_pg *pg = r->jobs->svc->jobs_pg;
    if (r->locked) {
        const char *v[] = {r->lock_key};
        if (tw_pg_query(pg, UNLOCK_SQL, 1, v, NULL, NULL, 0, on_unlocked, r) == 0)
            return;
    }
    run_finish(r);
}

static void on_recorded(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    if (o->kind != TW_PG_OK && o->kind != TW_PG_SHUTDOWN)
        TW_ERROR(NULL, "job %s: could not record the run's outcome: %s", job_defs[r->job].name,
                 o->message);
    run_end(r);
}

/* Record a failure on the run's row (when there is one), then end. */
static void run_failed(alerts_run *r, const char *what, const tw_pg_outcome *o)
{
    fail(r, what, o);
    if (r->run_id > 0) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)r->run_id);
        const char *v[] = {id, r->message};
        if (tw_pg_query(r->jobs->svc->jobs_pg, FAILED_SQL, 2, v, NULL, NULL, 0, on_recorded, r) == 0)
            return;
    }
    run_end(r);
}

static void on_raised(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    if (o->kind != TW_PG_OK) {
        run_failed(r, "raising its alerts", o);
        return;
    }
    const PGresult *res = o->results[0];
    r->raised = atoi(PQgetvalue(res, 0, 0));
    r->updated = atoi(PQgetvalue(res, 0, 1));
    r->outcome = "ok";
    TW_INFO(NULL, "job %s as of %lld: %zu alerts evaluated, %d raised, %d updated",
            job_defs[r->job].name, (long long)r->as_of, r->alerts.n, r->raised, r->updated);
    run_end(r);
}

/* Step 5: raise and record the outcome in one statement (one transaction). */
static void run_write(alerts_run *r)
{
    alerts_service *svc = r->jobs->svc;
    alerts_raise_params rp;
    if (alerts_raise_params_build(&rp, &r->alerts, r->cfg.version, job_defs[r->job].name,
                                  r->run_id) != 0) {
        run_failed(r, "out of memory", NULL);
        return;
    }
    rp.values[ALERTS_RAISE_NPARAMS] = r->message;
    int rc = tw_pg_query(svc->jobs_pg, ALERTS_ST_RAISE_RUN, ALERTS_RAISE_NPARAMS + 1, rp.values,
                         rp.lengths, rp.formats, 0, on_raised, r);
    alerts_raise_params_free(&rp);
    if (rc != 0)
        run_failed(r, "could not queue its alerts", NULL);
}

/* Read rows [0, PQntuples) of r, hop columns from col0, into an arena
 * array (*out, *n), their parties looked up in `parties`. Returns 0 or -1. */
static int read_hops(tw_arena *a, const PGresult *r, int col0, const alerts_parties *parties,
                     tw_ar_hop **out, size_t *n)
{
    *n = (size_t)PQntuples(r);
    *out = tw_arena_calloc(a, *n ? *n : 1, sizeof **out);
    if (!*out)
        return -1;
    for (size_t k = 0; k < *n; k++) {
        int64_t corrected_by;
        if (alerts_hop_read(r, (int)k, col0, a, parties, &(*out)[k], &corrected_by) != 0)
            return -1;
    }
    return 0;
}

/* Rule 6 for the clusters of the cluster read (rows by seed, oldest first;
 * hop columns from 3): one call per seed, its members the receivers of its
 * rcv hops and the senders of its snd hops. Seeds of one cluster give the
 * same alert: only the first (rule, subject, hub) is kept. */
static int quiet_clusters(alerts_run *r, const PGresult *res, const tw_ar_hop *hops, size_t n)
{
    alerts_service *svc = r->jobs->svc;
    int64_t *members = tw_arena_calloc(&r->arena, 2 * (n ? n : 1), sizeof *members);
    if (!members)
        return -1;
    size_t first = r->alerts.n;
    for (size_t b = 0; b < n;) {
        const char *seed = PQgetvalue(res, (int)b, 0);
        size_t e = b, nm = 0;
        for (; e < n && !strcmp(PQgetvalue(res, (int)e, 0), seed); e++) {
            if (PQgetvalue(res, (int)e, 1)[0] == '1' && hops[e].to)
                members[nm++] = hops[e].to->party_id;
            if (PQgetvalue(res, (int)e, 2)[0] == '1' && hops[e].from)
                members[nm++] = hops[e].from->party_id;
        }
        if (tw_ar_quiet_cluster(&r->cfg, svc->ctx.hubs, svc->ctx.nhubs, r->as_of, members, nm,
                                hops + b, e - b, &r->alerts) != 0)
            return -1;
        b = e;
    }
    return tw_ar_alerts_dedup(&r->alerts, first);
}

static void on_parties(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    alerts_service *svc = r->jobs->svc;
    if (o->kind != TW_PG_OK) {
        run_failed(r, "reading the parties", o);
        return;
    }
    tw_arena *a = &r->arena;
    alerts_parties parties;
    tw_ar_hop *hops = NULL, *chops = NULL;
    size_t n = 0, nc = 0;
    int rc = -1;
    if (alerts_parties_read(o->results[0], 0, a, &parties) != 0)
        goto done;
    if (r->job == JOB_BULK) {
        if (read_hops(a, r->hops[0], 0, &parties, &hops, &n) != 0)
            goto done;
        if ((int64_t)n >= svc->cfg->job_rows_max)
            snprintf(r->message, sizeof r->message,
                     "read the first %zu hops of the window only (job_rows_max)", n);
        rc = tw_ar_bulk(&r->cfg, svc->ctx.hubs, svc->ctx.nhubs, r->as_of, hops, n, &r->alerts);
    } else {
        if (read_hops(a, r->hops[0], 1, &parties, &hops, &n) != 0 ||
            read_hops(a, r->hops[1], 3, &parties, &chops, &nc) != 0)
            goto done;
        for (size_t k = 0; k < n; k++) /* the item's root */
            hops[k].item_id = strtoll(PQgetvalue(r->hops[0], (int)k, 0), NULL, 10);
        if ((int64_t)n >= svc->cfg->job_rows_max)
            snprintf(r->message, sizeof r->message, "read the first %zu items only (job_rows_max)",
                     n);
        rc = tw_ar_quiet(&r->cfg, svc->ctx.hubs, svc->ctx.nhubs, r->as_of, hops, n, &r->alerts);
        if (rc == 0)
            rc = quiet_clusters(r, r->hops[1], chops, nc);
    }
done:
    if (rc != 0) {
        run_failed(r, "out of memory", NULL);
        return;
    }
    run_write(r);
}

static int cmp_i64p(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Step 3b: the parties the hops name (their distinct ids, a binary
 * bigint[] parameter). */
static void read_parties(alerts_run *r)
{
    alerts_service *svc = r->jobs->svc;
    static const int hop_col0[2][2] = {{0, 0}, {1, 3}}; /* [bulk, quiet][result] */
    size_t total = 0;
    for (int i = 0; i < 2; i++)
        total += r->hops[i] ? (size_t)PQntuples(r->hops[i]) : 0;
    int64_t *ids = tw_arena_calloc(&r->arena, 2 * total + 1, sizeof *ids);
    if (!ids) {
        run_failed(r, "out of memory", NULL);
        return;
    }
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        const PGresult *res = r->hops[i];
        int c = hop_col0[r->job == JOB_BULK ? 0 : 1][i];
        for (int row = 0; res && row < PQntuples(res); row++)
            for (int col = c + 23; col <= c + 28; col += 5) { /* from_party, to_party */
                int64_t id = strtoll(PQgetvalue(res, row, col), NULL, 10);
                if (id > 0)
                    ids[n++] = id;
            }
    }
    qsort(ids, n, sizeof *ids, cmp_i64p);
    tw_pgarray arr = {0};
    tw_pgarray_begin(&arr, TW_OID_INT8);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || ids[i] != ids[i - 1])
            tw_pgarray_int8(&arr, ids[i]);
    if (tw_pgarray_finish(&arr) != 0 || arr.len > 0x7fffffff) {
        tw_pgarray_free(&arr);
        run_failed(r, "out of memory", NULL);
        return;
    }
    char links[24];
    snprintf(links, sizeof links, "%lld", (long long)svc->cfg->links_max);
    const char *v[] = {(const char *)arr.data, links};
    const int lens[] = {(int)arr.len, 0}, fmts[] = {1, 0};
    int rc = tw_pg_query(svc->jobs_pg, PARTIES_SQL, 2, v, lens, fmts, 0, on_parties, r);
    tw_pgarray_free(&arr); /* tw_pg copied the parameters */
    if (rc != 0)
        run_failed(r, "could not queue its read", NULL);
}

static void on_read(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    if (o->kind != TW_PG_OK) {
        run_failed(r, "reading the model", o);
        return;
    }
    for (size_t i = 0; i < o->nresults && i < 2; i++) { /* kept until the rule ran */
        r->hops[i] = o->results[i];
        o->results[i] = NULL;
    }
    read_parties(r);
}

/* Step 3: the hops, in one read-only transaction. */
static void run_read(alerts_run *r)
{
    alerts_service *svc = r->jobs->svc;
    char p_days[16], p_links[24], p_rows[24], p_look[16], p_km[32], p_hist[24];
    snprintf(p_links, sizeof p_links, "%lld", (long long)svc->cfg->links_max);
    snprintf(p_rows, sizeof p_rows, "%lld", (long long)svc->cfg->job_rows_max);
    int rc;
    if (r->job == JOB_BULK) {
        char p_min[16];
        snprintf(p_days, sizeof p_days, "%d", r->cfg.bulk_window_days);
        snprintf(p_min, sizeof p_min, "%d", r->cfg.bulk_min_items);
        const char *v[] = {r->as_of_param, p_days, p_rows, p_min};
        rc = tw_pg_query(svc->jobs_pg, BULK_HOPS_SQL, 4, v, NULL, NULL, 0, on_read, r);
    } else {
        snprintf(p_days, sizeof p_days, "%d", r->cfg.quiet_days);
        snprintf(p_look, sizeof p_look, "%d", r->cfg.quiet_lookback_days);
        snprintf(p_km, sizeof p_km, "%.3f", r->cfg.quiet_within_km);
        snprintf(p_hist, sizeof p_hist, "%lld", (long long)svc->cfg->history_max);
        const char *v[] = {r->as_of_param, p_days, p_look, p_rows, p_km, p_links, p_hist};
        const tw_pg_stmt st[] = {{.stmt = QUIET_SQL, .nparams = 5, .values = v},
                                 {.stmt = QUIET_CLUSTER_SQL, .nparams = 7, .values = v}};
        rc = tw_pg_batch(svc->jobs_pg, st, 2, on_read, r);
    }
    if (rc != 0)
        run_failed(r, "could not queue its read", NULL);
}

static void on_claimed(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    if (o->kind != TW_PG_OK) {
        run_failed(r, "recording its start", o);
        return;
    }
    const PGresult *res = o->results[1];
    if (PQntuples(res) == 0) {
        r->outcome = "skipped";
        snprintf(r->message, sizeof r->message, "slot already run by another daemon");
        TW_INFO(NULL, "job %s as of %lld: already run by another daemon", job_defs[r->job].name,
                (long long)r->as_of);
        run_end(r);
        return;
    }
    r->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    r->started_at = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    run_read(r);
}

static void on_skip_recorded(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    if (o->kind == TW_PG_OK && PQntuples(o->results[0]) == 1) {
        r->run_id = strtoll(PQgetvalue(o->results[0], 0, 0), NULL, 10);
        r->started_at = strtoll(PQgetvalue(o->results[0], 0, 1), NULL, 10);
    } else if (o->kind != TW_PG_SHUTDOWN) {
        TW_ERROR(NULL, "job %s: could not record a skipped run: %s", job_defs[r->job].name,
                 o->message);
    }
    run_finish(r);
}

static void on_locked(const tw_pg_outcome *o, void *arg)
{
    alerts_run *r = arg;
    alerts_service *svc = r->jobs->svc;
    const char *trigger = r->manual ? "manual" : "schedule";
    if (o->kind != TW_PG_OK) {
        fail(r, "taking its lock", o);
        run_finish(r);
        return;
    }
    if (strcmp(PQgetvalue(o->results[0], 0, 0), "t") != 0) {
        r->outcome = "skipped";
        snprintf(r->message, sizeof r->message, "another run of %s holds its lock",
                 job_defs[r->job].name);
        TW_INFO(NULL, "job %s as of %lld: %s", job_defs[r->job].name, (long long)r->as_of,
                r->message);
        const char *v[] = {job_defs[r->job].name, r->as_of_param, trigger, svc->daemon_id,
                           r->message};
        if (tw_pg_query(svc->jobs_pg, SKIPPED_SQL, 5, v, NULL, NULL, 0, on_skip_recorded, r) != 0)
            run_finish(r);
        return;
    }
    r->locked = 1;
    char version[16];
    snprintf(version, sizeof version, "%d", r->cfg.version);
    const char *av[] = {job_defs[r->job].name};
    const char *cv[] = {job_defs[r->job].name, r->as_of_param, trigger, svc->daemon_id, version};
    const tw_pg_stmt st[] = {{.stmt = ABANDON_SQL, .nparams = 1, .values = av},
                             {.stmt = CLAIM_SQL, .nparams = 5, .values = cv}};
    if (tw_pg_batch(svc->jobs_pg, st, 2, on_claimed, r) != 0)
        run_failed(r, "could not queue its start", NULL);
}

/* ---- runs ------------------------------------------------------------------- */

static void run_finish(alerts_run *r)
{
    job_sched *s = &r->jobs->sched[r->job];
    if (s->running == r)
        s->running = NULL;
    alerts_run_result res = {.run_id = r->run_id, .job = job_defs[r->job].name,
                             .as_of = r->as_of, .started_at = r->started_at,
                             .outcome = r->outcome ? r->outcome : "failed",
                             .raised = r->raised, .updated = r->updated,
                             .manual = r->manual, .message = r->message,
                             .daemon = r->jobs->svc->daemon_id};
    if (r->done)
        r->done(r->done_arg, &res);
    tw_ar_alerts_clear(&r->alerts);
    for (int i = 0; i < 2; i++)
        PQclear(r->hops[i]);
    tw_arena_free(&r->arena);
    free(r);
}

int alerts_job_run(alerts_jobs *j, int job, int64_t as_of, int manual, alerts_run_done_fn done,
                   void *arg, char *err, size_t errlen)
{
    alerts_service *svc = j->svc;
    if (job < 0 || job >= JOB_COUNT) {
        snprintf(err, errlen, "no such job");
        return -1;
    }
    job_sched *s = &j->sched[job];
    if (s->running) {
        snprintf(err, errlen, "a run of %s is in progress in this daemon", job_defs[job].name);
        return -2;
    }
    if (!svc->ctx.loaded) {
        alerts_ctx_reload(svc);
        snprintf(err, errlen, "hubs and thresholds are not loaded yet (database unavailable?)");
        return -3;
    }
    alerts_run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -3;
    }
    r->jobs = j;
    r->job = (job_id)job;
    r->as_of = as_of;
    r->manual = manual;
    r->done = done;
    r->done_arg = arg;
    r->cfg = svc->ctx.cfg;
    tw_arena_init(&r->arena, 0);
    snprintf(r->lock_key, sizeof r->lock_key, "%lld", JOB_LOCK_BASE + job);
    snprintf(r->as_of_param, sizeof r->as_of_param, "%lld", (long long)as_of);
    const char *v[] = {r->lock_key};
    if (tw_pg_query(svc->jobs_pg, LOCK_SQL, 1, v, NULL, NULL, 0, on_locked, r) != 0) {
        tw_arena_free(&r->arena);
        free(r);
        snprintf(err, errlen, "could not queue the run");
        return -3;
    }
    s->running = r;
    return 0;
}

/* ---- the schedule --------------------------------------------------------------- */

static void arm(alerts_jobs *j, int i, int64_t after);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_sched *s = arg;
    alerts_jobs *j = s->jobs;
    int i = s->index;
    int64_t now = (int64_t)time(NULL);
    if (now < s->next) { /* woke early (clock change): wait again */
        arm(j, i, s->next - 60);
        return;
    }
    char err[256];
    int64_t slot = s->next;
    int rc = alerts_job_run(j, i, slot, 0, NULL, NULL, err, sizeof err);
    if (rc != 0)
        TW_WARN(NULL, "job %s: slot %lld not run: %s", job_defs[i].name, (long long)slot, err);
    arm(j, i, now > slot ? now : slot);
}

static void arm(alerts_jobs *j, int i, int64_t after)
{
    job_sched *s = &j->sched[i];
    s->next = tw_cron_next(&s->cron, after);
    if (s->next < 0) {
        TW_WARN(NULL, "job %s: its schedule names no time in the next 8 years", job_defs[i].name);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    int64_t wait = s->next > now ? s->next - now : 0;
    struct timeval tv = {.tv_sec = (time_t)wait, .tv_usec = 0};
    if (event_add(s->timer, &tv) != 0)
        TW_ERROR(NULL, "job %s: could not arm its timer", job_defs[i].name);
}

int alerts_jobs_start(alerts_service *svc)
{
    char err[512];
    alerts_jobs *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    j->svc = svc;
    svc->jobs = j;
    tw_pg_opts opts = {.name = "alerts-jobs",
                       .statement_timeout_ms = (int)svc->cfg->job_statement_timeout_ms,
                       .idle_in_xact_timeout_ms = svc->cfg->idle_in_xact_timeout_ms
                                                      ? (int)svc->cfg->idle_in_xact_timeout_ms
                                                      : -1,
                       .jit_off = 1};
    svc->jobs_pg = tw_pg_new(svc->daemon->base, svc->cfg->common.database_url, &opts, err,
                             sizeof err);
    if (!svc->jobs_pg) {
        TW_ERROR(NULL, "database (jobs): %s", err);
        return -1;
    }
    if (alerts_raise_register(svc->jobs_pg) != 0)
        return -1;
    for (int i = 0; i < JOB_COUNT; i++) {
        job_sched *s = &j->sched[i];
        s->jobs = j;
        s->index = i;
        const char *text = alerts_job_schedule(j, i);
        if (!text || !text[0] || !svc->cfg->jobs)
            continue; /* run on demand only */
        if (tw_cron_parse(text, &s->cron, err, sizeof err) != 0) {
            TW_ERROR(NULL, "job %s: schedule \"%s\": %s", job_defs[i].name, text, err);
            return -1;
        }
        s->timer = evtimer_new(svc->daemon->base, on_timer, s);
        if (!s->timer)
            return -1;
        s->scheduled = 1;
        arm(j, i, (int64_t)time(NULL));
    }
    return 0;
}

void alerts_jobs_free(alerts_jobs *j)
{
    if (!j)
        return;
    for (int i = 0; i < JOB_COUNT; i++)
        if (j->sched[i].timer)
            event_free(j->sched[i].timer);
    free(j);
}
