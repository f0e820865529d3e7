/* Rows of the provenance tables to tidewatch.v1 messages (see query.h).
 * Everything is allocated in the call's arena. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "sql.h"

/* ---- columns --------------------------------------------------------------- */

/* Column c of row: NULL for SQL NULL or an absent column. */
static const char *cv(const PGresult *r, int row, int c)
{
    return c < 0 || row >= PQntuples(r) || PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static int64_t ci(const PGresult *r, int row, int c)
{
    const char *v = cv(r, row, c);
    if (!v)
        return 0;
    if (v[0] == 't' && v[1] == '\0')
        return 1; /* boolean true */
    return strtoll(v, NULL, 10);
}

static double cd(const PGresult *r, int row, int c)
{
    const char *v = cv(r, row, c);
    return v ? strtod(v, NULL) : 0;
}

static char *cstr(qcall *q, const PGresult *r, int row, int c)
{
    const char *v = cv(r, row, c);
    char *s = tw_arena_strdup(&q->arena, v ? v : "");
    return s ? s : (char *)"";
}

Google__Protobuf__Timestamp *qtime_at(tw_arena *a, const PGresult *r, int row, int c)
{
    const char *v = cv(r, row, c);
    if (!v)
        return NULL;
    int64_t us = strtoll(v, NULL, 10);
    Google__Protobuf__Timestamp *t = tw_arena_alloc(a, sizeof *t);
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

static Google__Protobuf__Timestamp *ctime_us(qcall *q, const PGresult *r, int row, int c)
{
    return qtime_at(&q->arena, r, row, c);
}

/* The same by column name. */
const char *qs(const PGresult *r, int row, const char *col)
{
    return cv(r, row, PQfnumber(r, col));
}

bool qnull(const PGresult *r, int row, const char *col)
{
    return qs(r, row, col) == NULL;
}

int64_t qi(const PGresult *r, int row, const char *col)
{
    return ci(r, row, PQfnumber(r, col));
}

double qd(const PGresult *r, int row, const char *col)
{
    return cd(r, row, PQfnumber(r, col));
}

char *qstr(qcall *q, const PGresult *r, int row, const char *col)
{
    return cstr(q, r, row, PQfnumber(r, col));
}

Google__Protobuf__Timestamp *qtime(qcall *q, const PGresult *r, int row, const char *col)
{
    return ctime_us(q, r, row, PQfnumber(r, col));
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

/* The columns qrows_hop reads (HOP_COLS, mostly in its order), looked up
 * once per result: by name at every row they cost more than the rest of
 * the daemon's work on a chain (PQfnumber compares the name with every
 * column's). */
enum {
    HC_EVENT_ID, HC_ITEM_ID, HC_KIND, HC_STATUS, HC_CORRECTED_BY, HC_CORRECTS, HC_LINE,
    HC_QUANTITY, HC_OCC, HC_EXP, HC_DEL, HC_REC, HC_SOURCE, HC_SOURCE_REF, HC_G_SOURCE,
    HC_G_INFO, HC_G_HANDLING,
    HC_ORIGIN_NAME, HC_ORIGIN_COUNTRY, HC_ORIGIN_LAT, HC_ORIGIN_LON,
    HC_PLACE_NAME, HC_PLACE_COUNTRY, HC_PLACE_LAT, HC_PLACE_LON, HC_HUB, HC_HUB_KIND,
    HC_COAST_HUB, HC_COAST_HUB_KM,
    HC_CURRENCY, HC_PRICE, HC_PAYMENT, HC_INVOICE, HC_CONSIGNMENT, HC_VEHICLE, HC_CASE,
    HC_CONDITION, HC_LAUNCH,
    HC_PARTY, /* three parties of six columns each: id, name, kind, country, place, role */
    HC_N = HC_PARTY + 18
};

static const char *const hop_col_names[HC_N] = {
    "event_id", "item_id", "kind", "status", "corrected_by", "corrects", "line_field",
    "quantity", "occ_us", "exp_us", "del_us", "rec_us", "source", "source_ref",
    "grading_source", "grading_info", "grading_handling",
    "origin_name", "origin_country", "origin_lat", "origin_lon",
    "place_name", "place_country", "place_lat", "place_lon", "place_hub", "place_hub_kind",
    "coast_hub", "coast_hub_km",
    "currency", "unit_price_minor", "payment", "invoice_ref", "consignment_ref", "vehicle",
    "case_ref", "condition", "launch",
    "from_party", "f_name", "f_kind", "f_country", "f_place", "f_role",
    "to_party", "t_name", "t_kind", "t_country", "t_place", "t_role",
    "carrier_party", "c_name", "c_kind", "c_country", "c_place", "c_role",
};

/* Column numbers of r (-1: absent), cached in the call until its next
 * batch completes (qcall.c forgets them there: a result freed by then
 * could share its address with a new one). NULL on ENOMEM. */
static const int *hop_cols(qcall *q, const PGresult *r)
{
    if (q->hop_cols && q->hop_cols_for == r)
        return q->hop_cols;
    if (!q->hop_cols && !(q->hop_cols = tw_arena_alloc(&q->arena, HC_N * sizeof(int))))
        return NULL;
    /* PQfnumber's exact match, searched from the column after the last
     * one found (the names mostly follow HOP_COLS's order) */
    int n = PQnfields(r), next = 0;
    for (int i = 0; i < HC_N; i++) {
        q->hop_cols[i] = -1;
        for (int k = 0; k < n; k++) {
            int j = (next + k) % n;
            if (strcmp(PQfname(r, j), hop_col_names[i]) == 0) {
                q->hop_cols[i] = j;
                next = j + 1;
                break;
            }
        }
    }
    q->hop_cols_for = r;
    return q->hop_cols;
}


/* The party of a hop: columns col[0..6) (id, name, kind, country, place,
 * role). */
static Tidewatch__V1__PartyRef *party_ref(qcall *q, const PGresult *r, int row, const int *col)
{
    if (!cv(r, row, col[0]))
        return NULL;
    Tidewatch__V1__PartyRef *pr = tw_arena_alloc(&q->arena, sizeof *pr);
    if (!pr)
        return NULL;
    tidewatch__v1__party_ref__init(pr);
    pr->id = ci(r, row, col[0]);
    pr->name = cstr(q, r, row, col[1]);
    pr->kind = (char *)qrows_party_kind((int)ci(r, row, col[2]));
    pr->country = cstr(q, r, row, col[3]);
    pr->place = cstr(q, r, row, col[4]);
    pr->role = cstr(q, r, row, col[5]);
    return pr;
}

/* A place: columns col[0..4) (name, country, lat, lon), then with `full`
 * col[4..8) (hub, hub kind, coast hub, its distance). */
static Tidewatch__V1__HopPlace *hop_place(qcall *q, const PGresult *r, int row, const int *col,
                                          int full)
{
    const char *n = cv(r, row, col[0]), *c = cv(r, row, col[1]);
    bool coords = cv(r, row, col[2]) && cv(r, row, col[3]);
    if ((!n || !n[0]) && (!c || !c[0]) && !coords)
        return NULL;
    Tidewatch__V1__HopPlace *hp = tw_arena_alloc(&q->arena, sizeof *hp);
    if (!hp)
        return NULL;
    tidewatch__v1__hop_place__init(hp);
    hp->name = cstr(q, r, row, col[0]);
    hp->country = cstr(q, r, row, col[1]);
    hp->has_coordinates = coords;
    hp->lat = cd(r, row, col[2]);
    hp->lon = cd(r, row, col[3]);
    if (full) {
        hp->hub = cstr(q, r, row, col[4]);
        hp->hub_kind = cstr(q, r, row, col[5]);
        hp->coast_hub = cstr(q, r, row, col[6]);
        hp->coast_hub_km = cd(r, row, col[7]);
    }
    return hp;
}

Tidewatch__V1__Hop *qrows_hop(qcall *q, const PGresult *r, int row)
{
    const int *c = hop_cols(q, r);
    Tidewatch__V1__Hop *h = tw_arena_alloc(&q->arena, sizeof *h);
    Tidewatch__V1__SourceRef *src = tw_arena_alloc(&q->arena, sizeof *src);
    Tidewatch__V1__SourceRef **srcs = tw_arena_alloc(&q->arena, sizeof *srcs);
    Tidewatch__V1__Grading *g = tw_arena_alloc(&q->arena, sizeof *g);
    if (!c || !h || !src || !srcs || !g)
        return NULL;
    tidewatch__v1__hop__init(h);
    tidewatch__v1__source_ref__init(src);
    tidewatch__v1__grading__init(g);
    h->event_id = ci(r, row, c[HC_EVENT_ID]);
    h->kind = (Tidewatch__V1__HopKind)ci(r, row, c[HC_KIND]);
    h->item_id = ci(r, row, c[HC_ITEM_ID]);
    h->time = ctime_us(q, r, row, c[HC_OCC]);
    h->expected = ctime_us(q, r, row, c[HC_EXP]);
    h->delivered = ctime_us(q, r, row, c[HC_DEL]);
    h->received = ctime_us(q, r, row, c[HC_REC]);
    h->from = party_ref(q, r, row, c + HC_PARTY);
    h->to = party_ref(q, r, row, c + HC_PARTY + 6);
    h->carrier = party_ref(q, r, row, c + HC_PARTY + 12);
    h->origin = hop_place(q, r, row, c + HC_ORIGIN_NAME, 0);
    h->place = hop_place(q, r, row, c + HC_PLACE_NAME, 1);
    int64_t qty = ci(r, row, c[HC_QUANTITY]);
    h->quantity = qty > 0 ? (uint32_t)qty : 0;
    if (cv(r, row, c[HC_PRICE])) {
        Tidewatch__V1__Money *m = tw_arena_alloc(&q->arena, sizeof *m);
        if (m) {
            tidewatch__v1__money__init(m);
            m->currency = cstr(q, r, row, c[HC_CURRENCY]);
            m->amount_minor = ci(r, row, c[HC_PRICE]);
            h->unit_price = m;
        }
    }
    h->payment = (Tidewatch__V1__PaymentMethod)ci(r, row, c[HC_PAYMENT]);
    h->invoice_ref = cstr(q, r, row, c[HC_INVOICE]);
    h->consignment_ref = cstr(q, r, row, c[HC_CONSIGNMENT]);
    h->vehicle_registration = cstr(q, r, row, c[HC_VEHICLE]);
    h->case_ref = cstr(q, r, row, c[HC_CASE]);
    h->condition = (char *)condition_name((int)ci(r, row, c[HC_CONDITION]));
    h->launch = ci(r, row, c[HC_LAUNCH]) != 0;
    h->status = (Tidewatch__V1__HopStatus)ci(r, row, c[HC_STATUS]);
    h->corrected_by = ci(r, row, c[HC_CORRECTED_BY]);
    h->corrects = ci(r, row, c[HC_CORRECTS]);
    h->line = cstr(q, r, row, c[HC_LINE]);
    src->event_id = h->event_id;
    src->source = cstr(q, r, row, c[HC_SOURCE]);
    src->source_ref = cstr(q, r, row, c[HC_SOURCE_REF]);
    g->source = (Tidewatch__V1__Grading__SourceEvaluation)ci(r, row, c[HC_G_SOURCE]);
    g->information = (Tidewatch__V1__Grading__InformationAssessment)ci(r, row, c[HC_G_INFO]);
    g->handling = (Tidewatch__V1__Grading__Handling)ci(r, row, c[HC_G_HANDLING]);
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
