/* Unit tests for tw_provrows: events of each kind decoded into provenance
 * rows, with the derived record made by tw_record_validate (as ingest
 * stores it), so field paths are those ingest really writes. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tidewatch/v1/derived.pb-c.h"
#include "tidewatch/v1/records.pb-c.h"
#include "tw_places.h"
#include "tw_provrows.h"
#include "tw_record.h"

#define NOW 1790000000LL /* 2026-09 */
#define T_SALE (NOW - 30 * 86400)

static const char HUBS[] = "name,aliases,country,locode,lat,lon,kind\n"
                           "Calais,,FR,FRCQF,50.95194,1.85635,coast\n"
                           "Gravelines,,FR,,50.98650,2.12800,coast\n"
                           "Lille,,FR,FRLLE,50.63297,3.05858,inland\n";
static const char GAZ[] = "country,name,lat,lon,admin1\n"
                          "DE,Leer,53.23157,7.461,06\n"
                          "FR,Dunkerque,51.03297,2.377,32\n";

static tw_places *places;
static tw_arena arena;

static void setup(void)
{
    char err[256];
    places = tw_places_load_mem(HUBS, sizeof HUBS - 1, GAZ, sizeof GAZ - 1, NULL, 0, NULL, 0, err,
                                sizeof err);
    cr_assert_not_null(places, "%s", err);
    tw_arena_init(&arena, 0);
}

static void teardown(void)
{
    tw_arena_free(&arena);
    tw_places_free(places);
}

TestSuite(provrows, .init = setup, .fini = teardown);

/* ---- building records ---------------------------------------------------- */

static void *A(size_t n)
{
    void *p = tw_arena_calloc(&arena, 1, n);
    cr_assert_not_null(p);
    return p;
}

static Google__Protobuf__Timestamp *ts(int64_t s)
{
    Google__Protobuf__Timestamp *t = A(sizeof *t);
    google__protobuf__timestamp__init(t);
    t->seconds = s;
    return t;
}

static Tidewatch__V1__Party *party(Tidewatch__V1__Party__Kind kind, const char *name,
                                   const char *country, const char *phone, const char *town)
{
    Tidewatch__V1__Party *p = A(sizeof *p);
    tidewatch__v1__party__init(p);
    p->kind = kind;
    p->name = (char *)name;
    p->country = (char *)country;
    if (phone) {
        Tidewatch__V1__PartyIdentifier *id = A(sizeof *id);
        tidewatch__v1__party_identifier__init(id);
        id->kind = TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE;
        id->value = (char *)phone;
        p->identifiers = A(sizeof *p->identifiers);
        p->identifiers[0] = id;
        p->n_identifiers = 1;
    }
    if (town) {
        p->place = A(sizeof *p->place);
        tidewatch__v1__place__init(p->place);
        p->place->name = (char *)town;
        p->place->country = (char *)country;
    }
    return p;
}

static Tidewatch__V1__Place *place(const char *name, const char *country)
{
    Tidewatch__V1__Place *p = A(sizeof *p);
    tidewatch__v1__place__init(p);
    p->name = (char *)name;
    p->country = (char *)country;
    return p;
}

/* An engine with readings given as text, method, complete pairs (NULL ends). */
static Tidewatch__V1__Equipment *engine(const char *make, const char *t1, int m1, int c1,
                                        const char *t2, int m2, int c2)
{
    Tidewatch__V1__Equipment *e = A(sizeof *e);
    tidewatch__v1__equipment__init(e);
    e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
    e->make = (char *)make;
    e->model = (char *)"F40FETL";
    e->serials = A(2 * sizeof *e->serials);
    const char *t[2] = {t1, t2};
    int m[2] = {m1, m2}, c[2] = {c1, c2};
    for (int i = 0; i < 2 && t[i]; i++) {
        Tidewatch__V1__SerialReading *r = A(sizeof *r);
        tidewatch__v1__serial_reading__init(r);
        r->text = (char *)t[i];
        r->method = m[i];
        r->completeness = c[i] ? TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__COMPLETE
                               : TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__PARTIAL;
        e->serials[e->n_serials++] = r;
    }
    return e;
}

