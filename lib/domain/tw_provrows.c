/* tw_provrows: one event of the log as flat provenance rows (see the header). */
#include "tw_provrows.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tidewatch/v1/derived.pb-c.h"
#include "tidewatch/v1/records.pb-c.h"
#include "tw_places.h"
#include "tw_serial.h"

typedef struct ctx {
    const tw_provrows_input *in;
    tw_arena *arena;
    const Tidewatch__V1__DerivedRecord *d; /* never NULL (empty when nothing derived) */
    tw_prov_event *out;
    char prefix[16]; /* "" or "correction." */
    size_t serial_hint, hull_hint;
    int oom;
} ctx;

static const char *S(const char *s)
{
    return s ? s : "";
}

/* An arena string, or "" (and oom set) when memory ran out. */
static const char *str(ctx *c, const char *s)
{
    if (!s)
        c->oom = 1;
    return s ? s : "";
}

static char *cat(ctx *c, const char *a, const char *b)
{
    char *s = tw_arena_printf(c->arena, "%s%s", a, b);
    if (!s)
        c->oom = 1;
    return s ? s : (char *)"";
}

const char *tw_provrows_role_name(int role)
{
    static const char *const names[] = {"seller", "buyer", "shipper", "carrier", "consignee",
                                        "agency"};
    return role >= 0 && role < (int)(sizeof names / sizeof names[0]) ? names[role] : "?";
}

/* Linear search from a moving hint: ingest writes derived entries in the
 * order it walks the record, which is the order we ask in. */
static const Tidewatch__V1__DerivedSerial *find_serial(ctx *c, const char *field)
{
    size_t n = c->d->n_serials;
    for (size_t k = 0; k < n; k++) {
        size_t i = (c->serial_hint + k) % n;
        const Tidewatch__V1__DerivedSerial *s = c->d->serials[i];
        if (s && s->field && strcmp(s->field, field) == 0) {
            c->serial_hint = i + 1;
            return s;
        }
    }
    return NULL;
}

static const Tidewatch__V1__DerivedHull *find_hull(ctx *c, const char *field)
{
    size_t n = c->d->n_hulls;
    for (size_t k = 0; k < n; k++) {
        size_t i = (c->hull_hint + k) % n;
        const Tidewatch__V1__DerivedHull *h = c->d->hulls[i];
        if (h && h->field && strcmp(h->field, field) == 0) {
            c->hull_hint = i + 1;
            return h;
        }
    }
    return NULL;
}

static const Tidewatch__V1__DerivedPlace *find_place(Tidewatch__V1__DerivedPlace *const *v,
                                                     size_t n, const char *field)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && v[i]->field && strcmp(v[i]->field, field) == 0)
            return v[i];
    return NULL;
}

static bool ts(const Google__Protobuf__Timestamp *t, int64_t *us)
{
    if (!t)
        return false;
    /* Ingest accepts 1990 .. now + a year; anything far outside is clamped
     * out rather than overflowing. */
    if (t->seconds < -62135596800LL || t->seconds > 253402300799LL)
        return false;
    int32_t nanos = t->nanos;
    if (nanos < 0 || nanos > 999999999)
        nanos = 0;
    *us = t->seconds * 1000000 + nanos / 1000;
    return true;
}

static const char *maker_name(const char *make)
{
    tw_serial_maker m = tw_serial_maker_parse(make);
    if (m == TW_SERIAL_MAKER_UNKNOWN || m == TW_SERIAL_MAKER_OTHER)
        return "";
    return tw_serial_maker_name(m);
}

static const char *loose_of(ctx *c, const char *key)
{
    size_t n = strlen(key);
    char *o = tw_arena_alloc(c->arena, n + 1);
    if (!o) {
        c->oom = 1;
        return "";
    }
    for (size_t i = 0; i < n; i++)
        o[i] = tw_serial_fold_char(key[i]);
    o[n] = '\0';
    return o;
}

