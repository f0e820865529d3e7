/* ProvenanceService.SearchItems and ListEvents.
 *
 * SearchItems compiles the pattern (tw_pattern): with '?' or '*' it is a
 * LIKE on the strict keys (score 0.5-1.0 by how much of the key the known
 * characters cover) or, failing that, on the loose keys (OCR look-alikes
 * folded; 0.4-0.8); without a wildcard it is the exact key (1.0), the
 * loose key (0.9) or trigram similarity on the loose keys (pg_trgm,
 * 0.8 x similarity). One result per chain (its best key), filtered, in
 * (score desc, item asc) order, paged by keyset on that pair.
 *
 * ListEvents pages the log in id order (keyset on id), filtered by the
 * time things happened, kind and source, each event with its record
 * decoded. Page tokens are opaque and bound to the filters (qtoken). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "sql.h"
#include "tidewatch/v1/records.pb-c.h"
#include "tw_pattern.h"

#define MAKER_MAX 128
#define SOURCE_MAX 128

/* ---- SearchItems ---------------------------------------------------------- */

typedef struct search_state {
    int64_t page;
    const char *binding;
    const PGresult *rows; /* taken from the first batch */
    PGresult *keep;
    int64_t *roots;
    size_t nroots;
    bool more;
} search_state;

static void search_items_done(qcall *q, const tw_pg_outcome *o)
{
    search_state *st = q->state;
    const PGresult *r = st->keep;
    qitems items;
    Tidewatch__V1__SearchItemsResponse resp = TIDEWATCH__V1__SEARCH_ITEMS_RESPONSE__INIT;
    int ok = qrows_items(q, o->results, &items) == 0;
    resp.items = tw_arena_calloc(&q->arena, st->nroots + 1, sizeof *resp.items);
    ok = ok && resp.items;
    const PGresult *ri = o->results[0];
    for (size_t i = 0; ok && i < st->nroots; i++) {
        Tidewatch__V1__ItemMatch *m = tw_arena_alloc(&q->arena, sizeof *m);
        if (!m) {
            ok = 0;
            break;
        }
        tidewatch__v1__item_match__init(m);
        m->item = qitems_find(&items, st->roots[i]);
        m->score = (double)qi(r, (int)i, "score") / 1e6;
        m->matched_key = qstr(q, r, (int)i, "key");
        const char *how = qs(r, (int)i, "how");
        m->reason = qfmt(q, "%s: %s (score %.2f)", m->matched_key,
                         !how                              ? "match"
                         : strcmp(how, "exact") == 0       ? "exact key"
                         : strcmp(how, "pattern") == 0     ? "matches the pattern"
                         : strcmp(how, "lookalike") == 0   ? "matches with OCR look-alikes folded"
                                                           : "similar (trigrams)",
                         m->score);
        /* last place: the member seen last */
        int best = -1;
        int64_t best_t = 0;
        for (int row = 0; row < PQntuples(ri); row++)
            if (qi(ri, row, "root_id") == st->roots[i] && !qnull(ri, row, "last_us") &&
                (best < 0 || qi(ri, row, "last_us") > best_t)) {
                best = row;
                best_t = qi(ri, row, "last_us");
            }
        if (best >= 0) {
            Tidewatch__V1__HopPlace *p = tw_arena_alloc(&q->arena, sizeof *p);
            if (!p) {
                ok = 0;
                break;
            }
            tidewatch__v1__hop_place__init(p);
            p->name = qstr(q, ri, best, "last_place");
            p->country = qstr(q, ri, best, "last_country");
            p->has_coordinates = !qnull(ri, best, "last_lat") && !qnull(ri, best, "last_lon");
            p->lat = qd(ri, best, "last_lat");
            p->lon = qd(ri, best, "last_lon");
            m->last_place = p;
        }
        if (!m->item) /* changed between the two batches: skipped */
            continue;
        resp.items[resp.n_items++] = m;
    }
    if (ok && st->more && st->nroots > 0) {
        int row = (int)st->nroots - 1;
        int64_t v[2] = {qi(r, row, "score"), qi(r, row, "root_id")};
        resp.next_page_token = qtoken_encode(q, "search", st->binding, v, 2);
        ok = resp.next_page_token != NULL;
    }
    PQclear(st->keep);
    st->keep = NULL;
    if (!ok) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_reply(q, &resp.base, (long)resp.n_items);
}

static void search_cleanup(qcall *q)
{
    search_state *st = q->state;
    PQclear(st->keep);
    st->keep = NULL;
}

