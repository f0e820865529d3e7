/* ProvenanceService.GetChain.
 *
 *   1. validate and normalise the key as ingest does (tw_serial with the
 *      maker, tw_hin for hull numbers), or take the item id;
 *   2. one batch: the chains (roots) the key names, and for a partial
 *      serial ('?' in the key) the non-partial items its SQL prefilter
 *      keeps (LIKE on the loose keys with '?' as any run, length within
 *      what the '?' allow, at most candidate_scan), ranked in C by
 *      tw_candidate;
 *   3. one batch: the items (keys, readings, merges) of the chains and
 *      candidates, the chains' hops (max_hops + 1 each; parties by id), the
 *      parties of those hops (cluster_parties at most, for tw_cluster, and
 *      whose names the hops show), related items;
 *   4. only when a shown hop's party is beyond that cap: those parties;
 *   5. each chain assembled by tw_chain (order, corroboration, facts).
 * NOT_FOUND when the key names no chain and has no candidate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query.h"
#include "sql.h"
#include "tw_candidate.h"
#include "tw_hin.h"
#include "tw_pattern.h"
#include "tw_serial.h"

#define MAKER_MAX 128

typedef struct chain_state {
    int key_kind; /* 1 serial, 2 hull, 0 by id */
    const char *key;
    const char *maker;
    bool partial;
    int64_t max_hops, max_cand;
    int64_t *roots; /* chains */
    size_t nroots;
    int64_t *all; /* chains then candidates */
    size_t nall;
    tw_candidate_result *ranked;
    size_t nranked;
    const char *roots_param;
    int64_t unassembled; /* a chain tw_chain refused (0: none) */
    PGresult *res[7];    /* step 3's results, taken (freed by chain_cleanup) */
    PGresult *extra;     /* step 4's parties, or NULL */
} chain_state;

/* A party row by id (Q_CHAIN_PARTIES' or Q_PARTIES_BY_ID's). */
typedef struct prow {
    int64_t id;
    const PGresult *r;
    int row;
} prow;

typedef struct ptable {
    prow *v;
    size_t n;
} ptable;

static void step_chains(qcall *q, const tw_pg_outcome *o);

/* Rank the prefiltered candidates (rows of Q_CANDIDATES) for the reading. */
static int rank_candidates(qcall *q, chain_state *st, const PGresult *roots, const PGresult *c)
{
    size_t n = (size_t)PQntuples(c);
    if (n == 0)
        return 0;
    tw_candidate_item *items = tw_arena_calloc(&q->arena, n, sizeof *items);
    st->ranked = tw_arena_calloc(&q->arena, n, sizeof *st->ranked);
    if (!items || !st->ranked)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        char *keys = qstr(q, c, row, "keys");
        size_t nk = 1;
        for (char *p = keys; *p; p++)
            nk += *p == ' ';
        const char **kv = tw_arena_calloc(&q->arena, nk, sizeof *kv);
        if (!kv)
            return -1;
        size_t k = 0;
        for (char *tok = strtok(keys, " "); tok && k < nk; tok = strtok(NULL, " "))
            kv[k++] = tok;
        items[i] = (tw_candidate_item){
            .item_id = qi(c, row, "root_id"),
            .keys = kv,
            .nkeys = k,
            .maker = qstr(q, c, row, "maker"),
            .model = qstr(q, c, row, "model"),
            .has_place = !qnull(c, row, "last_lat") && !qnull(c, row, "last_lon"),
            .lat = qd(c, row, "last_lat"),
            .lon = qd(c, row, "last_lon"),
            .has_time = !qnull(c, row, "last_seen_s"),
            .time = qi(c, row, "last_seen_s"),
        };
    }
    /* The reading: the key as typed, the maker given, and where and when the
     * partial reading itself was last seen (when it is a known item). */
    tw_candidate_reading rd = {.key = st->key, .maker = st->maker};
    for (int row = 0; row < PQntuples(roots); row++) {
        if (qi(roots, row, "partial") && !qnull(roots, row, "last_lat")) {
            rd.has_place = true;
            rd.lat = qd(roots, row, "last_lat");
            rd.lon = qd(roots, row, "last_lon");
        }
        if (qi(roots, row, "partial") && !qnull(roots, row, "last_seen_s")) {
            rd.has_time = true;
            rd.time = qi(roots, row, "last_seen_s");
        }
        if (!rd.maker[0])
            rd.maker = qstr(q, roots, row, "maker");
        if (!rd.model)
            rd.model = qstr(q, roots, row, "model");
    }
    size_t plausible = 0;
    char err[TW_CANDIDATE_TEXT_MAX];
    if (tw_candidate_rank(&rd, items, n, NULL, st->ranked, &plausible, err) != TW_CANDIDATE_OK)
        return 0; /* a reading the ranking refuses has no candidates */
    st->nranked = plausible < (size_t)st->max_cand ? plausible : (size_t)st->max_cand;
    return 0;
}

