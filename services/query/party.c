/* ProvenanceService.GetParty, TraceBack and TraceForward.
 *
 * GetParty: a breadth-first search in SQL from the party over shared
 * identifiers (phone, e-mail, VAT, company number, identity document; one
 * carried by more than TW_CLUSTER_DEFAULT_MAX_NAMES names is not followed)
 * and the same kind, name and address, at most cluster_parties parties;
 * then tw_cluster over what it found, plus carriers of the too common
 * identifiers (so that it reports them), gives the cluster of the party,
 * the links that tied it and the identifiers too common to link. The
 * cluster's hops follow, in chain order.
 *
 * TraceBack: the event (by id or reference), the chains with a hop in it
 * and every hop of theirs up to it; line items without serials in it are
 * listed as unidentified.
 *
 * TraceForward: from an event (a purchase) or a party's cluster (what it
 * received), the chains and their hops from then on, and transitively the
 * chains the receivers (and the parties tied to them) passed on later, up
 * to max_depth handoffs (capped by trace_depth), at most max_items chains
 * (capped by trace_items). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "query.h"
#include "sql.h"

/* ---- shared --------------------------------------------------------------- */

static int64_t *party_ids(qcall *q, const PGresult *r, size_t *n)
{
    *n = (size_t)PQntuples(r);
    int64_t *ids = tw_arena_calloc(&q->arena, *n + 1, sizeof *ids);
    for (size_t i = 0; ids && i < *n; i++)
        ids[i] = qi(r, (int)i, "party_id");
    return ids;
}

/* The members of the cluster holding party `id` (indices into cl->p), in
 * *out (arena). Returns the count, 0 when it is not there. */
static size_t cluster_members(qcall *q, const qclusters *cl, int64_t id, size_t **out)
{
    *out = NULL;
    int64_t c = qclusters_of(cl, id);
    if (c == 0)
        return 0;
    const tw_cluster *k = &cl->res->clusters[c - 1];
    size_t *m = tw_arena_calloc(&q->arena, k->n_members + 1, sizeof *m);
    if (!m)
        return 0;
    for (size_t i = 0; i < k->n_members; i++)
        m[i] = cl->res->members[k->first_member + i].input_index;
    *out = m;
    return k->n_members;
}