static void search_rows(qcall *q, const tw_pg_outcome *o)
{
    search_state *st = q->state;
    PGresult *r = o->results[0];
    o->results[0] = NULL; /* kept until the answer is built */
    st->keep = r;
    size_t n = (size_t)PQntuples(r);
    st->more = (int64_t)n > st->page;
    st->nroots = st->more ? (size_t)st->page : n;
    st->roots = tw_arena_calloc(&q->arena, st->nroots + 1, sizeof *st->roots);
    if (!st->roots) {
        PQclear(st->keep);
        st->keep = NULL;
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < st->nroots; i++)
        st->roots[i] = qi(r, (int)i, "root_id");
    char *ids = qrows_id_array(q, st->roots, st->nroots);
    const char **v = tw_arena_calloc(&q->arena, 2, sizeof *v);
    if (!ids || !v) {
        PQclear(st->keep);
        st->keep = NULL;
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = ids;
    v[1] = "16";
    const tw_pg_stmt stmts[] = {
        {.stmt = QROWS_ITEM_SQL[0], .nparams = 1, .values = v},
        {.stmt = QROWS_ITEM_SQL[1], .nparams = 1, .values = v},
        {.stmt = QROWS_ITEM_SQL[2], .nparams = 2, .values = v},
        {.stmt = QROWS_ITEM_SQL[3], .nparams = 1, .values = v},
    };
    /* lookups by id arrays: planned once per connection, as GetChain's */
    qcall_sql_generic(q, stmts, 4, search_items_done);
}

static int country_ok(const char *c)
{
    return c[0] == '\0' ||
           (c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c[2] == '\0');
}

/* The page size and the time range [after, before) shared by SearchItems
 * and ListEvents, checked and named after their fields: *after and *before
 * become SQL parameters (NULL when not given). Returns 0, or -1 once the
 * call has been failed with INVALID_ARGUMENT. */
static int page_and_range(qcall *q, int32_t page_size, const Google__Protobuf__Timestamp *a,
                          const char *a_field, const Google__Protobuf__Timestamp *b,
                          const char *b_field, char **after, char **before)
{
    if (page_size < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "page_size: must not be negative (got %d)",
                   page_size);
        return -1;
    }
    if (qtime_param(q, a, a_field, after) != 0 || qtime_param(q, b, b_field, before) != 0)
        return -1;
    if (*after && *before && strtod(*after, NULL) >= strtod(*before, NULL)) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "%s: must be later than %s", b_field, a_field);
        return -1;
    }
    return 0;
}

void query_search_items(qcall *q)
{
    Tidewatch__V1__SearchItemsRequest *req = q->req;
    const query_config *cfg = q->svc->cfg;
    search_state *st = tw_arena_calloc(&q->arena, 1, sizeof *st);
    if (!st) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    q->state = st;
    q->cleanup = search_cleanup;
    tw_pattern pat;
    char why[TW_PATTERN_TEXT_MAX];
    if (!req->pattern[0]) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "pattern: required");
        return;
    }
    if (tw_pattern_compile(req->pattern, strlen(req->pattern), &pat, why, sizeof why) != 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "pattern: %s", why);
        return;
    }
    if (req->kind < 0 || req->kind > 3) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "kind: unknown item kind %d", (int)req->kind);
        return;
    }
    const char *bad = qfield_error(req->maker, MAKER_MAX);
    if (bad) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "maker: %s", bad);
        return;
    }
    if (!country_ok(req->country)) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "country: an ISO 3166-1 alpha-2 code in capitals (\"FR\")");
        return;
    }
    char *after, *before;
    if (page_and_range(q, req->page_size, req->seen_after, "seen_after", req->seen_before,
                       "seen_before", &after, &before) != 0)
        return;
    st->page = qlimit(req->page_size, 20, cfg->page_max);
    st->binding = qfmt(q, "search\x1f%s\x1f%d\x1f%s\x1f%s\x1f%s\x1f%s", pat.key, (int)req->kind,
                       req->maker, after ? after : "", before ? before : "", req->country);
    if (!st->binding) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    int64_t tok[2];
    int t = qtoken_decode(q, req->page_token, "search", st->binding, tok, 2);
    if (t < 0)
        return;
    const char **v = tw_arena_calloc(&q->arena, 11, sizeof *v);
    if (!v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = pat.wildcard ? tw_arena_strdup(&q->arena, pat.like) : tw_arena_strdup(&q->arena, pat.key);
    v[1] = pat.wildcard ? tw_arena_strdup(&q->arena, pat.like_loose)
                        : tw_arena_strdup(&q->arena, pat.fuzzy);
    v[2] = qfmt(q, "%d", (int)req->kind);
    v[3] = req->maker;
    v[4] = after;
    v[5] = before;
    v[6] = req->country;
    v[7] = qfmt(q, "%u", pat.literals);
    v[8] = t == 0 ? qfmt(q, "%lld", (long long)tok[0]) : NULL;
    v[9] = t == 0 ? qfmt(q, "%lld", (long long)tok[1]) : NULL;
    v[10] = qfmt(q, "%lld", (long long)st->page + 1);
    if (!v[0] || !v[1] || !v[2] || !v[7] || !v[10] || (t == 0 && (!v[8] || !v[9]))) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, pat.wildcard ? QSQL(Q_SEARCH_LIKE) : QSQL(Q_SEARCH_FUZZY), 11, v, search_rows);
}