static void place(ctx *c, tw_prov_place *out, const Tidewatch__V1__Place *p, const char *field,
                  bool party)
{
    memset(out, 0, sizeof *out);
    out->name = out->country = out->hub = out->hub_kind = out->coast_hub = "";
    if (!p)
        return;
    out->present = true;
    out->name = S(p->name);
    out->country = S(p->country);
    const Tidewatch__V1__DerivedPlace *d =
        party ? find_place(c->d->party_places, c->d->n_party_places, field)
              : find_place(c->d->places, c->d->n_places, field);
    if (!d || !isfinite(d->lat) || !isfinite(d->lon) || fabs(d->lat) > 90 || fabs(d->lon) > 180)
        return;
    if (d->name && d->name[0])
        out->name = d->name;
    if (d->country && d->country[0])
        out->country = d->country;
    out->has_coords = true;
    out->lat = d->lat;
    out->lon = d->lon;
    if (d->hub) {
        out->hub = S(d->hub->name);
        out->hub_kind = S(d->hub->kind);
    }
    if (c->in->places) {
        double km = 0;
        int h = tw_places_nearest_hub(c->in->places, d->lat, d->lon, TW_HUB_COAST, &km);
        const tw_hub *hub = h >= 0 ? tw_places_hub(c->in->places, (size_t)h) : NULL;
        if (hub) {
            out->coast_hub = hub->name;
            out->has_coast_km = true;
            out->coast_km = km;
        }
    }
}

static const char *key_of(ctx *c, const char *s)
{
    if (!s || !s[0])
        return "";
    char buf[TW_PLACE_KEY_MAX];
    if (tw_place_key(s, strlen(s), 0, buf, sizeof buf) <= 0)
        return "";
    char *o = tw_arena_strdup(c->arena, buf);
    if (!o)
        c->oom = 1;
    return o ? o : "";
}

static int64_t party(ctx *c, const Tidewatch__V1__Party *p, int role, const char *body)
{
    if (!p)
        return 0;
    tw_prov_event *e = c->out;
    tw_prov_party *t = &e->parties[e->nparties++];
    memset(t, 0, sizeof *t);
    t->party_id = e->event_id * TW_PROVROWS_ID_STRIDE + role;
    t->role = role;
    t->role_name = tw_provrows_role_name(role);
    t->kind = (int)p->kind;
    t->name = S(p->name);
    t->name_key = key_of(c, p->name);
    t->country = S(p->country);
    t->address = S(p->address);
    t->place = "";
    t->address_key = "";
    const char *path =
        str(c, tw_arena_printf(c->arena, "%s%s.%s", c->prefix, body, t->role_name));
    if (p->place) {
        tw_prov_place pl;
        place(c, &pl, p->place, cat(c, path, ".place"), true);
        if (pl.has_coords) {
            t->has_coords = true;
            t->lat = pl.lat;
            t->lon = pl.lon;
            const Tidewatch__V1__DerivedPlace *d =
                find_place(c->d->party_places, c->d->n_party_places, cat(c, path, ".place"));
            if (d && d->name && d->name[0]) {
                t->place = d->name;
                t->address_key =
                    tw_arena_printf(c->arena, "%s|%s", key_of(c, d->name), S(d->country));
            } else {
                t->address_key = tw_arena_printf(c->arena, "@%.3f,%.3f", pl.lat, pl.lon);
            }
            if (!t->address_key) {
                c->oom = 1;
                t->address_key = "";
            }
        }
    }
    if (!t->address_key[0])
        t->address_key = key_of(c, p->address);
    /* Normalised identifiers: "<path>.identifiers[i]". */
    const char *idp = cat(c, path, ".identifiers[");
    size_t idl = strlen(idp);
    size_t n = 0;
    for (size_t i = 0; i < c->d->n_identifiers; i++) {
        const Tidewatch__V1__DerivedIdentifier *d = c->d->identifiers[i];
        if (d && d->field && strncmp(d->field, idp, idl) == 0 && d->value && d->value[0])
            n++;
    }
    if (n) {
        t->idents = tw_arena_calloc(c->arena, n, sizeof *t->idents);
        if (!t->idents) {
            c->oom = 1;
            return t->party_id;
        }
        for (size_t i = 0; i < c->d->n_identifiers; i++) {
            const Tidewatch__V1__DerivedIdentifier *d = c->d->identifiers[i];
            if (d && d->field && strncmp(d->field, idp, idl) == 0 && d->value && d->value[0])
                t->idents[t->nidents++] = (tw_prov_ident){.kind = S(d->kind), .value = d->value};
        }
    }
    return t->party_id;
}