static bool member(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* ---- GetParty ----------------------------------------------------------------- */

typedef struct party_state {
    int64_t id, cap, max_hops;
    PGresult *bfs; /* kept from the first batch */
    bool truncated;
} party_state;

static void party_cleanup(qcall *q)
{
    party_state *st = q->state;
    PQclear(st->bfs);
    st->bfs = NULL;
}

static void party_done(qcall *q, const tw_pg_outcome *o)
{
    party_state *st = q->state;
    qclusters cl;
    Tidewatch__V1__GetPartyResponse resp = TIDEWATCH__V1__GET_PARTY_RESPONSE__INIT;
    if (qclusters_build(q, st->bfs, o->results[0], TW_CLUSTER_DEFAULT_MAX_NAMES, &cl) != 0) {
        qclusters_free(&cl);
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    int ok = 1;
    size_t *m;
    size_t nm = cluster_members(q, &cl, st->id, &m);
    int64_t *ids = tw_arena_calloc(&q->arena, nm + 1, sizeof *ids);
    resp.cluster = tw_arena_calloc(&q->arena, nm + 1, sizeof *resp.cluster);
    ok = ids && resp.cluster && nm > 0;
    for (size_t i = 0; ok && i < nm; i++) {
        ids[i] = cl.p[m[i]].party_id;
        Tidewatch__V1__PartyIdentity *pi = qclusters_identity(q, &cl, m[i]);
        if (!pi) {
            ok = 0;
            break;
        }
        if (ids[i] == st->id)
            resp.party = pi;
        resp.cluster[resp.n_cluster++] = pi;
    }
    if (ok) {
        const tw_cluster *k = &cl.res->clusters[qclusters_of(&cl, st->id) - 1];
        resp.links = tw_arena_calloc(&q->arena, k->n_links + 1, sizeof *resp.links);
        ok = resp.links != NULL;
        for (size_t i = 0; ok && i < k->n_links; i++) {
            const tw_cluster_link *l = &cl.res->links[k->first_link + i];
            Tidewatch__V1__ClusterLink *cl_msg = tw_arena_alloc(&q->arena, sizeof *cl_msg);
            if (!cl_msg) {
                ok = 0;
                break;
            }
            tidewatch__v1__cluster_link__init(cl_msg);
            cl_msg->party_a = cl.p[cl.res->members[l->a].input_index].party_id;
            cl_msg->party_b = cl.p[cl.res->members[l->b].input_index].party_id;
            cl_msg->kind = (char *)(l->via == TW_CLUSTER_VIA_NAME_ADDRESS
                                        ? "name_address"
                                        : tw_cluster_id_kind_name(l->id_kind));
            cl_msg->value = tw_arena_strdup(&q->arena, l->value ? l->value : "");
            if (l->via == TW_CLUSTER_VIA_NAME_ADDRESS && l->address && l->address[0])
                cl_msg->value = qfmt(q, "%s @ %s", l->value ? l->value : "", l->address);
            resp.links[resp.n_links++] = cl_msg;
        }
    }
    /* identifiers of the cluster shared too widely to link */
    if (ok) {
        resp.too_common =
            tw_arena_calloc(&q->arena, cl.res->n_too_common + 1, sizeof *resp.too_common);
        ok = resp.too_common != NULL;
        for (size_t t = 0; ok && t < cl.res->n_too_common; t++) {
            const tw_cluster_common *c = &cl.res->too_common[t];
            bool mine = false;
            for (size_t i = 0; i < nm && !mine; i++)
                for (size_t j = 0; j < cl.p[m[i]].nids && !mine; j++)
                    mine = cl.p[m[i]].ids[j].kind == c->kind &&
                           strcmp(cl.p[m[i]].ids[j].value, c->value) == 0;
            if (!mine)
                continue;
            char *s = qfmt(q, "%s %s (%zu names)", tw_cluster_id_kind_name(c->kind), c->value,
                           c->names);
            if (!s)
                ok = 0;
            else
                resp.too_common[resp.n_too_common++] = s;
        }
    }
    qclusters_free(&cl);
    const PGresult *rh = o->results[1];
    resp.hops = tw_arena_calloc(&q->arena, (size_t)PQntuples(rh) + 1, sizeof *resp.hops);
    ok = ok && resp.hops;
    for (int row = 0; ok && row < PQntuples(rh); row++) {
        if (!member(ids, nm, qi(rh, row, "from_party")) &&
            !member(ids, nm, qi(rh, row, "to_party")) &&
            !member(ids, nm, qi(rh, row, "carrier_party")))
            continue;
        if ((int64_t)resp.n_hops >= st->max_hops) {
            st->truncated = true;
            break;
        }
        if (!(resp.hops[resp.n_hops++] = qrows_hop(q, rh, row)))
            ok = 0;
    }
    if (!ok || !resp.party) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    resp.truncated = st->truncated;
    qcall_reply(q, &resp.base, (long)resp.n_cluster);
}

static void party_bfs(qcall *q, const tw_pg_outcome *o)
{
    party_state *st = q->state;
    st->bfs = o->results[0];
    o->results[0] = NULL;
    size_t n;
    if (PQntuples(st->bfs) == 0) {
        qcall_fail(q, TW_GRPC_NOT_FOUND, "party_id: no party %lld", (long long)st->id);
        return;
    }
    if (PQntuples(st->bfs) > st->cap)
        st->truncated = true; /* the one past the cap is kept: it is harmless */
    int64_t *ids = party_ids(q, st->bfs, &n);
    char *arr = ids ? qrows_id_array(q, ids, n) : NULL;
    char *names = qfmt(q, "%d", TW_CLUSTER_DEFAULT_MAX_NAMES);
    char *hops = qfmt(q, "%lld", (long long)(st->max_hops * 4 + 1));
    const char **v = tw_arena_calloc(&q->arena, 4, sizeof *v);
    if (!arr || !names || !hops || !v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = arr;
    v[1] = names;
    v[2] = arr;
    v[3] = hops;
    const tw_pg_stmt stmts[] = {
        {.stmt = QSQL(Q_PARTY_COMMON), .nparams = 2, .values = &v[0]},
        {.stmt = QSQL(Q_PARTY_HOPS), .nparams = 2, .values = &v[2]},
    };
    qcall_sql(q, stmts, 2, party_done);
}

void query_get_party(qcall *q)
{
    Tidewatch__V1__GetPartyRequest *req = q->req;
    const query_config *cfg = q->svc->cfg;
    party_state *st = tw_arena_calloc(&q->arena, 1, sizeof *st);
    if (!st) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    q->state = st;
    q->cleanup = party_cleanup;
    if (req->party_id <= 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "party_id: required (a positive id), got %lld",
                   (long long)req->party_id);
        return;
    }
    if (req->max_hops < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "max_hops: must not be negative (got %d)",
                   req->max_hops);
        return;
    }
    st->id = req->party_id;
    st->cap = cfg->cluster_parties;
    st->max_hops = qlimit(req->max_hops, cfg->max_hops, cfg->max_hops);
    const char *v[3] = {qfmt(q, "%lld", (long long)st->id),
                        qfmt(q, "%lld", (long long)st->cap + 1),
                        qfmt(q, "%d", TW_CLUSTER_DEFAULT_MAX_NAMES)};
    if (!v[0] || !v[1] || !v[2]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_PARTY_CLUSTER), 3, v, party_bfs);
}