static void step_roots(qcall *q, const tw_pg_outcome *o)
{
    chain_state *st = q->state;
    const PGresult *roots = o->results[0];
    size_t n = (size_t)PQntuples(roots);
    if (st->partial && o->nresults > 1 && rank_candidates(q, st, roots, o->results[1]) != 0) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    st->roots = tw_arena_calloc(&q->arena, n + st->nranked + 1, sizeof *st->roots);
    st->all = st->roots;
    if (!st->roots) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        st->roots[st->nroots++] = qi(roots, (int)i, "root_id");
    st->nall = st->nroots;
    for (size_t i = 0; i < st->nranked; i++) {
        int dup = 0;
        for (size_t j = 0; j < st->nroots; j++)
            dup |= st->roots[j] == st->ranked[i].item_id;
        if (!dup)
            st->all[st->nall++] = st->ranked[i].item_id;
    }
    if (st->nall == 0) {
        Tidewatch__V1__GetChainRequest *req = q->req;
        if (st->key_kind == 0)
            qcall_fail(q, TW_GRPC_NOT_FOUND, "item_id: no item %lld", (long long)req->item_id);
        else
            qcall_fail(q, TW_GRPC_NOT_FOUND, "%s: no item is known by %s%s%s%s",
                       st->key_kind == 1 ? "serial" : "hull_number", st->key,
                       st->maker[0] ? " (maker " : "", st->maker, st->maker[0] ? ")" : "");
        return;
    }
    const query_config *cfg = q->svc->cfg;
    char *all = qrows_id_array(q, st->all, st->nall);
    char *mine = qrows_id_array(q, st->roots, st->nroots);
    char *readings = qfmt(q, "%lld", (long long)(4 * cfg->max_hops));
    char *hops = qfmt(q, "%lld", (long long)(st->max_hops + 1));
    char *cap = qfmt(q, "%lld", (long long)cfg->cluster_parties);
    char *related = qfmt(q, "%lld", (long long)cfg->max_related);
    const char **v = tw_arena_calloc(&q->arena, 16, sizeof *v);
    if (!all || !mine || !readings || !hops || !cap || !related || !v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = all;
    v[1] = readings;
    v[2] = mine;
    v[3] = hops;
    v[4] = mine;
    v[5] = cap;
    v[6] = mine;
    v[7] = related;
    const tw_pg_stmt stmts[] = {
        {.stmt = QROWS_ITEM_SQL[0], .nparams = 1, .values = &v[0]},
        {.stmt = QROWS_ITEM_SQL[1], .nparams = 1, .values = &v[0]},
        {.stmt = QROWS_ITEM_SQL[2], .nparams = 2, .values = &v[0]},
        {.stmt = QROWS_ITEM_SQL[3], .nparams = 1, .values = &v[0]},
        {.stmt = QSQL(Q_CHAIN_HOPS), .nparams = 2, .values = &v[2]},
        {.stmt = QSQL(Q_CHAIN_PARTIES), .nparams = 2, .values = &v[4]},
        {.stmt = QSQL(Q_CHAIN_RELATED), .nparams = 2, .values = &v[6]},
    };
    qcall_sql_generic(q, stmts, sizeof stmts / sizeof stmts[0], step_chains);
}

static Tidewatch__V1__ChainFact *fact_msg(qcall *q, const tw_chain_fact *f)
{
    static const char *const sev[] = {"info", "warning", "inconsistency"};
    Tidewatch__V1__ChainFact *m = tw_arena_alloc(&q->arena, sizeof *m);
    if (!m)
        return NULL;
    tidewatch__v1__chain_fact__init(m);
    m->kind = (char *)(f->kind ? f->kind : "");
    m->severity = (char *)(f->severity <= TW_CHAIN_INCONSISTENCY ? sev[f->severity] : "info");
    m->text = (char *)(f->text ? f->text : "");
    m->n_event_ids = f->n_event_ids;
    m->event_ids = (int64_t *)f->event_ids;
    return m;
}

static int prow_cmp(const void *a, const void *b)
{
    int64_t x = ((const prow *)a)->id, y = ((const prow *)b)->id;
    return (x > y) - (x < y);
}

/* The party rows of r1 and r2 (may be NULL), sorted by id. -1 on ENOMEM. */
static int ptable_build(qcall *q, const PGresult *r1, const PGresult *r2, ptable *t)
{
    size_t n1 = r1 ? (size_t)PQntuples(r1) : 0, n2 = r2 ? (size_t)PQntuples(r2) : 0;
    t->n = 0;
    t->v = tw_arena_calloc(&q->arena, n1 + n2 + 1, sizeof *t->v);
    if (!t->v)
        return -1;
    for (size_t i = 0; i < n1 + n2; i++) {
        const PGresult *r = i < n1 ? r1 : r2;
        int row = (int)(i < n1 ? i : i - n1);
        t->v[t->n++] = (prow){.id = qi(r, row, "party_id"), .r = r, .row = row};
    }
    qsort(t->v, t->n, sizeof *t->v, prow_cmp);
    return 0;
}

static const prow *ptable_find(const ptable *t, int64_t id)
{
    prow key = {.id = id};
    return t->n ? bsearch(&key, t->v, t->n, sizeof *t->v, prow_cmp) : NULL;
}

/* A hop's party (by id from Q_CHAIN_HOPS) gets its name, kind, country,
 * place and role from its row; one without a row keeps them empty. */
static void fill_party(qcall *q, const ptable *t, Tidewatch__V1__PartyRef *pr)
{
    const prow *p = pr ? ptable_find(t, pr->id) : NULL;
    if (!p)
        return;
    pr->name = qstr(q, p->r, p->row, "name");
    pr->kind = (char *)qrows_party_kind((int)qi(p->r, p->row, "kind"));
    pr->country = qstr(q, p->r, p->row, "country");
    pr->place = qstr(q, p->r, p->row, "place");
    pr->role = qstr(q, p->r, p->row, "role");
}

/* Build chain `root` from the batch's rows. NULL on ENOMEM. */
static Tidewatch__V1__Chain *build_chain(qcall *q, chain_state *st, int64_t root,
                                         const qitems *items, const PGresult *rh,
                                         const PGresult *rrel, const qclusters *cl,
                                         const ptable *pt)
{
    Tidewatch__V1__Chain *c = tw_arena_alloc(&q->arena, sizeof *c);
    if (!c)
        return NULL;
    tidewatch__v1__chain__init(c);
    c->item = qitems_find(items, root);
    size_t nh = 0;
    for (int row = 0; row < PQntuples(rh); row++)
        nh += qi(rh, row, "root_id") == root;
    Tidewatch__V1__Hop **hops = tw_arena_calloc(&q->arena, nh ? nh : 1, sizeof *hops);
    if (!hops)
        return NULL;
    size_t k = 0;
    for (int row = 0; row < PQntuples(rh); row++) {
        if (qi(rh, row, "root_id") != root)
            continue;
        if ((int64_t)k >= st->max_hops) {
            c->truncated = true;
            break;
        }
        Tidewatch__V1__Hop *h = qrows_hop(q, rh, row);
        if (!h)
            return NULL;
        fill_party(q, pt, h->from);
        fill_party(q, pt, h->to);
        fill_party(q, pt, h->carrier);
        hops[k++] = h;
    }
    nh = k;
    tw_chain_result res;
    if (qchain_assemble(q, hops, nh, cl, c->item, &res) != 0) {
        st->unassembled = root;
        return NULL;
    }
    c->hops = tw_arena_calloc(&q->arena, res.n ? res.n : 1, sizeof *c->hops);
    c->facts = tw_arena_calloc(&q->arena, res.n_facts ? res.n_facts : 1, sizeof *c->facts);
    if (!c->hops || !c->facts)
        return NULL;
    for (size_t i = 0; i < res.n; i++)
        c->hops[c->n_hops++] = hops[res.order[i].input];
    for (size_t i = 0; i < res.n_facts; i++)
        if (!(c->facts[c->n_facts++] = fact_msg(q, &res.facts[i])))
            return NULL;
    if (res.last >= 0 && (size_t)res.last < res.n) {
        Tidewatch__V1__Hop *last = hops[res.order[res.last].input];
        c->last_custodian = last->to;
        c->last_place = last->place;
    }
    size_t nrel = 0;
    for (int row = 0; row < PQntuples(rrel); row++)
        nrel += qi(rrel, row, "root_id") == root;
    c->related = tw_arena_calloc(&q->arena, nrel ? nrel : 1, sizeof *c->related);
    if (!c->related)
        return NULL;
    for (int row = 0; row < PQntuples(rrel); row++) {
        if (qi(rrel, row, "root_id") != root)
            continue;
        Tidewatch__V1__RelatedItem *ri = tw_arena_alloc(&q->arena, sizeof *ri);
        if (!ri)
            return NULL;
        tidewatch__v1__related_item__init(ri);
        ri->item_id = qi(rrel, row, "other_root");
        ri->relation = qstr(q, rrel, row, "relation");
        ri->key = qstr(q, rrel, row, "key");
        ri->event_id = qi(rrel, row, "event_id");
        ri->detail = qstr(q, rrel, row, "detail");
        c->related[c->n_related++] = ri;
    }
    return c;
}

static void chain_cleanup(qcall *q)
{
    chain_state *st = q->state;
    for (size_t i = 0; i < sizeof st->res / sizeof st->res[0]; i++)
        PQclear(st->res[i]);
    PQclear(st->extra);
}

static void assemble(qcall *q);

static void step_extra(qcall *q, const tw_pg_outcome *o)
{
    chain_state *st = q->state;
    st->extra = o->results[0];
    o->results[0] = NULL;
    assemble(q);
}

/* Step 3's rows: taken, then the parties of shown hops beyond the cap of
 * Q_CHAIN_PARTIES are read (rare: a chain with more parties than
 * cluster_parties), or the chains are assembled now. */
static void step_chains(qcall *q, const tw_pg_outcome *o)
{
    chain_state *st = q->state;
    q->cleanup = chain_cleanup;
    for (size_t i = 0; i < sizeof st->res / sizeof st->res[0] && i < o->nresults; i++) {
        st->res[i] = o->results[i];
        o->results[i] = NULL;
    }
    const PGresult *rh = st->res[4];
    ptable pt;
    int nh = PQntuples(rh);
    int64_t *missing = tw_arena_calloc(&q->arena, 3 * (size_t)nh + 1, sizeof *missing);
    if (!missing || ptable_build(q, st->res[5], NULL, &pt) != 0) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    static const char *const cols[] = {"from_party", "to_party", "carrier_party"};
    size_t nmissing = 0;
    for (int c = 0; c < 3; c++) {
        int col = PQfnumber(rh, cols[c]);
        for (int row = 0; col >= 0 && row < nh; row++) {
            if (PQgetisnull(rh, row, col))
                continue;
            int64_t id = strtoll(PQgetvalue(rh, row, col), NULL, 10);
            int dup = ptable_find(&pt, id) != NULL;
            for (size_t j = 0; !dup && j < nmissing; j++)
                dup = missing[j] == id;
            if (!dup)
                missing[nmissing++] = id;
        }
    }
    if (nmissing == 0) {
        assemble(q);
        return;
    }
    const char *v[1] = {qrows_id_array(q, missing, nmissing)};
    if (!v[0]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_PARTIES_BY_ID), 1, v, step_extra);
}

