/* The real-time rules: a log consumer that never runs ahead of provenance
 * (tw_consumer's upstream), so every event it evaluates has its derived
 * rows. Per batch, two reads (prepare) fetch
 *   - the history of every subject the batch touches: each item (all the
 *     items merged into its root), each consignment, and each receiving
 *     party's cluster (the parties sharing an identifier, or a name at an
 *     address, with it), none after the batch's last event, enough of the
 *     newest that each event sees the history_max newest before it;
 *   - what was known of the batch's parties before their event (trading
 *     history, seizure links, identifiers);
 * and apply evaluates tw_ar_realtime() event by event, in log order, each
 * time on the history as it stood when that event was applied: hops of
 * later events, corrections made later and merges made later are left
 * out. A replay from the start therefore raises what the live run raised
 * (the model provenance has built since can only add what is filtered
 * out). Alerts go to alert_raise() in the batch's transaction, with the
 * cursor: a crash loses and doubles nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts.h"
#include "rows.h"
#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_pgarray.h"

#define ACTIVE_AT_BATCH "(h.status = 0 OR h.corrected_by IS NOT NULL)"

static const char RT_HOPS_SQL[] =
    "WITH ev AS (SELECT DISTINCT unnest($1::bigint[]) AS event_id), "
    "nh AS (SELECT h.item_id, h.consignment_ref, h.to_party FROM prov_hops h JOIN ev USING (event_id)), "
    "ig AS (SELECT DISTINCT it.root_id FROM nh JOIN prov_items it ON it.item_id = nh.item_id), "
    "mem AS (SELECT ig.root_id, it.item_id, CASE WHEN it.item_id = ig.root_id THEN 0 ELSE "
    " coalesce((SELECT max(m.event_id) FROM prov_merges m WHERE m.item_id = it.item_id "
    " AND m.undone_by IS NULL), 0) END AS since "
    " FROM ig JOIN prov_items it ON it.root_id = ig.root_id), "
    "cg AS (SELECT DISTINCT consignment_ref FROM nh WHERE consignment_ref <> ''), "
    "bp AS (SELECT DISTINCT p.party_id, p.event_id, p.kind, p.name_key, p.address_key FROM nh "
    " JOIN prov_parties p ON p.party_id = nh.to_party WHERE p.kind <> 3), "
    "pl AS (SELECT bp.party_id AS pid, bp.party_id AS other FROM bp UNION "
    " SELECT bp.party_id, x FROM bp " ALERTS_PARTY_LINKS("$4") " CROSS JOIN LATERAL unnest(l.others) x), "
    "sel AS (SELECT 'i' AS tag, mem.root_id::text AS gkey, mem.item_id AS member, mem.since, "
    " h.event_id AS eid, h.line AS ln FROM mem JOIN prov_hops h ON h.item_id = mem.item_id "
    " WHERE h.event_id <= $2 AND " ACTIVE_AT_BATCH
    " UNION ALL SELECT 'c', cg.consignment_ref, 0, 0, h.event_id, h.line FROM cg "
    " JOIN prov_hops h ON h.consignment_ref = cg.consignment_ref "
    " WHERE h.event_id <= $2 AND " ACTIVE_AT_BATCH
    " UNION ALL SELECT 'p', pl.pid::text, 0, 0, h.event_id, h.line FROM pl "
    " JOIN prov_hops h ON h.to_party = pl.other WHERE h.event_id <= $2 AND " ACTIVE_AT_BATCH "), "
    "ranked AS (SELECT sel.*, row_number() OVER w AS rn, "
    " count(*) FILTER (WHERE eid = ANY ($1::bigint[])) OVER (PARTITION BY tag, gkey) AS nb "
    " FROM sel WINDOW w AS (PARTITION BY tag, gkey ORDER BY eid DESC, ln DESC)) "
    "SELECT r.tag, r.gkey, r.member, r.since, " ALERTS_HOP_COLS
    " FROM ranked r JOIN prov_hops h ON h.event_id = r.eid AND h.line = r.ln "
    " LEFT JOIN prov_items it ON it.item_id = h.item_id "
    " LEFT JOIN prov_parties f ON f.party_id = h.from_party "
    " LEFT JOIN prov_parties t ON t.party_id = h.to_party "
    "WHERE r.rn <= $3 + r.nb ORDER BY r.tag, r.gkey, h.event_id, h.line";

static const char RT_PARTIES_SQL[] =
    "WITH ev AS (SELECT DISTINCT unnest($1::bigint[]) AS event_id), "
    "bp AS (SELECT DISTINCT p.party_id, p.event_id, p.kind, p.name, p.name_key, p.address_key, "
    " p.lat, p.lon FROM prov_hops h JOIN ev USING (event_id) "
    " JOIN prov_parties p ON p.party_id IN (h.from_party, h.to_party)) "
    "SELECT " ALERTS_PARTY_COLS " FROM bp " ALERTS_PARTY_LINKS("$2") ALERTS_PARTY_TRADE;

/* One row of the hops read. */
typedef struct rt_row {
    char tag;          /* 'i' item, 'c' consignment, 'p' party cluster */
    const char *gkey;  /* root item id, consignment ref, receiving party id */
    int64_t member;    /* 'i': the item the hop names */
    int64_t since;     /* 'i': the event from which that item is in the group */
    int64_t corrected_by;
    tw_ar_hop hop;     /* with its parties as the row gives them (no history) */
    const tw_ar_party *from, *to; /* the parties with their history, when read */
} rt_row;