/* ---- traces ----------------------------------------------------------------------- */

typedef struct trace_state {
    bool forward;
    int64_t event_id;
    char *event_time; /* float8 seconds, NULL when the event has no time */
    int64_t max_items, max_hops, depth;
    int64_t *roots;
    int64_t *depths;
    size_t nroots;
    bool truncated;
    const char *receivers; /* bigint[] of the start cluster (forward from a party) */
} trace_state;

static void trace_done(qcall *q, const tw_pg_outcome *o)
{
    trace_state *st = q->state;
    qitems items;
    Tidewatch__V1__TraceResponse resp = TIDEWATCH__V1__TRACE_RESPONSE__INIT;
    int ok = qrows_items(q, o->results, &items) == 0;
    const PGresult *rh = o->results[4], *ru = o->results[5];
    resp.items = tw_arena_calloc(&q->arena, st->nroots + 1, sizeof *resp.items);
    ok = ok && resp.items;
    for (size_t i = 0; ok && i < st->nroots; i++) {
        Tidewatch__V1__TracedItem *t = tw_arena_alloc(&q->arena, sizeof *t);
        if (!t) {
            ok = 0;
            break;
        }
        tidewatch__v1__traced_item__init(t);
        t->item = qitems_find(&items, st->roots[i]);
        t->depth = (int32_t)st->depths[i];
        size_t nh = 0;
        for (int row = 0; row < PQntuples(rh); row++)
            nh += qi(rh, row, "root_id") == st->roots[i];
        t->hops = tw_arena_calloc(&q->arena, nh + 1, sizeof *t->hops);
        if (!t->hops) {
            ok = 0;
            break;
        }
        for (int row = 0; row < PQntuples(rh); row++) {
            if (qi(rh, row, "root_id") != st->roots[i])
                continue;
            if ((int64_t)t->n_hops >= st->max_hops) {
                st->truncated = true;
                break;
            }
            if (!(t->hops[t->n_hops++] = qrows_hop(q, rh, row))) {
                ok = 0;
                break;
            }
        }
        if (t->item)
            resp.items[resp.n_items++] = t;
    }
    resp.unidentified = tw_arena_calloc(&q->arena, (size_t)PQntuples(ru) + 1,
                                        sizeof *resp.unidentified);
    ok = ok && resp.unidentified;
    for (int row = 0; ok && row < PQntuples(ru); row++)
        if (!(resp.unidentified[resp.n_unidentified++] = qrows_hop(q, ru, row)))
            ok = 0;
    if (!ok) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    resp.truncated = st->truncated;
    qcall_reply(q, &resp.base, (long)(resp.n_items + resp.n_unidentified));
}