static tw_prov_equipment *equipment(ctx *c, const Tidewatch__V1__Equipment *eq, const char *field)
{
    if (!eq)
        return NULL;
    tw_prov_equipment *q = tw_arena_calloc(c->arena, 1, sizeof *q);
    if (!q) {
        c->oom = 1;
        return NULL;
    }
    q->kind = (int)eq->kind;
    q->maker = maker_name(eq->make);
    q->model = S(eq->model);
    q->field = field;
    size_t nser = eq->n_serials;
    bool hull = eq->hull_number && eq->hull_number[0];
    size_t n = nser + (hull ? 1 : 0);
    if (n) {
        q->readings = tw_arena_calloc(c->arena, n, sizeof *q->readings);
        if (!q->readings) {
            c->oom = 1;
            return q;
        }
    }
    for (size_t j = 0; j < nser; j++) {
        const Tidewatch__V1__SerialReading *r = eq->serials[j];
        if (!r)
            continue;
        tw_prov_reading *x = &q->readings[q->nreadings++];
        x->field = str(c, tw_arena_printf(c->arena, "%s.serials[%zu]", field, j));
        x->key_kind = TW_PROV_KEY_SERIAL;
        x->raw = S(r->text);
        x->method = (int)r->method;
        x->completeness = (int)r->completeness;
        x->maker = q->maker;
        const Tidewatch__V1__DerivedSerial *d = find_serial(c, x->field);
        x->key = d ? S(d->key) : "";
        x->loose = d && d->loose ? d->loose : loose_of(c, x->key);
        x->format = d ? S(d->format) : "";
        x->partial = d ? (d->partial || strchr(x->key, '?') != NULL) : false;
    }
    if (hull) {
        tw_prov_reading *x = &q->readings[q->nreadings++];
        x->field = cat(c, field, ".hull_number");
        x->key_kind = TW_PROV_KEY_HULL;
        x->raw = eq->hull_number;
        x->maker = "";
        const Tidewatch__V1__DerivedHull *d = find_hull(c, field);
        x->key = d ? S(d->key) : "";
        x->loose = loose_of(c, x->key);
        x->format = d ? S(d->kind) : "";
        x->partial = d ? (d->partial || strchr(x->key, '?') != NULL) : false;
    }
    return q;
}

static int alloc_lines(ctx *c, size_t n)
{
    if (n > TW_PROVROWS_MAX_LINES)
        n = TW_PROVROWS_MAX_LINES;
    if (n == 0)
        return 0;
    c->out->lines = tw_arena_calloc(c->arena, n, sizeof *c->out->lines);
    if (!c->out->lines) {
        c->oom = 1;
        return -1;
    }
    return (int)n;
}

static tw_prov_line *line(ctx *c, const char *body, size_t i, const Tidewatch__V1__Equipment *eq,
                          uint32_t qty)
{
    tw_prov_line *l = &c->out->lines[c->out->nlines++];
    l->line = (int)i;
    l->line_field = str(c, tw_arena_printf(c->arena, "%s%s.items[%zu]", c->prefix, body, i));
    l->equipment = equipment(c, eq, cat(c, l->line_field, ".equipment"));
    l->hop_kind = c->out->body_kind;
    l->quantity = qty ? qty : 1;
    l->currency = "";
    return l;
}

static void purchase(ctx *c, const Tidewatch__V1__Purchase *p)
{
    tw_prov_event *e = c->out;
    e->body_kind = TW_PROV_HOP_SALE;
    e->has_time = ts(p->time, &e->time_us);
    e->from_party = party(c, p->seller, TW_PROV_ROLE_SELLER, "purchase");
    e->to_party = party(c, p->buyer, TW_PROV_ROLE_BUYER, "purchase");
    place(c, &e->place, p->place, cat(c, c->prefix, "purchase.place"), false);
    place(c, &e->origin, NULL, "", false);
    e->payment = (int)p->payment;
    e->invoice_ref = S(p->invoice_ref);
    int n = alloc_lines(c, p->n_items);
    for (int i = 0; i < n; i++) {
        const Tidewatch__V1__LineItem *li = p->items[i];
        tw_prov_line *l = line(c, "purchase", (size_t)i, li ? li->equipment : NULL,
                               li ? li->quantity : 0);
        if (li && li->unit_price) {
            l->currency = S(li->unit_price->currency);
            l->has_price = true;
            l->unit_price_minor = li->unit_price->amount_minor;
        }
    }
}