/* One evaluation: a group at an event of the batch. */
typedef struct rt_task {
    int64_t event_id;
    size_t group;      /* index of its first row */
    size_t end;        /* one past its last row */
    size_t order;      /* tie-break: group order */
} rt_task;

typedef struct rt_state {
    tw_arena arena;
    char ids_param[24], max_param[24], hist_param[24], links_param[24];
    tw_pgarray ids;
} rt_state;

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static int cmp_task(const void *x, const void *y)
{
    const rt_task *a = x, *b = y;
    if (a->event_id != b->event_id)
        return (a->event_id > b->event_id) - (a->event_id < b->event_id);
    return (a->order > b->order) - (a->order < b->order);
}

static int prepare(void *arg, const tw_consumer_event *ev, size_t n, tw_consumer_writes *reads)
{
    alerts_service *svc = arg;
    rt_state *st = svc->rt;
    if (!svc->ctx.loaded) {
        alerts_ctx_reload(svc);
        TW_INFO(NULL, "waiting for hubs and thresholds before evaluating events");
        return -1;
    }
    tw_pgarray_free(&st->ids);
    tw_pgarray_begin(&st->ids, TW_OID_INT8);
    int64_t max = 0;
    for (size_t i = 0; i < n; i++) {
        tw_pgarray_int8(&st->ids, ev[i].id);
        if (ev[i].id > max)
            max = ev[i].id;
    }
    if (tw_pgarray_finish(&st->ids) != 0 || st->ids.len > 0x7fffffff)
        return -1;
    snprintf(st->max_param, sizeof st->max_param, "%lld", (long long)max);
    snprintf(st->hist_param, sizeof st->hist_param, "%lld", (long long)svc->cfg->history_max);
    snprintf(st->links_param, sizeof st->links_param, "%lld", (long long)svc->cfg->links_max);
    const char *hv[] = {(const char *)st->ids.data, st->max_param, st->hist_param, st->links_param};
    const int hl[] = {(int)st->ids.len, 0, 0, 0};
    const int hf[] = {1, 0, 0, 0};
    const char *pv[] = {(const char *)st->ids.data, st->links_param};
    const int pl[] = {(int)st->ids.len, 0};
    const int pf[] = {1, 0};
    /* SQL text, not prepared statements: planned for each batch's values.
     * A generic plan made while the tables were small stays bad as they
     * grow (a batch then took tens of seconds instead of one). */
    if (tw_consumer_writes_add(reads, &(tw_pg_stmt){.stmt = RT_HOPS_SQL, .nparams = 4, .values = hv,
                                                     .lengths = hl, .formats = hf}) != 0 ||
        tw_consumer_writes_add(reads, &(tw_pg_stmt){.stmt = RT_PARTIES_SQL, .nparams = 2,
                                                     .values = pv, .lengths = pl, .formats = pf}) != 0)
        return -1;
    return 0;
}

/* The subject of an item group at event e: the root while the new hop's
 * item already belonged to it, else that item alone (it was merged later).
 * Sets *only to restrict the history to that item (0: none). */
static const char *item_subject(const rt_row *rows, size_t b, size_t end, int64_t e,
                                tw_arena *a, int64_t *only)
{
    *only = 0;
    for (size_t i = b; i < end; i++) {
        if (rows[i].hop.event_id != e)
            continue;
        if (rows[i].since > e) {
            *only = rows[i].member;
            return tw_arena_printf(a, "%lld", (long long)rows[i].member);
        }
        break;
    }
    return rows[b].gkey;
}