/* Rows (root_id, depth?, t_us) of the chains to trace: load them. */
static void trace_items(qcall *q, const tw_pg_outcome *o)
{
    trace_state *st = q->state;
    const PGresult *r = o->results[0];
    size_t n = (size_t)PQntuples(r);
    if ((int64_t)n > st->max_items) {
        n = (size_t)st->max_items;
        st->truncated = true;
    }
    st->nroots = n;
    st->roots = tw_arena_calloc(&q->arena, n + 1, sizeof *st->roots);
    st->depths = tw_arena_calloc(&q->arena, n + 1, sizeof *st->depths);
    size_t cap = n * 40 + 3;
    char *times = tw_arena_alloc(&q->arena, cap);
    if (!st->roots || !st->depths || !times) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t off = 0;
    times[off++] = '{';
    for (size_t i = 0; i < n; i++) {
        st->roots[i] = qi(r, (int)i, "root_id");
        st->depths[i] = qi(r, (int)i, "depth");
        if (qnull(r, (int)i, "t_us"))
            off += (size_t)snprintf(times + off, cap - off, "%sNaN", i ? "," : "");
        else {
            long long us = (long long)qi(r, (int)i, "t_us");
            off += (size_t)snprintf(times + off, cap - off, "%s%.6f", i ? "," : "",
                                    (double)us / 1e6);
        }
    }
    times[off++] = '}';
    times[off] = '\0';
    char *roots = qrows_id_array(q, st->roots, n);
    char *hops = qfmt(q, "%lld", (long long)st->max_hops + 1);
    char *ev = qfmt(q, "%lld", (long long)st->event_id);
    const char **v = tw_arena_calloc(&q->arena, 8, sizeof *v);
    if (!roots || !hops || !ev || !v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = roots;
    v[1] = "16";
    tw_pg_stmt stmts[6] = {
        {.stmt = QROWS_ITEM_SQL[0], .nparams = 1, .values = &v[0]},
        {.stmt = QROWS_ITEM_SQL[1], .nparams = 1, .values = &v[0]},
        {.stmt = QROWS_ITEM_SQL[2], .nparams = 2, .values = &v[0]},
        {.stmt = QROWS_ITEM_SQL[3], .nparams = 1, .values = &v[0]},
    };
    if (st->forward) {
        v[2] = roots;
        v[3] = times;
        v[4] = hops;
        stmts[4] = (tw_pg_stmt){.stmt = QSQL(Q_HOPS_AFTER), .nparams = 3, .values = &v[2]};
    } else {
        v[2] = roots;
        v[3] = ev;
        v[4] = st->event_time;
        v[5] = hops;
        stmts[4] = (tw_pg_stmt){.stmt = QSQL(Q_HOPS_BEFORE), .nparams = 4, .values = &v[2]};
    }
    if (st->receivers) {
        v[6] = st->receivers;
        stmts[5] = (tw_pg_stmt){.stmt = QSQL(Q_PARTY_UNIDENTIFIED), .nparams = 1, .values = &v[6]};
    } else {
        v[6] = ev;
        stmts[5] = (tw_pg_stmt){.stmt = QSQL(Q_EVENT_UNIDENTIFIED), .nparams = 1, .values = &v[6]};
    }
    qcall_sql(q, stmts, 6, trace_done);
}

static void trace_walk(qcall *q)
{
    trace_state *st = q->state;
    const char **v = tw_arena_calloc(&q->arena, 5, sizeof *v);
    if (!v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = qfmt(q, "%lld", (long long)st->event_id);
    v[1] = st->receivers ? st->receivers : "{}";
    v[2] = qfmt(q, "%lld", (long long)st->depth);
    v[3] = qfmt(q, "%lld", (long long)st->max_items + 1);
    v[4] = qfmt(q, "%d", TW_CLUSTER_DEFAULT_MAX_NAMES);
    if (!v[0] || !v[2] || !v[3] || !v[4]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_FORWARD_WALK), 5, v, trace_items);
}

static void trace_event(qcall *q, const tw_pg_outcome *o)
{
    trace_state *st = q->state;
    const PGresult *r = o->results[0];
    if (PQntuples(r) == 0) {
        Tidewatch__V1__TraceBackRequest *req = q->req;
        if (!st->forward && req->source[0])
            qcall_fail(q, TW_GRPC_NOT_FOUND, "source, source_ref: no event (%s, %s)", req->source,
                       req->source_ref);
        else
            qcall_fail(q, TW_GRPC_NOT_FOUND, "event_id: no event %lld", (long long)st->event_id);
        return;
    }
    st->event_id = qi(r, 0, "id");
    if (!qnull(r, 0, "occ_us")) {
        long long us = (long long)qi(r, 0, "occ_us");
        st->event_time = qfmt(q, "%.6f", (double)us / 1e6);
    }
    if (st->forward) {
        trace_walk(q);
        return;
    }
    const char *v[2] = {qfmt(q, "%lld", (long long)st->event_id),
                        qfmt(q, "%lld", (long long)st->max_items + 1)};
    if (!v[0] || !v[1]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_EVENT_ITEMS), 2, v, trace_items);
}