static Tidewatch__V1__LineItem *li(Tidewatch__V1__Equipment *e, uint32_t q)
{
    Tidewatch__V1__LineItem *l = A(sizeof *l);
    tidewatch__v1__line_item__init(l);
    l->equipment = e;
    l->quantity = q;
    return l;
}

static Tidewatch__V1__Record *record(const char *src, const char *ref)
{
    Tidewatch__V1__Record *r = A(sizeof *r);
    tidewatch__v1__record__init(r);
    r->source = (char *)src;
    r->source_ref = (char *)ref;
    r->grading = A(sizeof *r->grading);
    tidewatch__v1__grading__init(r->grading);
    r->grading->source = 1;
    r->grading->information = 2;
    r->grading->handling = 1;
    return r;
}

static Tidewatch__V1__Purchase *purchase_body(void)
{
    Tidewatch__V1__Purchase *p = A(sizeof *p);
    tidewatch__v1__purchase__init(p);
    p->seller = party(TIDEWATCH__V1__PARTY__KIND__COMPANY, "Boote Nord GmbH", "DE", NULL, NULL);
    p->buyer = party(TIDEWATCH__V1__PARTY__KIND__PERSON, "A. Karimi", "DE", "01512 3456789", "Leer");
    p->items = A(sizeof *p->items);
    p->items[0] = li(engine("Yamaha", "6E5-X-1O16523", 1, 1, NULL, 0, 0), 0);
    p->items[0]->unit_price = A(sizeof *p->items[0]->unit_price);
    tidewatch__v1__money__init(p->items[0]->unit_price);
    p->items[0]->unit_price->currency = (char *)"EUR";
    p->items[0]->unit_price->amount_minor = 689000;
    p->n_items = 1;
    p->payment = TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH;
    p->place = place("Leer", "DE");
    p->time = ts(T_SALE);
    p->invoice_ref = (char *)"RE-1";
    return p;
}

static Tidewatch__V1__Shipment *shipment_body(const char *dest)
{
    Tidewatch__V1__Shipment *s = A(sizeof *s);
    tidewatch__v1__shipment__init(s);
    s->shipper = party(TIDEWATCH__V1__PARTY__KIND__PERSON, "A. Karimi", "DE", NULL, NULL);
    s->carrier = party(TIDEWATCH__V1__PARTY__KIND__COMPANY, "Trans Europa BV", "BE", NULL, NULL);
    s->consignee = party(TIDEWATCH__V1__PARTY__KIND__PERSON, "M. Rahimi", "FR", NULL, NULL);
    s->origin = place("Leer", "DE");
    s->destination = place(dest, "FR");
    s->delivered = ts(T_SALE + 86400);
    s->consignment_ref = (char *)"TE-1";
    s->vehicle_registration = (char *)"1-ABC-234";
    s->items = A(3 * sizeof *s->items);
    s->items[0] = li(engine("yamaha motor", "6E5X1016523", 4, 1, NULL, 0, 0), 0);
    Tidewatch__V1__Equipment *bulk = A(sizeof *bulk);
    tidewatch__v1__equipment__init(bulk);
    bulk->kind = TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
    bulk->description = (char *)"outboards";
    s->items[1] = li(bulk, 10);
    Tidewatch__V1__Equipment *boat = A(sizeof *boat);
    tidewatch__v1__equipment__init(boat);
    boat->kind = TIDEWATCH__V1__EQUIPMENT__KIND__BOAT;
    boat->make = (char *)"Zodiac";
    boat->hull_number = (char *)"GB-ABC00042-A3-99";
    s->items[2] = li(boat, 0);
    s->n_items = 3;
    return s;
}

typedef struct packed {
    uint8_t *payload, *derived;
    size_t payload_len, derived_len;
} packed;