static void shipment(ctx *c, const Tidewatch__V1__Shipment *s)
{
    tw_prov_event *e = c->out;
    e->body_kind = TW_PROV_HOP_SHIPMENT;
    e->has_time = ts(s->dispatched, &e->time_us);
    e->has_expected = ts(s->expected, &e->expected_us);
    e->has_delivered = ts(s->delivered, &e->delivered_us);
    if (!e->has_time && e->has_delivered) {
        e->has_time = true;
        e->time_us = e->delivered_us;
    }
    e->from_party = party(c, s->shipper, TW_PROV_ROLE_SHIPPER, "shipment");
    e->carrier_party = party(c, s->carrier, TW_PROV_ROLE_CARRIER, "shipment");
    e->to_party = party(c, s->consignee, TW_PROV_ROLE_CONSIGNEE, "shipment");
    place(c, &e->origin, s->origin, cat(c, c->prefix, "shipment.origin"), false);
    place(c, &e->place, s->destination, cat(c, c->prefix, "shipment.destination"), false);
    e->consignment_ref = S(s->consignment_ref);
    e->vehicle = S(s->vehicle_registration);
    int n = alloc_lines(c, s->n_items);
    for (int i = 0; i < n; i++) {
        const Tidewatch__V1__LineItem *li = s->items[i];
        tw_prov_line *l = line(c, "shipment", (size_t)i, li ? li->equipment : NULL,
                               li ? li->quantity : 0);
        if (li && li->unit_price) {
            l->currency = S(li->unit_price->currency);
            l->has_price = true;
            l->unit_price_minor = li->unit_price->amount_minor;
        }
    }
}

static void seizure(ctx *c, const Tidewatch__V1__Seizure *s)
{
    tw_prov_event *e = c->out;
    e->body_kind = TW_PROV_HOP_SEIZURE;
    e->has_time = ts(s->time, &e->time_us);
    e->to_party = party(c, s->agency, TW_PROV_ROLE_AGENCY, "seizure");
    place(c, &e->place, s->place, cat(c, c->prefix, "seizure.place"), false);
    place(c, &e->origin, NULL, "", false);
    e->case_ref = S(s->case_ref);
    e->launch = s->launch != NULL;
    int n = alloc_lines(c, s->n_items);
    for (int i = 0; i < n; i++) {
        const Tidewatch__V1__SeizedItem *si = s->items[i];
        tw_prov_line *l = line(c, "seizure", (size_t)i, si ? si->equipment : NULL,
                               si ? si->quantity : 0);
        l->condition = si ? (int)si->condition : 0;
    }
}

static int fail(char *err, size_t errlen, const char *why)
{
    if (errlen)
        snprintf(err, errlen, "%s", why);
    return -1;
}