static void assemble(qcall *q)
{
    chain_state *st = q->state;
    PGresult *const *res = st->res;
    qitems items;
    qclusters cl;
    ptable pt;
    Tidewatch__V1__GetChainResponse resp = TIDEWATCH__V1__GET_CHAIN_RESPONSE__INIT;
    resp.normalized = (char *)(st->key ? st->key : "");
    memset(&cl, 0, sizeof cl);
    if (ptable_build(q, res[5], st->extra, &pt) != 0 || qrows_items(q, res, &items) != 0 ||
        qclusters_build(q, res[5], NULL, TW_CLUSTER_DEFAULT_MAX_NAMES, &cl) != 0) {
        qclusters_free(&cl);
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    resp.chains = tw_arena_calloc(&q->arena, st->nroots + 1, sizeof *resp.chains);
    resp.candidates = tw_arena_calloc(&q->arena, st->nranked + 1, sizeof *resp.candidates);
    int ok = resp.chains && resp.candidates;
    for (size_t i = 0; ok && i < st->nroots; i++) {
        Tidewatch__V1__Chain *c =
            build_chain(q, st, st->roots[i], &items, res[4], res[6], &cl, &pt);
        if (!c)
            ok = 0;
        else if (c->item) /* vanished between the two batches: left out */
            resp.chains[resp.n_chains++] = c;
    }
    qclusters_free(&cl);
    for (size_t i = 0; ok && i < st->nranked; i++) {
        const tw_candidate_result *r = &st->ranked[i];
        Tidewatch__V1__Item *it = qitems_find(&items, r->item_id);
        int mine = 0;
        for (size_t j = 0; j < st->nroots; j++)
            mine |= st->roots[j] == r->item_id;
        if (!it || mine)
            continue;
        Tidewatch__V1__Candidate *c = tw_arena_alloc(&q->arena, sizeof *c);
        if (!c) {
            ok = 0;
            break;
        }
        tidewatch__v1__candidate__init(c);
        c->item = it;
        c->score = r->score;
        c->probable = r->kind == TW_CANDIDATE_PROBABLE;
        c->reason = tw_arena_strdup(&q->arena, r->reason);
        c->reading = (char *)st->key;
        resp.candidates[resp.n_candidates++] = c;
    }
    if (!ok && st->unassembled) {
        qcall_fail(q, TW_GRPC_INTERNAL, "chain assembly refused the hops of item %lld",
                   (long long)st->unassembled);
        return;
    }
    if (!ok) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (resp.n_chains == 0 && resp.n_candidates == 0) {
        qcall_fail(q, TW_GRPC_NOT_FOUND, "no item is known by %s", st->key ? st->key : "that id");
        return;
    }
    qcall_reply(q, &resp.base, (long)(resp.n_chains + resp.n_candidates));
}

void query_get_chain(qcall *q)
{
    Tidewatch__V1__GetChainRequest *req = q->req;
    const query_config *cfg = q->svc->cfg;
    chain_state *st = tw_arena_calloc(&q->arena, 1, sizeof *st);
    if (!st) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    q->state = st;
    int given = (req->serial[0] != 0) + (req->hull_number[0] != 0) + (req->item_id != 0);
    if (given == 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "serial, hull_number, item_id: give one of them (none given)");
        return;
    }
    if (given > 1) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "serial, hull_number, item_id: give only one of them (%d given)", given);
        return;
    }
    if (req->max_hops < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "max_hops: must not be negative (got %d)",
                   req->max_hops);
        return;
    }
    if (req->max_candidates < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "max_candidates: must not be negative (got %d)",
                   req->max_candidates);
        return;
    }
    if (req->item_id < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "item_id: must be positive (got %lld)",
                   (long long)req->item_id);
        return;
    }
    const char *why = qfield_error(req->maker, MAKER_MAX);
    if (why) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "maker: %s", why);
        return;
    }
    st->max_hops = qlimit(req->max_hops, cfg->max_hops, cfg->max_hops);
    st->max_cand = qlimit(req->max_candidates, 10, cfg->max_candidates);
    st->maker = "";
    const char *v[4];
    char kk[8], lim[24], a[24], b[24], scan[24];
    snprintf(lim, sizeof lim, "%lld", (long long)cfg->max_chains);
    if (req->item_id) {
        snprintf(a, sizeof a, "%lld", (long long)req->item_id);
        v[0] = a;
        qcall_sql1(q, QSQL(Q_ROOTS_BY_ID), 1, v, step_roots);
        return;
    }
    if (req->serial[0]) {
        if ((why = qfield_error(req->serial, TW_SERIAL_RAW_MAX))) {
            qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "serial: %s (at most %d bytes)", why,
                       TW_SERIAL_RAW_MAX);
            return;
        }
        tw_serial s;
        if (tw_serial_normalize(req->serial, strlen(req->serial), req->maker, &s) !=
            TW_SERIAL_OK) {
            qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "serial: %s", s.error_text);
            return;
        }
        st->key_kind = 1;
        st->key = tw_arena_strdup(&q->arena, s.key);
        st->partial = s.partial;
        tw_serial_maker mk = tw_serial_maker_parse(req->maker);
        st->maker = mk == TW_SERIAL_MAKER_UNKNOWN ? ""
                    : mk == TW_SERIAL_MAKER_OTHER ? req->maker
                                                  : tw_serial_maker_name(mk);
    } else {
        if ((why = qfield_error(req->hull_number, TW_SERIAL_RAW_MAX))) {
            qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hull_number: %s (at most %d bytes)", why,
                       TW_SERIAL_RAW_MAX);
            return;
        }
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        tw_hin h;
        if (tw_hin_decode(req->hull_number, strlen(req->hull_number), tm.tm_year + 1900, &h) !=
            TW_HIN_OK) {
            qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hull_number: %s", h.error_text);
            return;
        }
        st->key_kind = 2;
        st->key = tw_arena_strdup(&q->arena, h.key);
        st->partial = false; /* candidates are ranked for serial readings */
    }
    if (!st->key) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    snprintf(kk, sizeof kk, "%d", st->key_kind);
    v[0] = kk;
    v[1] = st->key;
    v[2] = st->maker;
    v[3] = lim;
    tw_pg_stmt stmts[2] = {{.stmt = QSQL(Q_ROOTS_BY_KEY), .nparams = 4, .values = v}};
    size_t n = 1;
    tw_pattern pat;
    const char *cv[4];
    if (st->partial &&
        tw_pattern_compile(st->key, strlen(st->key), &pat, NULL, 0) == 0) {
        size_t len = strlen(st->key);
        snprintf(a, sizeof a, "%zu", len - pat.singles);
        snprintf(b, sizeof b, "%zu", len);
        snprintf(scan, sizeof scan, "%lld", (long long)cfg->candidate_scan);
        cv[0] = pat.like_gaps;
        cv[1] = a;
        cv[2] = b;
        cv[3] = scan;
        stmts[n++] = (tw_pg_stmt){.stmt = QSQL(Q_CANDIDATES), .nparams = 4, .values = cv};
    }
    qcall_sql(q, stmts, n, step_roots);
}