/* Validate as ingest does, then pack the record and its stored derived. */
static packed pack(const Tidewatch__V1__Record *r)
{
    tw_record_ctx ctx = {.now_s = NOW, .places = places};
    tw_record_check chk;
    cr_assert_eq(tw_record_validate(&ctx, r, &arena, &chk), 0);
    for (size_t i = 0; i < chk.nerrors; i++)
        cr_log_error("%s: %s", chk.errors[i].field, chk.errors[i].reason);
    cr_assert_eq(chk.nerrors, 0, "the test record must be valid");
    packed p;
    p.payload_len = tidewatch__v1__record__get_packed_size(r);
    p.payload = A(p.payload_len + 1);
    tidewatch__v1__record__pack(r, p.payload);
    uint8_t *d = tw_record_stored_derived(&chk, &p.derived_len);
    cr_assert_not_null(d);
    p.derived = A(p.derived_len + 1);
    memcpy(p.derived, d, p.derived_len);
    free(d);
    return p;
}

static tw_prov_event decode_ok(int64_t id, int kind, const Tidewatch__V1__Record *r)
{
    packed p = pack(r);
    tw_provrows_input in = {.event_id = id, .kind = kind, .source = r->source,
                            .source_ref = r->source_ref, .received_us = NOW * 1000000LL,
                            .payload = p.payload, .payload_len = p.payload_len,
                            .derived = p.derived, .derived_len = p.derived_len, .places = places};
    tw_prov_event e;
    char err[256];
    cr_assert_eq(tw_provrows_decode(&in, &arena, &e, err, sizeof err), 0, "%s", err);
    return e;
}

/* ---- purchases ------------------------------------------------------------ */

Test(provrows, purchase_rows)
{
    Tidewatch__V1__Record *r = record("retailer.de", "INV-1");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_PURCHASE;
    r->purchase = purchase_body();
    tw_prov_event e = decode_ok(7, 1, r);
    cr_assert_eq(e.body_kind, TW_PROV_HOP_SALE);
    cr_assert_eq(e.grading_source, 1);
    cr_assert_eq(e.grading_info, 2);
    cr_assert(e.has_time);
    cr_assert_eq(e.time_us, T_SALE * 1000000LL);
    cr_assert_not(e.is_correction);
    cr_assert_eq(e.nlines, 1);
    const tw_prov_line *l = &e.lines[0];
    cr_assert_str_eq(l->line_field, "purchase.items[0]");
    cr_assert_eq(l->quantity, 1, "quantity 0 means 1");
    cr_assert(l->has_price);
    cr_assert_str_eq(l->currency, "EUR");
    cr_assert_eq(l->unit_price_minor, 689000);
    const tw_prov_equipment *q = l->equipment;
    cr_assert_not_null(q);
    cr_assert_str_eq(q->maker, "Yamaha");
    cr_assert_str_eq(q->field, "purchase.items[0].equipment");
    cr_assert_eq(q->nreadings, 1);
    const tw_prov_reading *x = &q->readings[0];
    cr_assert_str_eq(x->field, "purchase.items[0].equipment.serials[0]");
    cr_assert_eq(x->key_kind, TW_PROV_KEY_SERIAL);
    cr_assert_str_eq(x->key, "6E5X1016523", "the OCR fix from ingest's key");
    cr_assert_str_eq(x->raw, "6E5-X-1O16523");
    cr_assert_str_eq(x->format, "Yamaha");
    cr_assert_str_eq(x->maker, "Yamaha");
    cr_assert_not(x->partial);
    /* Parties: ids by role, identifiers normalised, the buyer's town. */
    cr_assert_eq(e.nparties, 2);
    cr_assert_eq(e.from_party, 7 * 1024 + TW_PROV_ROLE_SELLER);
    cr_assert_eq(e.to_party, 7 * 1024 + TW_PROV_ROLE_BUYER);
    cr_assert_eq(e.carrier_party, 0);
    const tw_prov_party *b = &e.parties[1];
    cr_assert_str_eq(b->role_name, "buyer");
    cr_assert_str_eq(b->name_key, "a karimi");
    cr_assert_str_eq(b->place, "Leer");
    cr_assert_str_eq(b->address_key, "leer|DE");
    cr_assert(b->has_coords);
    cr_assert_eq(b->nidents, 1);
    cr_assert_str_eq(b->idents[0].kind, "phone");
    cr_assert_str_eq(b->idents[0].value, "+4915123456789");
    cr_assert_eq(e.parties[0].nidents, 0);
    /* The sale place, resolved by ingest, with its nearest coast hub. */
    cr_assert(e.place.has_coords);
    cr_assert_str_eq(e.place.name, "Leer");
    cr_assert_str_eq(e.place.coast_hub, "Gravelines");
    cr_assert(e.place.has_coast_km && e.place.coast_km > 300 && e.place.coast_km < 500);
    cr_assert_not(e.origin.present);
}