int tw_provrows_decode(const tw_provrows_input *in, tw_arena *arena, tw_prov_event *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!in || !arena || (!in->payload && in->payload_len) || (!in->derived && in->derived_len))
        return fail(err, errlen, "invalid arguments");
    if (in->event_id <= 0 || in->event_id > INT64_MAX / TW_PROVROWS_ID_STRIDE - 1)
        return fail(err, errlen, "event id out of range");
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(arena);
    Tidewatch__V1__Record *rec =
        tidewatch__v1__record__unpack(&alloc, in->payload_len, in->payload ? in->payload
                                                                            : (const uint8_t *)"");
    if (!rec)
        return fail(err, errlen,
                    tw_arena_limit_hit(arena) ? "payload: decoding memory limit reached"
                                              : "payload: not a valid tidewatch.v1.Record");
    static const Tidewatch__V1__DerivedRecord empty = TIDEWATCH__V1__DERIVED_RECORD__INIT;
    const Tidewatch__V1__DerivedRecord *d = &empty;
    if (in->derived_len) {
        d = tidewatch__v1__derived_record__unpack(&alloc, in->derived_len, in->derived);
        if (!d)
            return fail(err, errlen,
                        tw_arena_limit_hit(arena)
                            ? "derived: decoding memory limit reached"
                            : "derived: not a valid tidewatch.v1.DerivedRecord");
    }
    ctx c = {.in = in, .arena = arena, .d = d, .out = out};
    out->event_id = in->event_id;
    out->kind = in->kind;
    out->source = S(in->source);
    out->source_ref = S(in->source_ref);
    out->received_us = in->received_us;
    out->invoice_ref = out->consignment_ref = out->vehicle = out->case_ref = "";
    out->corrects_source = out->corrects_ref = "";
    place(&c, &out->origin, NULL, "", false);
    place(&c, &out->place, NULL, "", false);
    if (rec->grading) {
        out->grading_source = (int)rec->grading->source;
        out->grading_info = (int)rec->grading->information;
        out->grading_handling = (int)rec->grading->handling;
    }
    out->parties = tw_arena_calloc(arena, 6, sizeof *out->parties);
    if (!out->parties)
        return fail(err, errlen, "out of memory");
    int want = 0;
    switch (rec->body_case) {
    case TIDEWATCH__V1__RECORD__BODY_PURCHASE: want = 1; break;
    case TIDEWATCH__V1__RECORD__BODY_SHIPMENT: want = 2; break;
    case TIDEWATCH__V1__RECORD__BODY_SEIZURE: want = 3; break;
    case TIDEWATCH__V1__RECORD__BODY_CORRECTION: want = 4; break;
    default: break;
    }
    if (want == 0 || want != in->kind)
        return fail(err, errlen, "the record's body does not match the event's kind");
    switch (rec->body_case) {
    case TIDEWATCH__V1__RECORD__BODY_PURCHASE:
        if (rec->purchase)
            purchase(&c, rec->purchase);
        break;
    case TIDEWATCH__V1__RECORD__BODY_SHIPMENT:
        if (rec->shipment)
            shipment(&c, rec->shipment);
        break;
    case TIDEWATCH__V1__RECORD__BODY_SEIZURE:
        if (rec->seizure)
            seizure(&c, rec->seizure);
        break;
    default: {
        const Tidewatch__V1__Correction *k = rec->correction;
        if (!k || !k->corrects || !k->corrects->source || !k->corrects->source[0] ||
            !k->corrects->source_ref || !k->corrects->source_ref[0])
            return fail(err, errlen, "a correction without the record it corrects");
        out->is_correction = true;
        out->corrects_source = k->corrects->source;
        out->corrects_ref = k->corrects->source_ref;
        snprintf(c.prefix, sizeof c.prefix, "correction.");
        switch (k->replacement_case) {
        case TIDEWATCH__V1__CORRECTION__REPLACEMENT_PURCHASE:
            if (k->purchase)
                purchase(&c, k->purchase);
            break;
        case TIDEWATCH__V1__CORRECTION__REPLACEMENT_SHIPMENT:
            if (k->shipment)
                shipment(&c, k->shipment);
            break;
        case TIDEWATCH__V1__CORRECTION__REPLACEMENT_SEIZURE:
            if (k->seizure)
                seizure(&c, k->seizure);
            break;
        default:
            break;
        }
        out->retraction = out->body_kind == 0;
        break;
    }
    }
    if (c.oom)
        return fail(err, errlen,
                    tw_arena_limit_hit(arena) ? "decoding memory limit reached" : "out of memory");
    return 0;
}

/* ---- the jsonb document ---------------------------------------------------- */

typedef struct jb {
    json_t *o;
    int bad;
} jb;

static void put(jb *b, json_t *o, const char *k, json_t *v)
{
    if (!v || json_object_set_new(o, k, v) != 0)
        b->bad = 1;
}

static void put_s(jb *b, json_t *o, const char *k, const char *s)
{
    put(b, o, k, json_string(s ? s : ""));
}