/* Evaluate one task into out. Returns 0 or -1 (out of memory). */
static int eval_task(alerts_service *svc, const rt_row *rows, const rt_task *t,
                     const alerts_parties *parties, tw_ar_hop *hist, tw_ar_alerts *out)
{
    tw_arena *a = &((rt_state *)svc->rt)->arena;
    const int64_t e = t->event_id;
    const rt_row *first = &rows[t->group];
    int64_t only = 0;
    const char *subject = first->gkey;
    tw_ar_subject_kind kind = TW_AR_SUBJECT_CONSIGNMENT;
    char key[512];
    if (first->tag == 'i') {
        kind = TW_AR_SUBJECT_ITEM;
        subject = item_subject(rows, t->group, t->end, e, a, &only);
        if (!subject)
            return -1;
    } else if (first->tag == 'p') {
        kind = TW_AR_SUBJECT_CLUSTER;
        const tw_ar_party *p = alerts_parties_find(parties, strtoll(first->gkey, NULL, 10));
        if (!p)
            return 0; /* not read (cannot happen: it is a party of the batch) */
        subject = tw_ar_party_key(p, key, sizeof key);
    }
    size_t n = 0;
    for (size_t i = t->group; i < t->end; i++) {
        const rt_row *r = &rows[i];
        if (r->hop.event_id > e || (r->corrected_by != 0 && r->corrected_by <= e))
            continue;
        if (r->tag == 'i' && (only ? r->member != only : r->since > e))
            continue;
        hist[n] = r->hop;
        /* What was known of the parties before their event is read for the
         * batch's own events only; the new hops carry it, history hops
         * never (a replay's larger batches would otherwise see more). */
        if (r->hop.event_id == e) {
            hist[n].from = r->from;
            hist[n].to = r->to;
        }
        n++;
    }
    if (n == 0)
        return 0;
    /* The newest history_max as of e (the read kept enough for every
     * event of the batch): the same history live and in a replay. */
    size_t max = (size_t)svc->cfg->history_max;
    if (n > max) {
        memmove(hist, hist + (n - max), max * sizeof *hist);
        n = max;
    }
    return tw_ar_realtime(&svc->ctx.cfg, svc->ctx.hubs, svc->ctx.nhubs, kind, subject, e, hist, n,
                          out);
}