/* ---- shipments: bulk lines and hull numbers ------------------------------ */

Test(provrows, shipment_bulk_line_and_hull_number)
{
    Tidewatch__V1__Record *r = record("carrier.be", "CMR-1");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SHIPMENT;
    r->shipment = shipment_body("Dunkerque");
    tw_prov_event e = decode_ok(9, 2, r);
    cr_assert_eq(e.body_kind, TW_PROV_HOP_SHIPMENT);
    cr_assert(e.has_time, "no dispatch: the delivery is the event time");
    cr_assert_eq(e.time_us, (T_SALE + 86400) * 1000000LL);
    cr_assert(e.has_delivered);
    cr_assert_not(e.has_expected);
    cr_assert_eq(e.from_party, 9 * 1024 + TW_PROV_ROLE_SHIPPER);
    cr_assert_eq(e.carrier_party, 9 * 1024 + TW_PROV_ROLE_CARRIER);
    cr_assert_eq(e.to_party, 9 * 1024 + TW_PROV_ROLE_CONSIGNEE);
    cr_assert_str_eq(e.origin.name, "Leer");
    cr_assert_str_eq(e.place.name, "Dunkerque");
    cr_assert_str_eq(e.consignment_ref, "TE-1");
    cr_assert_str_eq(e.vehicle, "1-ABC-234");
    cr_assert_eq(e.nlines, 3);
    cr_assert_str_eq(e.lines[0].equipment->maker, "Yamaha", "\"yamaha motor\" is Yamaha");
    cr_assert_eq(e.lines[0].equipment->readings[0].method, 4);
    /* A bulk line: equipment without readings, its quantity kept. */
    cr_assert_eq(e.lines[1].quantity, 10);
    cr_assert_eq(e.lines[1].equipment->nreadings, 0);
    /* A boat: its hull number is a reading of key kind 2, maker "". */
    const tw_prov_equipment *boat = e.lines[2].equipment;
    cr_assert_eq(boat->nreadings, 1);
    cr_assert_eq(boat->readings[0].key_kind, TW_PROV_KEY_HULL);
    cr_assert_str_eq(boat->readings[0].field, "shipment.items[2].equipment.hull_number");
    cr_assert_str_eq(boat->readings[0].key, "GBABC00042A399");
    cr_assert_str_eq(boat->readings[0].format, "EU CIN");
    cr_assert_str_eq(boat->readings[0].maker, "");
    cr_assert_str_eq(boat->maker, "", "Zodiac is no maker we key by");
}

/* ---- seizures: disagreeing and partial readings --------------------------- */