static void put_i(jb *b, json_t *o, const char *k, int64_t v)
{
    put(b, o, k, json_integer((json_int_t)v));
}

static void put_f(jb *b, json_t *o, const char *k, bool has, double v)
{
    put(b, o, k, has && isfinite(v) ? json_real(v) : json_null());
}

static void put_time(jb *b, json_t *o, const char *k, bool has, int64_t us)
{
    if (!has) {
        put(b, o, k, json_null());
        return;
    }
    int64_t s = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        s -= 1;
    }
    time_t t = (time_t)s;
    struct tm tm;
    char buf[64];
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) {
        put(b, o, k, json_null());
        return;
    }
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
    put_s(b, o, k, buf);
}

static void put_party(jb *b, json_t *o, const char *k, int64_t id)
{
    put(b, o, k, id ? json_integer((json_int_t)id) : json_null());
}

const char *tw_provrows_method_name(int m)
{
    switch (m) {
    case 1: return "plate";
    case 2: return "stamp";
    case 3: return "etched_recovery";
    case 4: return "document";
    default: return "";
    }
}

static json_t *reading_json(jb *b, const tw_prov_reading *r)
{
    json_t *o = json_object();
    if (!o) {
        b->bad = 1;
        return NULL;
    }
    put_s(b, o, "field", r->field);
    put_i(b, o, "key_kind", r->key_kind);
    put_s(b, o, "key", r->key);
    put_s(b, o, "loose", r->loose);
    put_s(b, o, "raw", r->raw);
    put_i(b, o, "method", r->method);
    put_s(b, o, "mname", tw_provrows_method_name(r->method));
    put_i(b, o, "completeness", r->completeness);
    put_s(b, o, "format", r->format);
    put_s(b, o, "maker", r->maker);
    put(b, o, "partial", json_boolean(r->partial));
    return o;
}

static json_t *equipment_json(jb *b, const tw_prov_equipment *q)
{
    json_t *o = json_object(), *rs = json_array();
    if (!o || !rs) {
        json_decref(o);
        json_decref(rs);
        b->bad = 1;
        return NULL;
    }
    put_s(b, o, "field", q->field);
    put_i(b, o, "kind", q->kind);
    put_s(b, o, "maker", q->maker);
    put_s(b, o, "model", q->model);
    for (size_t i = 0; i < q->nreadings; i++) {
        json_t *r = reading_json(b, &q->readings[i]);
        if (!r || json_array_append_new(rs, r) != 0)
            b->bad = 1;
    }
    put(b, o, "readings", rs);
    return o;
}

static void put_place(jb *b, json_t *h, const char *pfx, const tw_prov_place *p, bool hub)
{
    char k[32];
    snprintf(k, sizeof k, "%s_name", pfx);
    put_s(b, h, k, p->name);
    snprintf(k, sizeof k, "%s_country", pfx);
    put_s(b, h, k, p->country);
    snprintf(k, sizeof k, "%s_lat", pfx);
    put_f(b, h, k, p->has_coords, p->lat);
    snprintf(k, sizeof k, "%s_lon", pfx);
    put_f(b, h, k, p->has_coords, p->lon);
    if (hub) {
        put_s(b, h, "place_hub", p->hub);
        put_s(b, h, "place_hub_kind", p->hub_kind);
        put_s(b, h, "coast_hub", p->coast_hub);
        put_f(b, h, "coast_hub_km", p->has_coast_km, p->coast_km);
    }
}