static trace_state *trace_new(qcall *q, bool forward, int32_t max_items)
{
    const query_config *cfg = q->svc->cfg;
    trace_state *st = tw_arena_calloc(&q->arena, 1, sizeof *st);
    if (!st) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    q->state = st;
    st->forward = forward;
    if (max_items < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "max_items: must not be negative (got %d)",
                   max_items);
        return NULL;
    }
    st->max_items = qlimit(max_items, cfg->trace_items, cfg->trace_items);
    st->max_hops = cfg->max_hops;
    return st;
}

void query_trace_back(qcall *q)
{
    Tidewatch__V1__TraceBackRequest *req = q->req;
    trace_state *st = trace_new(q, false, req->max_items);
    if (!st)
        return;
    bool by_ref = req->source[0] || req->source_ref[0];
    if ((req->event_id != 0) == by_ref) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "event_id, source, source_ref: give event_id, or source and source_ref");
        return;
    }
    if (req->event_id < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "event_id: must be positive");
        return;
    }
    if (by_ref && (!req->source[0] || !req->source_ref[0])) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "%s: required with %s",
                   req->source[0] ? "source_ref" : "source",
                   req->source[0] ? "source" : "source_ref");
        return;
    }
    const char *bad = qfield_error(req->source, 128);
    if (!bad)
        bad = qfield_error(req->source_ref, 128);
    if (bad) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "%s: %s",
                   qfield_error(req->source, 128) ? "source" : "source_ref", bad);
        return;
    }
    st->event_id = req->event_id;
    const char *v[3] = {qfmt(q, "%lld", (long long)req->event_id), req->source, req->source_ref};
    if (!v[0]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_EVENT_RESOLVE), 3, v, trace_event);
}

/* Forward from a party: its cluster (as GetParty finds it) are the receivers. */
static void forward_cluster(qcall *q, const tw_pg_outcome *o)
{
    trace_state *st = q->state;
    Tidewatch__V1__TraceForwardRequest *req = q->req;
    const PGresult *r = o->results[0];
    if (PQntuples(r) == 0) {
        qcall_fail(q, TW_GRPC_NOT_FOUND, "party_id: no party %lld", (long long)req->party_id);
        return;
    }
    qclusters cl;
    if (qclusters_build(q, r, NULL, TW_CLUSTER_DEFAULT_MAX_NAMES, &cl) != 0) {
        qclusters_free(&cl);
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t *m;
    size_t nm = cluster_members(q, &cl, req->party_id, &m);
    int64_t *ids = tw_arena_calloc(&q->arena, nm + 1, sizeof *ids);
    for (size_t i = 0; ids && i < nm; i++)
        ids[i] = cl.p[m[i]].party_id;
    qclusters_free(&cl);
    st->receivers = ids ? qrows_id_array(q, ids, nm) : NULL;
    if (!st->receivers) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    st->event_id = 0;
    trace_walk(q);
}

void query_trace_forward(qcall *q)
{
    Tidewatch__V1__TraceForwardRequest *req = q->req;
    const query_config *cfg = q->svc->cfg;
    trace_state *st = trace_new(q, true, req->max_items);
    if (!st)
        return;
    if ((req->party_id != 0) == (req->event_id != 0)) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "party_id, event_id: give exactly one of them");
        return;
    }
    if (req->party_id < 0 || req->event_id < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "%s: must be positive",
                   req->party_id < 0 ? "party_id" : "event_id");
        return;
    }
    if (req->max_depth < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "max_depth: must not be negative (got %d)",
                   req->max_depth);
        return;
    }
    st->depth = qlimit(req->max_depth, 3, cfg->trace_depth);
    if (req->party_id) {
        const char *v[3] = {qfmt(q, "%lld", (long long)req->party_id),
                            qfmt(q, "%lld", (long long)cfg->cluster_parties),
                            qfmt(q, "%d", TW_CLUSTER_DEFAULT_MAX_NAMES)};
        if (!v[0] || !v[1] || !v[2]) {
            qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        qcall_sql1(q, QSQL(Q_PARTY_CLUSTER), 3, v, forward_cluster);
        return;
    }
    st->event_id = req->event_id;
    const char *v[3] = {qfmt(q, "%lld", (long long)req->event_id), "", ""};
    if (!v[0]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_EVENT_RESOLVE), 3, v, trace_event);
}