Test(provrows, seizure_plate_and_partial_stamp)
{
    Tidewatch__V1__Record *r = record("police.fr", "PV-1");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SEIZURE;
    Tidewatch__V1__Seizure *z = A(sizeof *z);
    tidewatch__v1__seizure__init(z);
    z->agency = party(TIDEWATCH__V1__PARTY__KIND__AGENCY, "Gendarmerie", "FR", NULL, NULL);
    z->case_ref = (char *)"2026/1";
    z->place = place("Gravelines", "FR");
    z->place->coordinates = A(sizeof *z->place->coordinates);
    tidewatch__v1__lat_lon__init(z->place->coordinates);
    z->place->coordinates->lat = 50.9866;
    z->place->coordinates->lon = 2.1286;
    z->time = ts(T_SALE + 5 * 86400);
    z->items = A(sizeof *z->items);
    z->items[0] = A(sizeof *z->items[0]);
    tidewatch__v1__seized_item__init(z->items[0]);
    z->items[0]->equipment = engine("Yamaha", "6E5-X-1016523", 1, 1, "6E5X10?65?3", 2, 0);
    z->items[0]->condition = TIDEWATCH__V1__SEIZED_ITEM__CONDITION__DAMAGED;
    z->n_items = 1;
    z->launch = A(sizeof *z->launch);
    tidewatch__v1__launch_info__init(z->launch);
    z->launch->people_aboard = 30;
    r->seizure = z;
    tw_prov_event e = decode_ok(11, 3, r);
    cr_assert_eq(e.body_kind, TW_PROV_HOP_SEIZURE);
    cr_assert(e.launch);
    cr_assert_str_eq(e.case_ref, "2026/1");
    cr_assert_eq(e.to_party, 11 * 1024 + TW_PROV_ROLE_AGENCY);
    cr_assert_eq(e.from_party, 0);
    cr_assert_eq(e.lines[0].condition, 3);
    cr_assert_str_eq(e.place.coast_hub, "Gravelines");
    cr_assert(e.place.coast_km < 1.0);
    const tw_prov_equipment *q = e.lines[0].equipment;
    cr_assert_eq(q->nreadings, 2);
    cr_assert_not(q->readings[0].partial);
    cr_assert(q->readings[1].partial);
    cr_assert_str_eq(q->readings[1].key, "6E5X10?65?3");
    cr_assert_eq(q->readings[1].method, 2);
    cr_assert_eq(q->readings[1].completeness, 2);
}

/* ---- corrections ------------------------------------------------------------ */

Test(provrows, correction_with_replacement_uses_prefixed_paths)
{
    Tidewatch__V1__Record *r = record("carrier.be", "CMR-1-C1");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
    Tidewatch__V1__Correction *c = A(sizeof *c);
    tidewatch__v1__correction__init(c);
    c->corrects = A(sizeof *c->corrects);
    tidewatch__v1__record_ref__init(c->corrects);
    c->corrects->source = (char *)"carrier.be";
    c->corrects->source_ref = (char *)"CMR-1";
    c->reason = (char *)"Calais, not Dunkerque";
    c->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_SHIPMENT;
    c->shipment = shipment_body("Calais");
    r->correction = c;
    tw_prov_event e = decode_ok(12, 4, r);
    cr_assert(e.is_correction);
    cr_assert_not(e.retraction);
    cr_assert_str_eq(e.corrects_source, "carrier.be");
    cr_assert_str_eq(e.corrects_ref, "CMR-1");
    cr_assert_eq(e.body_kind, TW_PROV_HOP_SHIPMENT);
    cr_assert_eq(e.nlines, 3);
    cr_assert_str_eq(e.lines[0].line_field, "correction.shipment.items[0]");
    cr_assert_str_eq(e.lines[0].equipment->readings[0].key, "6E5X1016523",
                     "derived keys are found under correction.*");
    cr_assert_str_eq(e.lines[2].equipment->readings[0].key, "GBABC00042A399");
    cr_assert_str_eq(e.place.name, "Calais");
    cr_assert(e.place.has_coords, "the replacement's places are resolved too");
}

Test(provrows, retraction_has_no_rows)
{
    Tidewatch__V1__Record *r = record("carrier.be", "CMR-1-R");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
    Tidewatch__V1__Correction *c = A(sizeof *c);
    tidewatch__v1__correction__init(c);
    c->corrects = A(sizeof *c->corrects);
    tidewatch__v1__record_ref__init(c->corrects);
    c->corrects->source = (char *)"carrier.be";
    c->corrects->source_ref = (char *)"CMR-1";
    c->reason = (char *)"never happened";
    r->correction = c;
    tw_prov_event e = decode_ok(13, 4, r);
    cr_assert(e.is_correction);
    cr_assert(e.retraction);
    cr_assert_eq(e.nlines, 0);
    cr_assert_eq(e.nparties, 0);
    size_t len = 0;
    char *js = tw_provrows_json(&e, 42, &len);
    cr_assert_not_null(js);
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    cr_assert_not_null(o, "%s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(o, "tx")), "42");
    cr_assert(json_is_true(json_object_get(json_object_get(o, "corr"), "retraction")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "corr"), "ref")),
                     "CMR-1");
    cr_assert_eq(json_array_size(json_object_get(o, "lines")), 0);
    json_decref(o);
    free(js);
}