/* ---- ListEvents ------------------------------------------------------------- */

static const char *const kinds[] = {"", "purchase", "shipment", "seizure", "correction"};

typedef struct events_state {
    int64_t page;
    const char *binding;
} events_state;

static void events_rows(qcall *q, const tw_pg_outcome *o)
{
    events_state *st = q->state;
    const PGresult *r = o->results[0];
    size_t n = (size_t)PQntuples(r);
    bool more = (int64_t)n > st->page;
    if (more)
        n = (size_t)st->page;
    Tidewatch__V1__ListEventsResponse resp = TIDEWATCH__V1__LIST_EVENTS_RESPONSE__INIT;
    resp.events = tw_arena_calloc(&q->arena, n + 1, sizeof *resp.events);
    int ok = resp.events != NULL;
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&q->arena);
    for (size_t i = 0; ok && i < n; i++) {
        int row = (int)i;
        Tidewatch__V1__EventSummary *e = tw_arena_alloc(&q->arena, sizeof *e);
        if (!e) {
            ok = 0;
            break;
        }
        tidewatch__v1__event_summary__init(e);
        e->id = qi(r, row, "id");
        int64_t k = qi(r, row, "kind");
        e->kind = (char *)(k >= 1 && k <= 4 ? kinds[k] : "");
        e->source = qstr(q, r, row, "source");
        e->source_ref = qstr(q, r, row, "source_ref");
        e->occurred = qtime(q, r, row, "occ_us");
        e->received = qtime(q, r, row, "rec_us");
        const char *lists[2] = {qs(r, row, "skeys"), qs(r, row, "hkeys")};
        for (int l = 0; l < 2; l++) {
            char *copy = tw_arena_strdup(&q->arena, lists[l] ? lists[l] : "");
            if (!copy) {
                ok = 0;
                break;
            }
            size_t cnt = 0;
            for (char *p = copy; *p; p++)
                cnt += *p == ' ';
            char **arr = tw_arena_calloc(&q->arena, cnt + 2, sizeof *arr);
            if (!arr) {
                ok = 0;
                break;
            }
            size_t m = 0;
            char *save = NULL;
            for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
                arr[m++] = tok;
            if (l == 0) {
                e->serial_keys = arr;
                e->n_serial_keys = m;
            } else {
                e->hull_keys = arr;
                e->n_hull_keys = m;
            }
        }
        const char *hex = qs(r, row, "payload");
        if (hex) {
            size_t blen = 0;
            unsigned char *bytes = PQunescapeBytea((const unsigned char *)hex, &blen);
            if (bytes) {
                e->record = tidewatch__v1__record__unpack(&alloc, blen, bytes);
                PQfreemem(bytes);
            }
        }
        resp.events[resp.n_events++] = e;
    }
    if (ok && more && resp.n_events > 0) {
        int64_t v[1] = {resp.events[resp.n_events - 1]->id};
        resp.next_page_token = qtoken_encode(q, "events", st->binding, v, 1);
        ok = resp.next_page_token != NULL;
    }
    if (!ok) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_reply(q, &resp.base, (long)resp.n_events);
}

void query_list_events(qcall *q)
{
    Tidewatch__V1__ListEventsRequest *req = q->req;
    const query_config *cfg = q->svc->cfg;
    events_state *st = tw_arena_calloc(&q->arena, 1, sizeof *st);
    if (!st) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    q->state = st;
    int kind = -1;
    for (int k = 0; k <= 4; k++)
        if (strcmp(req->kind, kinds[k]) == 0)
            kind = k;
    if (kind < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "kind: one of purchase, shipment, seizure, correction, or empty for all");
        return;
    }
    const char *bad = qfield_error(req->source, SOURCE_MAX);
    if (bad) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "source: %s", bad);
        return;
    }
    char *after, *before;
    if (page_and_range(q, req->page_size, req->after, "after", req->before, "before", &after,
                       &before) != 0)
        return;
    st->page = qlimit(req->page_size, 50, cfg->page_max);
    st->binding = qfmt(q, "events\x1f%s\x1f%s\x1f%d\x1f%s", after ? after : "",
                       before ? before : "", kind, req->source);
    if (!st->binding) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    int64_t tok[1] = {0};
    int t = qtoken_decode(q, req->page_token, "events", st->binding, tok, 1);
    if (t < 0)
        return;
    const char **v = tw_arena_calloc(&q->arena, 6, sizeof *v);
    if (!v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = after;
    v[1] = before;
    v[2] = qfmt(q, "%d", kind);
    v[3] = req->source;
    v[4] = qfmt(q, "%lld", (long long)(t == 0 ? tok[0] : 0));
    v[5] = qfmt(q, "%lld", (long long)st->page + 1);
    if (!v[2] || !v[4] || !v[5]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_EVENTS), 6, v, events_rows);
}
