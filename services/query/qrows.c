/* Rows of the provenance tables to tidewatch.v1 messages (see query.h).
 * Everything is allocated in the call's arena. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "sql.h"

/* ---- columns --------------------------------------------------------------- */

const char *qs(const PGresult *r, int row, const char *col)
{
    int c = PQfnumber(r, col);
    if (c < 0 || row >= PQntuples(r) || PQgetisnull(r, row, c))
        return NULL;
    return PQgetvalue(r, row, c);
}

bool qnull(const PGresult *r, int row, const char *col)
{
    return qs(r, row, col) == NULL;
}

int64_t qi(const PGresult *r, int row, const char *col)
{
    const char *v = qs(r, row, col);
    if (!v)
        return 0;
    if (v[0] == 't' && v[1] == '\0')
        return 1; /* boolean true */
    return strtoll(v, NULL, 10);
}

double qd(const PGresult *r, int row, const char *col)
{
    const char *v = qs(r, row, col);
    return v ? strtod(v, NULL) : 0;
}

char *qstr(qcall *q, const PGresult *r, int row, const char *col)
{
    const char *v = qs(r, row, col);
    char *s = tw_arena_strdup(&q->arena, v ? v : "");
    return s ? s : (char *)"";
}

Google__Protobuf__Timestamp *qtime(qcall *q, const PGresult *r, int row, const char *col)
{
    const char *v = qs(r, row, col);
    if (!v)
        return NULL;
    int64_t us = strtoll(v, NULL, 10);
    Google__Protobuf__Timestamp *t = tw_arena_alloc(&q->arena, sizeof *t);
    if (!t)
        return NULL;
    google__protobuf__timestamp__init(t);
    int64_t s = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        s--;
    }
    t->seconds = s;
    t->nanos = (int32_t)(rem * 1000);
    return t;
}