/* ---- the jsonb document ------------------------------------------------------ */

Test(provrows, json_document_has_every_hop_column)
{
    Tidewatch__V1__Record *r = record("retailer.de", "INV-2");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_PURCHASE;
    r->purchase = purchase_body();
    tw_prov_event e = decode_ok(5, 1, r);
    size_t len = 0;
    char *js = tw_provrows_json(&e, 7, &len);
    cr_assert_not_null(js);
    cr_assert_eq(len, strlen(js));
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    cr_assert_not_null(o, "%s", je.text);
    cr_assert_null(json_object_get(o, "corr"));
    json_t *ln = json_array_get(json_object_get(o, "lines"), 0);
    json_t *hop = json_object_get(ln, "hop");
    static const char *const cols[] = {
        "event_id", "line", "kind", "line_field", "quantity", "occurred_at", "expected_at",
        "delivered_at", "received_at", "source", "source_ref", "grading_source", "grading_info",
        "grading_handling", "from_party", "to_party", "carrier_party", "origin_name",
        "origin_country", "origin_lat", "origin_lon", "place_name", "place_country", "place_lat",
        "place_lon", "place_hub", "place_hub_kind", "coast_hub", "coast_hub_km", "currency",
        "unit_price_minor", "payment", "invoice_ref", "consignment_ref", "vehicle", "case_ref",
        "condition", "launch"};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        cr_assert_not_null(json_object_get(hop, cols[i]), "hop column %s missing", cols[i]);
    cr_assert_eq(json_object_size(hop), sizeof cols / sizeof cols[0]);
    cr_assert_str_eq(json_string_value(json_object_get(hop, "occurred_at")),
                     "2026-08-22T14:13:20.000000Z");
    cr_assert(json_is_null(json_object_get(hop, "carrier_party")));
    cr_assert_eq(json_integer_value(json_object_get(hop, "from_party")), 5 * 1024);
    json_t *rd = json_array_get(json_object_get(json_object_get(ln, "eq"), "readings"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(rd, "mname")), "plate");
    cr_assert_eq(json_array_size(json_object_get(o, "parties")), 2);
    cr_assert_eq(json_array_size(json_object_get(o, "idents")), 1);
    json_decref(o);
    free(js);
}

/* ---- malformed input ------------------------------------------------------- */