static int apply(void *arg, const tw_consumer_event *ev, size_t n, const PGresult *const *reads,
                 size_t nreads, tw_consumer_writes *w)
{
    alerts_service *svc = arg;
    rt_state *st = svc->rt;
    tw_arena *a = &st->arena;
    tw_ar_alerts out = {0};
    alerts_raise_params rp = {0};
    int rc = -1;
    tw_arena_reset(a);
    if (nreads != 2) {
        TW_ERROR(NULL, "expected 2 reads, got %zu", nreads);
        return -1;
    }
    const PGresult *hr = reads[0];
    alerts_parties parties;
    if (alerts_parties_read(reads[1], 0, a, &parties) != 0)
        goto oom;
    size_t nrows = (size_t)PQntuples(hr);
    rt_row *rows = tw_arena_calloc(a, nrows ? nrows : 1, sizeof *rows);
    tw_ar_hop *hist = tw_arena_calloc(a, nrows ? nrows : 1, sizeof *hist);
    rt_task *tasks = tw_arena_calloc(a, nrows ? nrows : 1, sizeof *tasks);
    if (!rows || !hist || !tasks)
        goto oom;
    for (size_t i = 0; i < nrows; i++) {
        rt_row *r = &rows[i];
        r->tag = PQgetvalue(hr, (int)i, 0)[0];
        r->gkey = PQgetvalue(hr, (int)i, 1);
        r->member = strtoll(PQgetvalue(hr, (int)i, 2), NULL, 10);
        r->since = strtoll(PQgetvalue(hr, (int)i, 3), NULL, 10);
        if (alerts_hop_read(hr, (int)i, 4, a, NULL, &r->hop, &r->corrected_by) != 0)
            goto oom;
        const tw_ar_party *f = r->hop.from ? alerts_parties_find(&parties, r->hop.from->party_id) : NULL;
        const tw_ar_party *t = r->hop.to ? alerts_parties_find(&parties, r->hop.to->party_id) : NULL;
        r->from = f ? f : r->hop.from;
        r->to = t ? t : r->hop.to;
    }
    /* Groups are runs of (tag, gkey), rows by event id within; one task
     * per group and event of this batch present in it (rows of earlier
     * events are history only). */
    int64_t *batch = tw_arena_calloc(a, n, sizeof *batch);
    if (!batch)
        goto oom;
    for (size_t k = 0; k < n; k++)
        batch[k] = ev[k].id;
    qsort(batch, n, sizeof *batch, cmp_id);
    size_t ntasks = 0, order = 0;
    for (size_t b = 0; b < nrows;) {
        size_t end = b + 1;
        while (end < nrows && rows[end].tag == rows[b].tag && !strcmp(rows[end].gkey, rows[b].gkey))
            end++;
        /* A party's cluster is evaluated at that party's own event only
         * (party ids are event id * 1024 + role), as a live run does: the
         * earlier hops of its linked parties are history, not new. */
        int64_t only_event = rows[b].tag == 'p' ? strtoll(rows[b].gkey, NULL, 10) / 1024 : -1;
        int64_t last = -1;
        for (size_t i = b; i < end; i++) {
            int64_t e = rows[i].hop.event_id;
            if (e == last || (only_event >= 0 && e != only_event) ||
                !bsearch(&e, batch, n, sizeof *batch, cmp_id))
                continue;
            tasks[ntasks++] = (rt_task){.event_id = e, .group = b, .end = end, .order = order};
            last = e;
        }
        order++;
        b = end;
    }
    qsort(tasks, ntasks, sizeof *tasks, cmp_task);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < ntasks; i++) {
        if (eval_task(svc, rows, &tasks[i], &parties, hist, &out) != 0)
            goto oom;
        if (out.n >= (size_t)svc->cfg->batch_alerts_max) {
            TW_WARN(NULL, "a batch raised %zu alerts, the most batch_alerts_max allows; the rest "
                    "of events %lld..%lld are not evaluated",
                    out.n, (long long)tasks[i].event_id, (long long)ev[n - 1].id);
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    TW_DEBUG(NULL, "batch of %zu events: %zu rows, %zu parties, %zu evaluations, %zu alerts, "
             "%.1f ms evaluating", n, nrows, parties.n, ntasks, out.n,
             (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    if (out.n > 0) {
        if (alerts_raise_params_build(&rp, &out, svc->ctx.cfg.version, "", 0) != 0)
            goto oom;
        if (tw_consumer_writes_add(w, &(tw_pg_stmt){.stmt = ALERTS_ST_RAISE,
                                                     .nparams = ALERTS_RAISE_NPARAMS,
                                                     .values = rp.values, .lengths = rp.lengths,
                                                     .formats = rp.formats}) != 0)
            goto oom;
        svc->raised += out.n;
    }
    rc = 0;
    goto done;
oom:
    TW_ERROR(NULL, "out of memory evaluating a batch of %zu events", n);
done:
    alerts_raise_params_free(&rp);
    tw_ar_alerts_clear(&out);
    tw_arena_reset(a);
    return rc;
}

static void on_db_state(void *arg, int up)
{
    alerts_service *svc = arg;
    tw_daemon_db_state(svc->daemon, ALERTS_SERVICE, &svc->db_up, up);
}

int alerts_realtime_start(alerts_service *svc)
{
    char err[512];
    const alerts_config *cfg = svc->cfg;
    rt_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    tw_arena_init(&st->arena, 0);
    svc->rt = st;
    tw_pg_opts opts = {.name = ALERTS_CONSUMER, .on_state = on_db_state, .state_arg = svc,
                       .statement_timeout_ms = (int)cfg->statement_timeout_ms,
                       .idle_in_xact_timeout_ms = cfg->idle_in_xact_timeout_ms
                                                      ? (int)cfg->idle_in_xact_timeout_ms
                                                      : -1,
                       .jit_off = 1};
    svc->pg = tw_pg_new(svc->daemon->base, cfg->common.database_url, &opts, err, sizeof err);
    if (!svc->pg) {
        TW_ERROR(NULL, "database: %s", err);
        return -1;
    }
    if (alerts_raise_register(svc->pg) != 0) {
        TW_ERROR(NULL, "could not register statements");
        return -1;
    }
    if (alerts_ctx_start(svc) != 0)
        return -1;
    if (!cfg->realtime) {
        TW_INFO(NULL, "real-time rules off (--realtime=false): scheduled jobs only");
        /* Health follows the connection all the same (on_db_state). */
        return 0;
    }
    tw_consumer_opts co = {.name = ALERTS_CONSUMER, .upstream = ALERTS_UPSTREAM,
                           .batch_max = (int)cfg->batch_max, .poll_ms = (int)cfg->poll_ms,
                           .metrics = svc->daemon->metrics, .prepare = prepare};
    svc->consumer = tw_consumer_new(svc->daemon->base, svc->pg, &co, apply, svc, err, sizeof err);
    if (!svc->consumer) {
        TW_ERROR(NULL, "consumer: %s", err);
        return -1;
    }
    return 0;
}

void alerts_realtime_free(alerts_service *svc)
{
    rt_state *st = svc->rt;
    if (!st)
        return;
    tw_pgarray_free(&st->ids);
    tw_arena_free(&st->arena);
    free(st);
    svc->rt = NULL;
}