char *qrows_id_array(qcall *q, const int64_t *ids, size_t n)
{
    char *s = tw_arena_alloc(&q->arena, n * 21 + 3);
    if (!s)
        return NULL;
    size_t o = 0;
    s[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(s + o, "%s%lld", i ? "," : "", (long long)ids[i]);
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* ---- enums -------------------------------------------------------------------- */

const char *qrows_party_kind(int kind)
{
    switch (kind) {
    case 1: return "person";
    case 2: return "company";
    case 3: return "agency";
    default: return "";
    }
}

Tidewatch__V1__PartyIdentifier__Kind qrows_ident_kind(const char *name)
{
    if (!name)
        return TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__OTHER;
    if (strcmp(name, "vat") == 0)
        return TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT;
    if (strcmp(name, "company_number") == 0)
        return TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__COMPANY_NUMBER;
    if (strcmp(name, "phone") == 0)
        return TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE;
    if (strcmp(name, "email") == 0)
        return TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__EMAIL;
    if (strcmp(name, "identity_document") == 0)
        return TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__IDENTITY_DOCUMENT;
    return TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__OTHER;
}

static const char *method_name(int m)
{
    switch (m) {
    case 1: return "plate";
    case 2: return "stamp";
    case 3: return "etched_recovery";
    case 4: return "document";
    default: return "";
    }
}

static const char *completeness_name(int c)
{
    switch (c) {
    case 1: return "complete";
    case 2: return "partial";
    case 3: return "illegible";
    default: return "";
    }
}

static const char *condition_name(int c)
{
    switch (c) {
    case 1: return "new";
    case 2: return "used";
    case 3: return "damaged";
    case 4: return "destroyed";
    default: return "";
    }
}

/* ---- hops ------------------------------------------------------------------------- */

/* The party of a hop whose columns are prefixed `p` ("f", "t", "c"). */
static Tidewatch__V1__PartyRef *party_ref(qcall *q, const PGresult *r, int row, const char *idcol,
                                          char p)
{
    if (qnull(r, row, idcol))
        return NULL;
    Tidewatch__V1__PartyRef *pr = tw_arena_alloc(&q->arena, sizeof *pr);
    if (!pr)
        return NULL;
    tidewatch__v1__party_ref__init(pr);
    char col[16];
    pr->id = qi(r, row, idcol);
    snprintf(col, sizeof col, "%c_name", p);
    pr->name = qstr(q, r, row, col);
    snprintf(col, sizeof col, "%c_kind", p);
    pr->kind = (char *)qrows_party_kind((int)qi(r, row, col));
    snprintf(col, sizeof col, "%c_country", p);
    pr->country = qstr(q, r, row, col);
    snprintf(col, sizeof col, "%c_place", p);
    pr->place = qstr(q, r, row, col);
    snprintf(col, sizeof col, "%c_role", p);
    pr->role = qstr(q, r, row, col);
    return pr;
}

static Tidewatch__V1__HopPlace *hop_place(qcall *q, const PGresult *r, int row, const char *p,
                                          int full)
{
    char name[32], country[32], lat[32], lon[32];
    snprintf(name, sizeof name, "%s_name", p);
    snprintf(country, sizeof country, "%s_country", p);
    snprintf(lat, sizeof lat, "%s_lat", p);
    snprintf(lon, sizeof lon, "%s_lon", p);
    const char *n = qs(r, row, name), *c = qs(r, row, country);
    bool coords = !qnull(r, row, lat) && !qnull(r, row, lon);
    if ((!n || !n[0]) && (!c || !c[0]) && !coords)
        return NULL;
    Tidewatch__V1__HopPlace *hp = tw_arena_alloc(&q->arena, sizeof *hp);
    if (!hp)
        return NULL;
    tidewatch__v1__hop_place__init(hp);
    hp->name = qstr(q, r, row, name);
    hp->country = qstr(q, r, row, country);
    hp->has_coordinates = coords;
    hp->lat = qd(r, row, lat);
    hp->lon = qd(r, row, lon);
    if (full) {
        hp->hub = qstr(q, r, row, "place_hub");
        hp->hub_kind = qstr(q, r, row, "place_hub_kind");
        hp->coast_hub = qstr(q, r, row, "coast_hub");
        hp->coast_hub_km = qd(r, row, "coast_hub_km");
    }
    return hp;
}

Tidewatch__V1__Hop *qrows_hop(qcall *q, const PGresult *r, int row)
{
    Tidewatch__V1__Hop *h = tw_arena_alloc(&q->arena, sizeof *h);
    Tidewatch__V1__SourceRef *src = tw_arena_alloc(&q->arena, sizeof *src);
    Tidewatch__V1__SourceRef **srcs = tw_arena_alloc(&q->arena, sizeof *srcs);
    Tidewatch__V1__Grading *g = tw_arena_alloc(&q->arena, sizeof *g);
    if (!h || !src || !srcs || !g)
        return NULL;
    tidewatch__v1__hop__init(h);
    tidewatch__v1__source_ref__init(src);
    tidewatch__v1__grading__init(g);
    h->event_id = qi(r, row, "event_id");
    h->kind = (Tidewatch__V1__HopKind)qi(r, row, "kind");
    h->item_id = qi(r, row, "item_id");
    h->time = qtime(q, r, row, "occ_us");
    h->expected = qtime(q, r, row, "exp_us");
    h->delivered = qtime(q, r, row, "del_us");
    h->received = qtime(q, r, row, "rec_us");
    h->from = party_ref(q, r, row, "from_party", 'f');
    h->to = party_ref(q, r, row, "to_party", 't');
    h->carrier = party_ref(q, r, row, "carrier_party", 'c');
    h->origin = hop_place(q, r, row, "origin", 0);
    h->place = hop_place(q, r, row, "place", 1);
    int64_t qty = qi(r, row, "quantity");
    h->quantity = qty > 0 ? (uint32_t)qty : 0;
    if (!qnull(r, row, "unit_price_minor")) {
        Tidewatch__V1__Money *m = tw_arena_alloc(&q->arena, sizeof *m);
        if (m) {
            tidewatch__v1__money__init(m);
            m->currency = qstr(q, r, row, "currency");
            m->amount_minor = qi(r, row, "unit_price_minor");
            h->unit_price = m;
        }
    }
    h->payment = (Tidewatch__V1__PaymentMethod)qi(r, row, "payment");
    h->invoice_ref = qstr(q, r, row, "invoice_ref");
    h->consignment_ref = qstr(q, r, row, "consignment_ref");
    h->vehicle_registration = qstr(q, r, row, "vehicle");
    h->case_ref = qstr(q, r, row, "case_ref");
    h->condition = (char *)condition_name((int)qi(r, row, "condition"));
    h->launch = qi(r, row, "launch") != 0;
    h->status = (Tidewatch__V1__HopStatus)qi(r, row, "status");
    h->corrected_by = qi(r, row, "corrected_by");
    h->corrects = qi(r, row, "corrects");
    h->line = qstr(q, r, row, "line_field");
    src->event_id = h->event_id;
    src->source = qstr(q, r, row, "source");
    src->source_ref = qstr(q, r, row, "source_ref");
    g->source = (Tidewatch__V1__Grading__SourceEvaluation)qi(r, row, "grading_source");
    g->information = (Tidewatch__V1__Grading__InformationAssessment)qi(r, row, "grading_info");
    g->handling = (Tidewatch__V1__Grading__Handling)qi(r, row, "grading_handling");
    src->grading = g;
    src->received = h->received;
    srcs[0] = src;
    h->sources = srcs;
    h->n_sources = 1;
    return h;
}

/* ---- items -------------------------------------------------------------------------- */

const char *const QROWS_ITEM_SQL[4] = {"q_items", "q_item_keys", "q_item_readings",
                                      "q_item_merges"};

Tidewatch__V1__Item *qitems_find(const qitems *it, int64_t root)
{
    for (size_t i = 0; i < it->n; i++)
        if (it->items[i]->id == root)
            return it->items[i];
    return NULL;
}

/* Append p to a pointer array (grown in the arena, doubling at powers of
 * two). Returns 0 or -1. */
static int push(qcall *q, void ***arr, size_t *n, void *p)
{
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, ...: full */
        size_t cap = *n ? 2 * *n : 1;
        void **g = tw_arena_alloc(&q->arena, cap * sizeof *g);
        if (!g)
            return -1;
        if (*n)
            memcpy(g, *arr, *n * sizeof *g);
        *arr = g;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

#define PUSH(q, arr, n, p) push((q), (void ***)(arr), (n), (p))

int qrows_items(qcall *q, PGresult *const *res, qitems *out)
{
    memset(out, 0, sizeof *out);
    const PGresult *ri = res[0], *rk = res[1], *rr = res[2], *rm = res[3];
    for (int row = 0; row < PQntuples(ri); row++) {
        int64_t root = qi(ri, row, "root_id");
        Tidewatch__V1__Item *it = qitems_find(out, root);
        Google__Protobuf__Timestamp *first = qtime(q, ri, row, "first_us"),
                                    *last = qtime(q, ri, row, "last_us");
        if (!it) {
            it = tw_arena_alloc(&q->arena, sizeof *it);
            if (!it)
                return -1;
            tidewatch__v1__item__init(it);
            it->id = root;
            it->kind = (Tidewatch__V1__ItemKind)qi(ri, row, "kind");
            it->maker = qstr(q, ri, row, "maker");
            it->model = qstr(q, ri, row, "model");
            it->partial = qi(ri, row, "partial") != 0;
            it->first_seen = first;
            it->last_seen = last;
            if (PUSH(q, &out->items, &out->n, it) != 0)
                return -1;
            continue;
        }
        /* a merged member: fill what the root lacks, widen the span */
        if (!it->maker[0])
            it->maker = qstr(q, ri, row, "maker");
        if (!it->model[0])
            it->model = qstr(q, ri, row, "model");
        it->partial = it->partial && qi(ri, row, "partial") != 0;
        if (first && (!it->first_seen || first->seconds < it->first_seen->seconds))
            it->first_seen = first;
        if (last && (!it->last_seen || last->seconds > it->last_seen->seconds))
            it->last_seen = last;
    }
    for (int row = 0; row < PQntuples(rk); row++) {
        Tidewatch__V1__Item *it = qitems_find(out, qi(rk, row, "root_id"));
        if (!it)
            continue;
        Tidewatch__V1__ItemKey *k = tw_arena_alloc(&q->arena, sizeof *k);
        if (!k)
            return -1;
        tidewatch__v1__item_key__init(k);
        k->kind = qi(rk, row, "key_kind") == 2 ? "hull" : "serial";
        k->key = qstr(q, rk, row, "key");
        k->maker = qstr(q, rk, row, "maker");
        if (PUSH(q, &it->keys, &it->n_keys, k) != 0)
            return -1;
    }
    for (int row = 0; row < PQntuples(rr); row++) {
        Tidewatch__V1__Item *it = qitems_find(out, qi(rr, row, "root_id"));
        if (!it)
            continue;
        const char *kind = qi(rr, row, "key_kind") == 2 ? "hull" : "serial";
        const char *key = qs(rr, row, "key");
        Tidewatch__V1__ItemKey *k = NULL;
        for (size_t i = 0; i < it->n_keys && !k; i++)
            if (strcmp(it->keys[i]->kind, kind) == 0 && key && strcmp(it->keys[i]->key, key) == 0)
                k = it->keys[i];
        if (!k)
            continue;
        Tidewatch__V1__Reading *rd = tw_arena_alloc(&q->arena, sizeof *rd);
        if (!rd)
            return -1;
        tidewatch__v1__reading__init(rd);
        rd->text = qstr(q, rr, row, "raw");
        rd->method = (char *)method_name((int)qi(rr, row, "method"));
        rd->completeness = (char *)completeness_name((int)qi(rr, row, "completeness"));
        rd->event_id = qi(rr, row, "event_id");
        rd->source = qstr(q, rr, row, "source");
        rd->field = qstr(q, rr, row, "field");
        if (PUSH(q, &k->readings, &k->n_readings, rd) != 0)
            return -1;
    }
    for (int row = 0; row < PQntuples(rm); row++) {
        Tidewatch__V1__Item *it = qitems_find(out, qi(rm, row, "root_id"));
        if (!it)
            continue;
        Tidewatch__V1__Merge *m = tw_arena_alloc(&q->arena, sizeof *m);
        if (!m)
            return -1;
        tidewatch__v1__merge__init(m);
        m->item_id = qi(rm, row, "item_id");
        m->event_id = qi(rm, row, "event_id");
        m->reason = qstr(q, rm, row, "reason");
        m->undone = qi(rm, row, "undone") != 0;
        if (PUSH(q, &it->merges, &it->n_merges, m) != 0)
            return -1;
    }
    return 0;
}