Test(provrows, malformed_input_is_refused)
{
    Tidewatch__V1__Record *r = record("retailer.de", "INV-3");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_PURCHASE;
    r->purchase = purchase_body();
    packed p = pack(r);
    tw_provrows_input in = {.event_id = 1, .kind = 1, .source = "s", .source_ref = "r",
                            .payload = p.payload, .payload_len = p.payload_len,
                            .derived = p.derived, .derived_len = p.derived_len};
    tw_prov_event e;
    char err[256];
    tw_arena a;
    tw_arena_init(&a, 0);
    /* Truncated payload. */
    in.payload_len = p.payload_len - 3;
    cr_assert_eq(tw_provrows_decode(&in, &a, &e, err, sizeof err), -1);
    cr_assert(strstr(err, "payload") != NULL, "%s", err);
    in.payload_len = p.payload_len;
    /* Garbage derived bytes. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    in.derived = junk;
    in.derived_len = sizeof junk;
    cr_assert_eq(tw_provrows_decode(&in, &a, &e, err, sizeof err), -1);
    cr_assert(strstr(err, "derived") != NULL, "%s", err);
    in.derived = p.derived;
    in.derived_len = p.derived_len;
    /* The body does not match the event's kind. */
    in.kind = 3;
    cr_assert_eq(tw_provrows_decode(&in, &a, &e, err, sizeof err), -1);
    in.kind = 1;
    /* Event ids that would overflow item ids. */
    in.event_id = INT64_MAX / 1000;
    cr_assert_eq(tw_provrows_decode(&in, &a, &e, err, sizeof err), -1);
    in.event_id = 1;
    /* No derived record: decodes, keys are "". */
    in.derived = NULL;
    in.derived_len = 0;
    cr_assert_eq(tw_provrows_decode(&in, &a, &e, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(e.lines[0].equipment->readings[0].key, "");
    cr_assert_not(e.place.has_coords);
    /* The arena's limit bounds decoding. */
    tw_arena_free(&a);
    tw_arena_init(&a, 256);
    tw_arena_set_limit(&a, 1024);
    cr_assert_eq(tw_provrows_decode(&in, &a, &e, err, sizeof err), -1);
    cr_assert(strstr(err, "memory limit") != NULL, "%s", err);
    tw_arena_free(&a);
}

/* A line item without equipment, a correction naming nothing, role names. */
Test(provrows, edge_cases)
{
    /* A seizure of a launch only, plus a line item without equipment: a hop
     * without equipment (no readings), quantity 1. */
    Tidewatch__V1__Record *r = record("police.fr", "PV-2");
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SEIZURE;
    Tidewatch__V1__Seizure *z = A(sizeof *z);
    tidewatch__v1__seizure__init(z);
    z->agency = party(TIDEWATCH__V1__PARTY__KIND__AGENCY, "Border Force", "GB", NULL, NULL);
    z->place = place("Calais", "FR");
    z->time = ts(T_SALE);
    z->items = A(sizeof *z->items);
    z->items[0] = A(sizeof *z->items[0]);
    tidewatch__v1__seized_item__init(z->items[0]);
    z->n_items = 1;
    r->seizure = z;
    /* (ingest requires equipment: packed without validating, nothing derived) */
    size_t plen = tidewatch__v1__record__get_packed_size(r);
    uint8_t *pbuf = A(plen + 1);
    tidewatch__v1__record__pack(r, pbuf);
    tw_provrows_input in = {.event_id = 3, .kind = 3, .source = "police.fr", .source_ref = "PV-2",
                            .payload = pbuf, .payload_len = plen};
    tw_prov_event e;
    char err[256];
    cr_assert_eq(tw_provrows_decode(&in, &arena, &e, err, sizeof err), 0, "%s", err);
    cr_assert_eq(e.nlines, 1);
    cr_assert_null(e.lines[0].equipment);
    cr_assert_eq(e.lines[0].quantity, 1);
    cr_assert_not(e.launch);
    cr_assert_str_eq(e.place.coast_hub, "");
    cr_assert_not(e.place.has_coords, "nothing derived: the place stays as given");
    cr_assert_str_eq(e.place.name, "Calais");
    size_t len;
    char *js = tw_provrows_json(&e, 1, &len);
    cr_assert_not_null(js);
    cr_assert(strstr(js, "\"eq\":null") != NULL, "%s", js);
    free(js);

    /* A correction that names no record is refused. */
    Tidewatch__V1__Record *c = record("police.fr", "PV-2-C");
    c->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
    c->correction = A(sizeof *c->correction);
    tidewatch__v1__correction__init(c->correction);
    c->correction->reason = (char *)"x";
    size_t n = tidewatch__v1__record__get_packed_size(c);
    uint8_t *buf = A(n + 1);
    tidewatch__v1__record__pack(c, buf);
    tw_provrows_input ci = {.event_id = 4, .kind = 4, .source = "police.fr", .source_ref = "PV-2-C",
                            .payload = buf, .payload_len = n};
    cr_assert_eq(tw_provrows_decode(&ci, &arena, &e, err, sizeof err), -1);
    cr_assert(strstr(err, "correction") != NULL, "%s", err);

    cr_assert_str_eq(tw_provrows_role_name(TW_PROV_ROLE_CONSIGNEE), "consignee");
    cr_assert_str_eq(tw_provrows_role_name(6), "?");
    cr_assert_str_eq(tw_provrows_role_name(-1), "?");
}