static json_t *hop_json(jb *b, const tw_prov_event *e, const tw_prov_line *l)
{
    json_t *h = json_object();
    if (!h) {
        b->bad = 1;
        return NULL;
    }
    put_i(b, h, "event_id", e->event_id);
    put_i(b, h, "line", l->line);
    put_i(b, h, "kind", l->hop_kind);
    put_s(b, h, "line_field", l->line_field);
    put_i(b, h, "quantity", (int64_t)l->quantity);
    put_time(b, h, "occurred_at", e->has_time, e->time_us);
    put_time(b, h, "expected_at", e->has_expected, e->expected_us);
    put_time(b, h, "delivered_at", e->has_delivered, e->delivered_us);
    put_time(b, h, "received_at", true, e->received_us);
    put_s(b, h, "source", e->source);
    put_s(b, h, "source_ref", e->source_ref);
    put_i(b, h, "grading_source", e->grading_source);
    put_i(b, h, "grading_info", e->grading_info);
    put_i(b, h, "grading_handling", e->grading_handling);
    put_party(b, h, "from_party", e->from_party);
    put_party(b, h, "to_party", e->to_party);
    put_party(b, h, "carrier_party", e->carrier_party);
    put_place(b, h, "origin", &e->origin, false);
    put_place(b, h, "place", &e->place, true);
    put_s(b, h, "currency", l->currency);
    put(b, h, "unit_price_minor",
        l->has_price ? json_integer((json_int_t)l->unit_price_minor) : json_null());
    put_i(b, h, "payment", e->payment);
    put_s(b, h, "invoice_ref", e->invoice_ref);
    put_s(b, h, "consignment_ref", e->consignment_ref);
    put_s(b, h, "vehicle", e->vehicle);
    put_s(b, h, "case_ref", e->case_ref);
    put_i(b, h, "condition", l->condition);
    put(b, h, "launch", json_boolean(e->launch));
    return h;
}

char *tw_provrows_json(const tw_prov_event *e, uint64_t tx, size_t *len)
{
    jb b = {0};
    json_t *o = json_object(), *parties = json_array(), *idents = json_array(),
           *lines = json_array();
    char txs[32];
    char *out = NULL;
    if (!o || !parties || !idents || !lines) {
        json_decref(parties);
        json_decref(idents);
        json_decref(lines);
        goto done;
    }
    snprintf(txs, sizeof txs, "%llu", (unsigned long long)tx);
    put_i(&b, o, "id", e->event_id);
    put_s(&b, o, "tx", txs);
    put_s(&b, o, "source", e->source);
    put_s(&b, o, "ref", e->source_ref);
    if (e->is_correction) {
        json_t *c = json_object();
        if (c) {
            put_s(&b, c, "source", e->corrects_source);
            put_s(&b, c, "ref", e->corrects_ref);
            put(&b, c, "retraction", json_boolean(e->retraction));
        }
        put(&b, o, "corr", c);
    }
    for (size_t i = 0; i < e->nparties; i++) {
        const tw_prov_party *p = &e->parties[i];
        json_t *r = json_object();
        if (!r || json_array_append_new(parties, r) != 0) {
            b.bad = 1;
            break;
        }
        put_i(&b, r, "party_id", p->party_id);
        put_i(&b, r, "event_id", e->event_id);
        put_s(&b, r, "role", p->role_name);
        put_i(&b, r, "kind", p->kind);
        put_s(&b, r, "name", p->name);
        put_s(&b, r, "name_key", p->name_key);
        put_s(&b, r, "country", p->country);
        put_s(&b, r, "address", p->address);
        put_s(&b, r, "address_key", p->address_key);
        put_s(&b, r, "place", p->place);
        put_f(&b, r, "lat", p->has_coords, p->lat);
        put_f(&b, r, "lon", p->has_coords, p->lon);
        for (size_t j = 0; j < p->nidents; j++) {
            json_t *x = json_object();
            if (!x || json_array_append_new(idents, x) != 0) {
                b.bad = 1;
                break;
            }
            put_i(&b, x, "party_id", p->party_id);
            put_s(&b, x, "kind", p->idents[j].kind);
            put_s(&b, x, "value", p->idents[j].value);
        }
    }
    for (size_t i = 0; i < e->nlines; i++) {
        const tw_prov_line *l = &e->lines[i];
        json_t *x = json_object();
        if (!x || json_array_append_new(lines, x) != 0) {
            b.bad = 1;
            break;
        }
        put_i(&b, x, "line", l->line);
        put(&b, x, "eq", l->equipment ? equipment_json(&b, l->equipment) : json_null());
        put(&b, x, "hop", hop_json(&b, e, l));
    }
    put(&b, o, "parties", parties);
    put(&b, o, "idents", idents);
    put(&b, o, "lines", lines);
    if (!b.bad)
        out = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17));
    if (out && len)
        *len = strlen(out);
done:
    json_decref(o);
    return out;
}
