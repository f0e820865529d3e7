/* Unit tests for tw_record: every rule with a record it accepts and one it
 * rejects, checking the exact field path and code of each issue, plus the
 * derived values (serial and hull keys, places through the shipped tables). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "tw_arena.h"
#include "tw_places.h"
#include "tw_record.h"

/* 2025-06-15T15:06:40Z: the clock of every test. */
#define NOW 1750000000LL

/* ---- fixture -------------------------------------------------------------- */

/* One test's memory: records are built in `a`, issues land in `out`. */
static struct {
    tw_arena a;
    tw_arena out;
    tw_places *places;
    tw_record_check c;
    int have_check;
    json_t *docs[64]; /* derived as JSON, one per validation, freed at teardown */
    size_t ndocs;
} fx;

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    tw_arena_init(&fx.a, 0);
    tw_arena_init(&fx.out, 0);
}

static void teardown(void)
{
    for (size_t i = 0; i < fx.ndocs; i++)
        json_decref(fx.docs[i]);
    if (fx.have_check)
        tw_record_check_free(&fx.c);
    tw_places_free(fx.places);
    tw_arena_free(&fx.a);
    tw_arena_free(&fx.out);
}

TestSuite(record, .init = setup, .fini = teardown);

/* The shipped place tables (hubs, gazetteer, aliases), loaded on demand. */
static const tw_places *real_places(void)
{
    if (fx.places)
        return fx.places;
    const char *src = getenv("TW_SOURCE_DIR");
    cr_assert(src && *src, "TW_SOURCE_DIR is not set: run this test through ctest, or export "
                           "TW_SOURCE_DIR=/path/to/the/repository");
    char hubs[4096], gaz[4096], err[256] = "";
    snprintf(hubs, sizeof hubs, "%s/deploy/data/channel-hubs.csv", src);
    snprintf(gaz, sizeof gaz, "%s/deploy/data/gazetteer.csv", src);
    fx.places = tw_places_load(hubs, gaz, err, sizeof err);
    cr_assert(fx.places, "loading the shipped data failed: %s", err);
    return fx.places;
}

/* ---- builders --------------------------------------------------------------- */

static void *mk(size_t size)
{
    void *p = tw_arena_calloc(&fx.a, 1, size);
    cr_assert(p, "out of memory building a record");
    return p;
}

/* Append p to the repeated field (*arr, *n). */
static void push_ptr(void ***arr, size_t *n, void *p)
{
    void **na = mk((*n + 1) * sizeof *na);
    if (*n)
        memcpy(na, *arr, *n * sizeof *na);
    na[*n] = p;
    *arr = na;
    (*n)++;
}
#define PUSH(arr, n, p) push_ptr((void ***)&(arr), &(n), (p))

/* A string of n copies of c, in the arena. */
static char *rep(char c, size_t n)
{
    char *s = mk(n + 1);
    memset(s, c, n);
    return s;
}

static Google__Protobuf__Timestamp *ts(int64_t seconds)
{
    Google__Protobuf__Timestamp *t = mk(sizeof *t);
    google__protobuf__timestamp__init(t);
    t->seconds = seconds;
    return t;
}

static Tidewatch__V1__Party *party(const char *name)
{
    Tidewatch__V1__Party *p = mk(sizeof *p);
    tidewatch__v1__party__init(p);
    p->kind = TIDEWATCH__V1__PARTY__KIND__COMPANY;
    p->name = (char *)name;
    p->country = (char *)"FR";
    return p;
}

static Tidewatch__V1__PartyIdentifier *identifier(int kind, const char *value)
{
    Tidewatch__V1__PartyIdentifier *id = mk(sizeof *id);
    tidewatch__v1__party_identifier__init(id);
    id->kind = kind;
    id->value = (char *)value;
    return id;
}

static Tidewatch__V1__SerialReading *reading(const char *text)
{
    Tidewatch__V1__SerialReading *r = mk(sizeof *r);
    tidewatch__v1__serial_reading__init(r);
    r->text = (char *)text;
    r->method = TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE;
    r->completeness = TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__COMPLETE;
    return r;
}

static Tidewatch__V1__Equipment *engine(const char *make, const char *serial)
{
    Tidewatch__V1__Equipment *e = mk(sizeof *e);
    tidewatch__v1__equipment__init(e);
    e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
    e->make = (char *)make;
    e->model = (char *)"F40";
    e->power_hp = 40;
    if (serial)
        PUSH(e->serials, e->n_serials, reading(serial));
    return e;
}

static Tidewatch__V1__Equipment *boat(const char *hull)
{
    Tidewatch__V1__Equipment *e = mk(sizeof *e);
    tidewatch__v1__equipment__init(e);
    e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__BOAT;
    e->make = (char *)"Zodiac";
    e->length_m = 7.5;
    if (hull)
        e->hull_number = (char *)hull;
    return e;
}

static Tidewatch__V1__LineItem *line(Tidewatch__V1__Equipment *e)
{
    Tidewatch__V1__LineItem *li = mk(sizeof *li);
    tidewatch__v1__line_item__init(li);
    li->equipment = e;
    li->quantity = 1;
    return li;
}

static Tidewatch__V1__Place *place_named(const char *name, const char *country)
{
    Tidewatch__V1__Place *p = mk(sizeof *p);
    tidewatch__v1__place__init(p);
    p->name = (char *)name;
    if (country)
        p->country = (char *)country;
    return p;
}

static Tidewatch__V1__LatLon *latlon(double lat, double lon)
{
    Tidewatch__V1__LatLon *l = mk(sizeof *l);
    tidewatch__v1__lat_lon__init(l);
    l->lat = lat;
    l->lon = lon;
    return l;
}

static Tidewatch__V1__Grading *grading(int source, int information, int handling)
{
    Tidewatch__V1__Grading *g = mk(sizeof *g);
    tidewatch__v1__grading__init(g);
    g->source = source;
    g->information = information;
    g->handling = handling;
    return g;
}

static Tidewatch__V1__Record *record(void)
{
    Tidewatch__V1__Record *r = mk(sizeof *r);
    tidewatch__v1__record__init(r);
    r->source = (char *)"retailer.fr.example";
    r->source_ref = (char *)"INV-2025-0001";
    r->grading = grading(TIDEWATCH__V1__GRADING__SOURCE_EVALUATION__SOURCE_1_RELIABLE,
                         TIDEWATCH__V1__GRADING__INFORMATION_ASSESSMENT__INFORMATION_A_KNOWN_DIRECTLY,
                         TIDEWATCH__V1__GRADING__HANDLING__HANDLING_P_LAWFUL_SHARING);
    return r;
}

static Tidewatch__V1__Purchase *purchase_body(void)
{
    Tidewatch__V1__Purchase *p = mk(sizeof *p);
    tidewatch__v1__purchase__init(p);
    p->time = ts(NOW - 86400);
    p->seller = party("Example Marine SARL");
    p->buyer = party("Jean Dupont");
    p->buyer->kind = TIDEWATCH__V1__PARTY__KIND__PERSON;
    PUSH(p->items, p->n_items, line(engine("Yamaha", "6E5-X-1016523")));
    p->payment = TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH;
    p->place = place_named("Calais", "FR");
    p->invoice_ref = (char *)"F-0001";
    return p;
}

static Tidewatch__V1__Record *valid_purchase(void)
{
    Tidewatch__V1__Record *r = record();
    r->body_case = TIDEWATCH__V1__RECORD__BODY_PURCHASE;
    r->purchase = purchase_body();
    return r;
}

static Tidewatch__V1__Shipment *shipment_body(void)
{
    Tidewatch__V1__Shipment *s = mk(sizeof *s);
    tidewatch__v1__shipment__init(s);
    s->shipper = party("Example Marine SARL");
    s->carrier = party("Transports Exemple");
    s->consignee = party("Boote GmbH");
    s->consignee->country = (char *)"DE";
    s->origin = place_named("Lille", "FR");
    s->destination = place_named("Osnabrück", "DE");
    s->dispatched = ts(NOW - 3 * 86400);
    s->expected = ts(NOW - 2 * 86400);
    s->delivered = ts(NOW - 86400);
    s->consignment_ref = (char *)"CMR-42";
    s->vehicle_registration = (char *)"AB-123-CD";
    PUSH(s->items, s->n_items, line(engine("Yamaha", "6E5-X-1016523")));
    return s;
}

static Tidewatch__V1__Record *valid_shipment(void)
{
    Tidewatch__V1__Record *r = record();
    r->source = (char *)"carrier.fr.example";
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SHIPMENT;
    r->shipment = shipment_body();
    return r;
}

static Tidewatch__V1__SeizedItem *seized(Tidewatch__V1__Equipment *e)
{
    Tidewatch__V1__SeizedItem *it = mk(sizeof *it);
    tidewatch__v1__seized_item__init(it);
    it->equipment = e;
    it->quantity = 1;
    it->condition = TIDEWATCH__V1__SEIZED_ITEM__CONDITION__USED;
    return it;
}

static Tidewatch__V1__NationalityCount *nationality(const char *country, uint32_t count)
{
    Tidewatch__V1__NationalityCount *n = mk(sizeof *n);
    tidewatch__v1__nationality_count__init(n);
    n->country = (char *)country;
    n->count = count;
    return n;
}

static Tidewatch__V1__Seizure *seizure_body(void)
{
    Tidewatch__V1__Seizure *s = mk(sizeof *s);
    tidewatch__v1__seizure__init(s);
    s->agency = party("Police aux frontières");
    s->agency->kind = TIDEWATCH__V1__PARTY__KIND__AGENCY;
    s->case_ref = (char *)"PAF-62-2025-17";
    s->place = place_named("Gravelines", "FR");
    s->time = ts(NOW - 3600);
    PUSH(s->items, s->n_items, seized(engine("Yamaha", "6E5-X-1016523")));
    PUSH(s->items, s->n_items, seized(boat("ABC12345H324")));
    return s;
}

static Tidewatch__V1__Record *valid_seizure(void)
{
    Tidewatch__V1__Record *r = record();
    r->source = (char *)"police.fr.pas-de-calais";
    r->source_ref = (char *)"PV-2025-17";
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SEIZURE;
    r->seizure = seizure_body();
    return r;
}

static Tidewatch__V1__Record *valid_correction(void)
{
    Tidewatch__V1__Record *r = record();
    r->source_ref = (char *)"INV-2025-0001-fix";
    Tidewatch__V1__Correction *c = mk(sizeof *c);
    tidewatch__v1__correction__init(c);
    c->corrects = mk(sizeof *c->corrects);
    tidewatch__v1__record_ref__init(c->corrects);
    c->corrects->source = (char *)"retailer.fr.example";
    c->corrects->source_ref = (char *)"INV-2025-0001";
    c->reason = (char *)"wrong serial on the invoice";
    c->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_PURCHASE;
    c->purchase = purchase_body();
    r->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
    r->correction = c;
    return r;
}

/* ---- running and asserting -------------------------------------------------- */

static void dump(const tw_record_check *c)
{
    for (size_t i = 0; i < c->nerrors; i++)
        fprintf(stderr, "  error   %s %s: %s\n", c->errors[i].field, c->errors[i].code,
                c->errors[i].reason);
    for (size_t i = 0; i < c->nwarnings; i++)
        fprintf(stderr, "  warning %s %s: %s\n", c->warnings[i].field, c->warnings[i].code,
                c->warnings[i].reason);
}

/* Validate with the given place tables (NULL: none); the result is the
 * fixture's and is released by the teardown. Every issue is checked for
 * shape here, so each test checks it too. */
static const tw_record_check *validate_with(const Tidewatch__V1__Record *r, const tw_places *p)
{
    if (fx.have_check)
        tw_record_check_free(&fx.c);
    tw_record_ctx ctx = {.now_s = NOW, .places = p};
    int rc = tw_record_validate(&ctx, r, &fx.out, &fx.c);
    fx.have_check = 1;
    cr_assert_eq(rc, 0, "tw_record_validate ran out of memory?");
    cr_assert(fx.ndocs < sizeof fx.docs / sizeof fx.docs[0], "too many validations in one test");
    fx.docs[fx.ndocs] = tw_record_derived_json(&fx.c.derived);
    cr_assert(fx.docs[fx.ndocs], "derived converts to JSON");
    fx.ndocs++;
    const tw_issue *lists[2] = {fx.c.errors, fx.c.warnings};
    size_t ns[2] = {fx.c.nerrors, fx.c.nwarnings};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < ns[l]; i++) {
            const tw_issue *is = &lists[l][i];
            cr_assert(is->field && is->field[0] && is->code && is->code[0] && is->reason &&
                      is->reason[0]);
            cr_assert(!strchr(is->code, ' '), "code '%s' is one snake_case word", is->code);
            cr_assert_null(u8_check((const uint8_t *)is->reason, strlen(is->reason)),
                           "reason is valid UTF-8");
        }
    return &fx.c;
}

static const tw_record_check *validate(const Tidewatch__V1__Record *r)
{
    return validate_with(r, NULL);
}

static const tw_issue *find(const tw_issue *list, size_t n, const char *field, const char *code)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].field, field) == 0 && (!code || strcmp(list[i].code, code) == 0))
            return &list[i];
    return NULL;
}

static const tw_issue *expect_error(const tw_record_check *c, const char *field, const char *code)
{
    const tw_issue *is = find(c->errors, c->nerrors, field, code);
    if (!is)
        dump(c);
    cr_assert(is, "expected error %s / %s", field, code);
    return is;
}

static void expect_only_error(const tw_record_check *c, const char *field, const char *code)
{
    expect_error(c, field, code);
    if (c->nerrors != 1)
        dump(c);
    cr_assert_eq(c->nerrors, 1, "only %s / %s is an error", field, code);
}

static const tw_issue *expect_warning(const tw_record_check *c, const char *field,
                                      const char *code)
{
    const tw_issue *is = find(c->warnings, c->nwarnings, field, code);
    if (!is)
        dump(c);
    cr_assert(is, "expected warning %s / %s", field, code);
    return is;
}

static void expect_no_warning(const tw_record_check *c, const char *field, const char *code)
{
    const tw_issue *is = find(c->warnings, c->nwarnings, field, code);
    if (is)
        dump(c);
    cr_assert_null(is, "unexpected warning %s / %s", field, code ? code : "*");
}

static void expect_ok(const tw_record_check *c)
{
    if (c->nerrors)
        dump(c);
    cr_assert_eq(c->nerrors, 0, "the record is accepted");
}

static int has_key(const char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

/* The latest validation's derived facts as JSON (the fixture owns it). */
static json_t *derived_doc(const tw_record_check *c)
{
    cr_assert(c == &fx.c && fx.ndocs > 0);
    return fx.docs[fx.ndocs - 1];
}

static json_t *derived_array(const tw_record_check *c, const char *name)
{
    json_t *a = json_object_get(derived_doc(c), name);
    cr_assert(json_is_array(a), "derived.%s is an array", name);
    return a;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "'%s' is a string", key);
    return json_string_value(v);
}

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "'%s' is an integer", key);
    return json_integer_value(v);
}

static double jreal(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_real(v), "'%s' is a real", key);
    return json_real_value(v);
}

/* ---- the valid records -------------------------------------------------------- */

Test(record, valid_purchase_is_accepted)
{
    const tw_record_check *c = validate(valid_purchase());
    expect_ok(c);
    cr_assert_eq(c->kind, TW_RECORD_PURCHASE);
    cr_assert(c->has_time);
    cr_assert_eq(c->occurred_at_s, NOW - 86400);
    cr_assert_eq(c->nserial_keys, 1);
    cr_assert_str_eq(c->serial_keys[0], "6E5X1016523");
    cr_assert_eq(c->nhull_keys, 0);
    expect_no_warning(c, "grading", "missing");
    expect_no_warning(c, "purchase.buyer", "missing");
}

Test(record, valid_shipment_is_accepted)
{
    const tw_record_check *c = validate(valid_shipment());
    expect_ok(c);
    cr_assert_eq(c->kind, TW_RECORD_SHIPMENT);
    cr_assert(c->has_time);
    cr_assert_eq(c->occurred_at_s, NOW - 3 * 86400, "a shipment's time is its dispatch");
}

Test(record, valid_seizure_is_accepted)
{
    const tw_record_check *c = validate(valid_seizure());
    expect_ok(c);
    cr_assert_eq(c->kind, TW_RECORD_SEIZURE);
    cr_assert_eq(c->occurred_at_s, NOW - 3600);
    cr_assert_eq(c->nserial_keys, 1);
    cr_assert_eq(c->nhull_keys, 1);
    cr_assert_str_eq(c->hull_keys[0], "ABC12345H324");
}

Test(record, valid_correction_is_accepted)
{
    const tw_record_check *c = validate(valid_correction());
    expect_ok(c);
    cr_assert_eq(c->kind, TW_RECORD_CORRECTION);
    cr_assert(c->has_time, "the replacement's time is the record's time");
    cr_assert_eq(c->occurred_at_s, NOW - 86400);
    cr_assert_eq(c->nserial_keys, 1, "the replacement's serials are keyed");
}

Test(record, retraction_without_replacement_is_accepted)
{
    Tidewatch__V1__Record *r = valid_correction();
    r->correction->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT__NOT_SET;
    r->correction->purchase = NULL;
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->kind, TW_RECORD_CORRECTION);
    cr_assert_not(c->has_time);
    cr_assert_eq(c->nserial_keys, 0);
}

/* ---- the envelope -------------------------------------------------------------- */

Test(record, missing_body)
{
    Tidewatch__V1__Record *r = record();
    const tw_record_check *c = validate(r);
    expect_only_error(c, "body", "required");
    cr_assert_eq(c->kind, 0);
    cr_assert_not(c->has_time);
}

Test(record, body_case_set_without_body)
{
    Tidewatch__V1__Record *r = record();
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SEIZURE;
    const tw_record_check *c = validate(r);
    expect_only_error(c, "seizure", "required");
}

Test(record, source_rules)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->source = (char *)"";
    expect_only_error(validate(r), "source", "required");
    r->source = NULL;
    expect_only_error(validate(r), "source", "required");
    r->source = rep('s', 129);
    expect_only_error(validate(r), "source", "too_long");
    r->source = rep('s', 128);
    expect_ok(validate(r));
    r->source = (char *)"police.fr.\xc3";
    expect_only_error(validate(r), "source", "bad_utf8");
    r->source = (char *)"police.fr.\xed\xa0\x80"; /* a UTF-16 surrogate */
    expect_only_error(validate(r), "source", "bad_utf8");
    r->source = (char *)"police.fr.préfecture";
    expect_ok(validate(r));
    r->source = (char *)"police\x01";
    expect_only_error(validate(r), "source", "control_character");
    r->source = (char *)"police\x7f";
    expect_only_error(validate(r), "source", "control_character");
}

Test(record, source_ref_rules)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->source_ref = (char *)"";
    expect_only_error(validate(r), "source_ref", "required");
    r->source_ref = rep('r', 129);
    expect_only_error(validate(r), "source_ref", "too_long");
    r->source_ref = rep('r', 128);
    expect_ok(validate(r));
    r->source_ref = (char *)"\xff\xfe";
    expect_only_error(validate(r), "source_ref", "bad_utf8");
    r->source_ref = (char *)"ref\x1b[0m";
    expect_only_error(validate(r), "source_ref", "control_character");
}

Test(record, reasons_quoting_bad_text_stay_utf8)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->seller->country = (char *)"\xc3\xa9\xff"; /* é then garbage */
    const tw_record_check *c = validate(r);
    const tw_issue *is = expect_error(c, "purchase.seller.country", "bad_country");
    cr_assert_null(u8_check((const uint8_t *)is->reason, strlen(is->reason)));
}

/* ---- grading ---------------------------------------------------------------------- */

Test(record, grading_missing_is_a_warning)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->grading = NULL;
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "grading", "missing");
}

Test(record, grading_partially_set)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->grading->information = 0;
    expect_only_error(validate(r), "grading.information", "required");
    r->grading = grading(0, 1, 1);
    expect_only_error(validate(r), "grading.source", "required");
    r->grading = grading(1, 1, 0);
    expect_only_error(validate(r), "grading.handling", "required");
    r->grading = grading(0, 0, 0);
    const tw_record_check *c = validate(r);
    cr_assert_eq(c->nerrors, 3, "an empty grading is three missing fields");
}

Test(record, grading_unknown_enum_numbers)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->grading->source = 99;
    expect_only_error(validate(r), "grading.source", "bad_enum");
    r->grading->source = 3;
    expect_ok(validate(r));
    r->grading->information = 6;
    expect_only_error(validate(r), "grading.information", "bad_enum");
    r->grading->information = 5;
    expect_ok(validate(r));
    r->grading->handling = -1;
    expect_only_error(validate(r), "grading.handling", "bad_enum");
}

Test(record, grading_handling_c_needs_conditions)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->grading->handling = TIDEWATCH__V1__GRADING__HANDLING__HANDLING_C_CONDITIONS;
    expect_only_error(validate(r), "grading.handling_conditions", "required");
    r->grading->handling_conditions = (char *)"not to be shared outside the JIT";
    expect_ok(validate(r));
    /* Malformed conditions are one error, not also "required". */
    r->grading->handling_conditions = rep('c', TW_RECORD_MAX_TEXT + 1);
    expect_only_error(validate(r), "grading.handling_conditions", "too_long");
    /* P needs none. */
    r->grading->handling = TIDEWATCH__V1__GRADING__HANDLING__HANDLING_P_LAWFUL_SHARING;
    r->grading->handling_conditions = (char *)"";
    expect_ok(validate(r));
}

/* ---- times ------------------------------------------------------------------------ */

Test(record, purchase_time_rules)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Google__Protobuf__Timestamp *t = r->purchase->time;
    r->purchase->time = NULL;
    expect_only_error(validate(r), "purchase.time", "required");
    cr_assert_not(fx.c.has_time);
    r->purchase->time = t;
    t->seconds = TW_RECORD_MIN_TIME_S - 1;
    expect_only_error(validate(r), "purchase.time", "too_early");
    t->seconds = TW_RECORD_MIN_TIME_S;
    expect_ok(validate(r));
    cr_assert_eq(fx.c.occurred_at_s, TW_RECORD_MIN_TIME_S);
    t->seconds = NOW + 11 * 60;
    expect_only_error(validate(r), "purchase.time", "in_future");
    t->seconds = NOW + 10 * 60;
    expect_ok(validate(r));
    t->seconds = NOW;
    t->nanos = -1;
    expect_only_error(validate(r), "purchase.time", "bad_time");
    t->nanos = 1000000000;
    expect_only_error(validate(r), "purchase.time", "bad_time");
    t->nanos = 999999999;
    expect_ok(validate(r));
}

Test(record, shipment_time_rules)
{
    Tidewatch__V1__Record *r = valid_shipment();
    Tidewatch__V1__Shipment *s = r->shipment;
    s->delivered->seconds = s->dispatched->seconds - 1;
    expect_only_error(validate(r), "shipment.delivered", "before_dispatch");
    s->delivered->seconds = s->dispatched->seconds;
    expect_ok(validate(r));

    s->dispatched = s->delivered = NULL;
    expect_only_error(validate(r), "shipment.dispatched", "required");
    s->delivered = ts(NOW - 60);
    expect_ok(validate(r));
    cr_assert_eq(fx.c.occurred_at_s, NOW - 60, "without a dispatch, the delivery is the time");

    s->dispatched = ts(NOW - 86400);
    s->dispatched->nanos = 2000000000;
    expect_only_error(validate(r), "shipment.dispatched", "bad_time");
    cr_assert_eq(fx.c.occurred_at_s, NOW - 60);
    s->dispatched = ts(NOW + 11 * 60);
    s->delivered = NULL;
    s->expected = NULL;
    expect_only_error(validate(r), "shipment.dispatched", "in_future");
    s->delivered = ts(100);
    s->dispatched = ts(NOW - 86400);
    expect_only_error(validate(r), "shipment.delivered", "too_early");
}

Test(record, shipment_expected_time)
{
    Tidewatch__V1__Record *r = valid_shipment();
    Tidewatch__V1__Shipment *s = r->shipment;
    s->delivered = NULL;
    s->expected = ts(s->dispatched->seconds - 3600);
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "shipment.expected", "before_dispatch");
    /* An expected delivery is naturally in the future. */
    s->expected = ts(NOW + 5 * 86400);
    c = validate(r);
    expect_ok(c);
    expect_no_warning(c, "shipment.expected", NULL);
    s->expected = ts(NOW + 400 * 86400);
    expect_only_error(validate(r), "shipment.expected", "in_future");
    s->expected = ts(NOW);
    s->expected->nanos = -5;
    expect_only_error(validate(r), "shipment.expected", "bad_time");
}

/* ---- parties ------------------------------------------------------------------------ */

Test(record, party_rules)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Party *seller = r->purchase->seller;
    r->purchase->seller = NULL;
    expect_only_error(validate(r), "purchase.seller", "required");
    r->purchase->seller = seller;
    seller->name = (char *)"";
    expect_only_error(validate(r), "purchase.seller.name", "required");
    seller->name = rep('n', TW_RECORD_MAX_NAME + 1);
    expect_only_error(validate(r), "purchase.seller.name", "too_long");
    seller->name = rep('n', TW_RECORD_MAX_NAME);
    expect_ok(validate(r));
    seller->kind = 99;
    expect_only_error(validate(r), "purchase.seller.kind", "bad_enum");
    seller->kind = 0;
    expect_ok(validate(r));
    seller->country = (char *)"fr";
    expect_only_error(validate(r), "purchase.seller.country", "bad_country");
    seller->country = (char *)"FRA";
    expect_only_error(validate(r), "purchase.seller.country", "bad_country");
    seller->country = (char *)"";
    expect_ok(validate(r));
    seller->address = rep('a', TW_RECORD_MAX_TEXT + 1);
    expect_only_error(validate(r), "purchase.seller.address", "too_long");
    seller->address = (char *)"1 quai de la Colonne\n59140 Dunkerque";
    expect_ok(validate(r));
}

Test(record, buyer_is_optional_with_a_warning)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->buyer = NULL;
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.buyer", "missing");
    r->purchase->buyer = party("");
    expect_only_error(validate(r), "purchase.buyer.name", "required");
}

Test(record, party_identifier_rules)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Party *b = r->purchase->buyer;
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE, "+33 6 00 00 00 00"));
    PUSH(b->identifiers, b->n_identifiers, identifier(0, "x"));
    expect_only_error(validate(r), "purchase.buyer.identifiers[1].kind", "required");
    b->identifiers[1]->kind = 42;
    expect_only_error(validate(r), "purchase.buyer.identifiers[1].kind", "bad_enum");
    b->identifiers[1]->kind = TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__EMAIL;
    b->identifiers[1]->value = (char *)"";
    expect_only_error(validate(r), "purchase.buyer.identifiers[1].value", "required");
    b->identifiers[1]->value = (char *)"jean.example.org";
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.buyer.identifiers[1].value", "odd_email");
    b->identifiers[1]->value = (char *)"jean@example.org";
    c = validate(r);
    expect_ok(c);
    expect_no_warning(c, "purchase.buyer.identifiers[1].value", "odd_email");
    b->identifiers[1]->issuing_country = (char *)"F";
    expect_only_error(validate(r), "purchase.buyer.identifiers[1].issuing_country",
                      "bad_country");
    b->identifiers[1]->issuing_country = (char *)"FR";
    expect_ok(validate(r));
}

/* ---- items and equipment ------------------------------------------------------------- */

Test(record, items_required_and_capped)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Purchase *p = r->purchase;
    Tidewatch__V1__LineItem **items = p->items;
    p->n_items = 0;
    expect_only_error(validate(r), "purchase.items", "required");
    Tidewatch__V1__LineItem **many = mk((TW_RECORD_MAX_ITEMS + 1) * sizeof *many);
    for (size_t i = 0; i <= TW_RECORD_MAX_ITEMS; i++)
        many[i] = items[0];
    p->items = many;
    p->n_items = TW_RECORD_MAX_ITEMS + 1;
    expect_only_error(validate(r), "purchase.items", "too_many");
    p->n_items = TW_RECORD_MAX_ITEMS;
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->nserial_keys, 1, "one engine listed 1000 times is one key");
    cr_assert_eq(json_array_size(derived_array(c, "serials")), TW_RECORD_MAX_ITEMS);
}

Test(record, quantity_cap)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->quantity = TW_RECORD_MAX_QUANTITY + 1;
    expect_only_error(validate(r), "purchase.items[0].quantity", "out_of_range");
    r->purchase->items[0]->quantity = TW_RECORD_MAX_QUANTITY;
    expect_ok(validate(r));
    r->purchase->items[0]->quantity = 0; /* means 1 */
    expect_ok(validate(r));
}

Test(record, money_rules)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Money *m = mk(sizeof *m);
    tidewatch__v1__money__init(m);
    m->currency = (char *)"EUR";
    m->amount_minor = 129900;
    r->purchase->items[0]->unit_price = m;
    expect_ok(validate(r));
    const char *bad[] = {"eur", "EURO", "EU", "", "E1R", "€"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m->currency = (char *)bad[i];
        expect_only_error(validate(r), "purchase.items[0].unit_price.currency", "bad_currency");
    }
    m->currency = (char *)"GBP";
    m->amount_minor = -1;
    expect_only_error(validate(r), "purchase.items[0].unit_price.amount_minor", "out_of_range");
    m->amount_minor = 1000000000000LL + 1;
    expect_only_error(validate(r), "purchase.items[0].unit_price.amount_minor", "out_of_range");
    m->amount_minor = 1000000000000LL;
    expect_ok(validate(r));
}

Test(record, payment_enum)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->payment = 99;
    expect_only_error(validate(r), "purchase.payment", "bad_enum");
    r->purchase->payment = 0;
    expect_ok(validate(r));
    r->purchase->invoice_ref = rep('i', TW_RECORD_MAX_REF + 1);
    expect_only_error(validate(r), "purchase.invoice_ref", "too_long");
}

Test(record, equipment_rules)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__LineItem *li = r->purchase->items[0];
    Tidewatch__V1__Equipment *e = li->equipment;
    li->equipment = NULL;
    expect_only_error(validate(r), "purchase.items[0].equipment", "required");
    li->equipment = e;
    e->kind = 0;
    expect_only_error(validate(r), "purchase.items[0].equipment.kind", "required");
    e->kind = 99;
    expect_only_error(validate(r), "purchase.items[0].equipment.kind", "bad_enum");
    e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__OTHER;
    expect_ok(validate(r));
    e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
    e->model = rep('m', TW_RECORD_MAX_NAME + 1);
    expect_only_error(validate(r), "purchase.items[0].equipment.model", "too_long");
    e->model = (char *)"F40LEHA";
    e->description = (char *)"grey\x02";
    expect_only_error(validate(r), "purchase.items[0].equipment.description",
                      "control_character");
    e->description = (char *)"grey cowling, tiller";
    e->power_hp = 2000.5;
    expect_only_error(validate(r), "purchase.items[0].equipment.power_hp", "out_of_range");
    e->power_hp = -1;
    expect_only_error(validate(r), "purchase.items[0].equipment.power_hp", "out_of_range");
    e->power_hp = NAN;
    expect_only_error(validate(r), "purchase.items[0].equipment.power_hp", "out_of_range");
    e->power_hp = 2000;
    expect_ok(validate(r));
    e->length_m = 100.01;
    expect_only_error(validate(r), "purchase.items[0].equipment.length_m", "out_of_range");
    e->length_m = INFINITY;
    expect_only_error(validate(r), "purchase.items[0].equipment.length_m", "out_of_range");
    e->length_m = 100;
    expect_ok(validate(r));
}

Test(record, untraceable_equipment_warnings)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__LineItem *li = r->purchase->items[0];
    li->equipment = engine("Yamaha", NULL);
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.serials", "missing");
    li->equipment = boat(NULL);
    c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.hull_number", "missing");
    li->equipment = boat("ABC12345H324");
    c = validate(r);
    expect_ok(c);
    expect_no_warning(c, "purchase.items[0].equipment.hull_number", "missing");
}

/* ---- serial readings ------------------------------------------------------------------ */

Test(record, serial_text_required_unless_illegible)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Equipment *e = r->purchase->items[0]->equipment;
    PUSH(e->serials, e->n_serials, reading(""));
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[1].text", "required");
    e->serials[1]->completeness = TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__ILLEGIBLE;
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->nserial_keys, 1, "an illegible reading gives no key");
    e->serials[1]->text = (char *)"???";
    c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->nserial_keys, 1, "three unknown marks read as illegible give no key either");
    e->serials[1]->completeness = TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__PARTIAL;
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[1].text", "empty");
}

Test(record, serial_enums_and_note)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__SerialReading *s = r->purchase->items[0]->equipment->serials[0];
    s->method = 99;
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[0].method", "bad_enum");
    s->method = TIDEWATCH__V1__SERIAL_READING__METHOD__ETCHED_RECOVERY;
    s->completeness = 7;
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[0].completeness",
                      "bad_enum");
    s->completeness = 0;
    s->note = rep('n', TW_RECORD_MAX_TEXT + 1);
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[0].note", "too_long");
    s->note = (char *)"ground off, recovered by etching";
    expect_ok(validate(r));
}

Test(record, serial_readings_capped)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Equipment *e = r->purchase->items[0]->equipment;
    while (e->n_serials < TW_RECORD_MAX_SERIALS)
        PUSH(e->serials, e->n_serials, reading("6E5-X-1016523"));
    expect_ok(validate(r));
    PUSH(e->serials, e->n_serials, reading("6E5-X-1016523"));
    expect_only_error(validate(r), "purchase.items[0].equipment.serials", "too_many");
}

Test(record, serial_ocr_fix_is_a_warning_with_the_fixed_key)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment->serials[0]->text = (char *)"6E5-X-1O16523";
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.serials[0].text", "serial_format");
    cr_assert_eq(c->nserial_keys, 1);
    cr_assert_str_eq(c->serial_keys[0], "6E5X1016523");
    json_t *s = json_array_get(derived_array(c, "serials"), 0);
    cr_assert_null(json_object_get(s, "raw"), "the raw reading stays in the record itself");
    cr_assert_str_eq(jstr(s, "key"), "6E5X1016523");
    cr_assert_str_eq(jstr(s, "format"), "Yamaha");
    /* The clean reading has no warning at all. */
    r->purchase->items[0]->equipment->serials[0]->text = (char *)"6E5-X-1016523";
    c = validate(r);
    expect_no_warning(c, "purchase.items[0].equipment.serials[0].text", NULL);
}

Test(record, serial_cyrillic_lookalike_fixed)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment->serials[0]->text = (char *)"6E5-X-1\xd0\x9e" "16523";
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.serials[0].text", "serial_format");
    cr_assert_str_eq(c->serial_keys[0], "6E5X1016523");
}

Test(record, serial_invalid_is_an_error)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Equipment *e = r->purchase->items[0]->equipment;
    PUSH(e->serials, e->n_serials, reading("6E5-X-\xf0\x9f\x9a\xa4" "16523")); /* speedboat */
    const tw_record_check *c = validate(r);
    expect_only_error(c, "purchase.items[0].equipment.serials[1].text", "bad_character");
    cr_assert_eq(c->nserial_keys, 1, "the bad reading gives no key");
    cr_assert_eq(json_array_size(derived_array(c, "serials")), 1);
    e->serials[1]->text = (char *)"6E5:X";
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[1].text",
                      "bad_character");
    e->serials[1]->text = rep('7', 65);
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[1].text", "too_long");
    e->serials[1]->text = (char *)"6E5\t1016523";
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[1].text",
                      "bad_character");
    e->serials[1]->text = (char *)"\xc0\x80";
    expect_only_error(validate(r), "purchase.items[0].equipment.serials[1].text", "bad_utf8");
}

Test(record, serial_weak_format_is_only_a_warning)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Equipment *e = r->purchase->items[0]->equipment;
    e->make = (char *)"Suzuki";
    e->serials[0]->text = (char *)"14OO3F-510001"; /* O for 0: suspicious, not fixed */
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.serials[0].text", "serial_format");
    cr_assert_eq(c->nserial_keys, 1);
    cr_assert_str_eq(c->serial_keys[0], "14OO3F510001", "weak formats are never fixed");
    /* A reading that fits no format of its maker is kept with a warning. */
    e->make = (char *)"Yamaha";
    e->serials[0]->text = (char *)"XYZ";
    c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.serials[0].text", "serial_format");
    cr_assert_str_eq(c->serial_keys[0], "XYZ");
}

Test(record, serial_partial_reading)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__SerialReading *s = r->purchase->items[0]->equipment->serials[0];
    s->text = (char *)"6E5X10?65?3";
    s->completeness = TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__PARTIAL;
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_str_eq(c->serial_keys[0], "6E5X10?65?3");
    json_t *j = json_array_get(derived_array(c, "serials"), 0);
    cr_assert(json_is_true(json_object_get(j, "partial")));
}

Test(record, duplicate_serial_keys_are_deduplicated)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Equipment *e = r->purchase->items[0]->equipment;
    PUSH(e->serials, e->n_serials, reading("6E5X1016523"));
    PUSH(e->serials, e->n_serials, reading("6e5 x 1O16523"));
    PUSH(e->serials, e->n_serials, reading("0P096282"));
    PUSH(r->purchase->items, r->purchase->n_items, line(engine("Yamaha", "6E5-X-1016523")));
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->nserial_keys, 2, "three readings of one serial and another");
    cr_assert(has_key(c->serial_keys, c->nserial_keys, "6E5X1016523"));
    cr_assert(has_key(c->serial_keys, c->nserial_keys, "0P096282"));
    cr_assert_eq(json_array_size(derived_array(c, "serials")), 5, "every reading is in derived");
}

Test(record, many_distinct_serial_keys)
{
    /* 1000 items x 16 readings, all distinct, and each item listed twice:
     * the key set must stay exact (and fast: no quadratic scan). */
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Purchase *p = r->purchase;
    p->n_items = 0;
    for (int i = 0; i < TW_RECORD_MAX_ITEMS / 2; i++) {
        Tidewatch__V1__Equipment *e = engine("Parsun", NULL);
        for (int k = 0; k < TW_RECORD_MAX_SERIALS; k++) {
            char *t = mk(16);
            snprintf(t, 16, "PS%05d%02d", i, k);
            PUSH(e->serials, e->n_serials, reading(t));
        }
        PUSH(p->items, p->n_items, line(e));
        PUSH(p->items, p->n_items, line(e));
    }
    const tw_record_check *c = validate(r);
    expect_ok(c);
    size_t want = (TW_RECORD_MAX_ITEMS / 2) * TW_RECORD_MAX_SERIALS;
    cr_assert_eq(c->nserial_keys, want);
    cr_assert_str_eq(c->serial_keys[0], "PS0000000");
    cr_assert_str_eq(c->serial_keys[want - 1], "PS0049915");
    for (size_t i = 1; i < want; i++)
        cr_assert_gt(strcmp(c->serial_keys[i], c->serial_keys[i - 1]), 0, "first-seen order");
}

/* ---- hull numbers ------------------------------------------------------------------------ */

Test(record, us_hin_decodes_into_keys_and_derived)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment = boat("US-ABC12345H324");
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->nhull_keys, 1);
    cr_assert_str_eq(c->hull_keys[0], "ABC12345H324");
    json_t *hulls = derived_array(c, "hulls");
    cr_assert_eq(json_array_size(hulls), 1);
    json_t *h = json_array_get(hulls, 0);
    cr_assert_str_eq(jstr(h, "field"), "purchase.items[0].equipment");
    cr_assert_str_eq(jstr(h, "key"), "ABC12345H324");
    cr_assert_str_eq(jstr(h, "kind"), "US HIN");
    cr_assert_str_eq(jstr(h, "country"), "US");
    cr_assert_str_eq(jstr(h, "maker"), "ABC");
    cr_assert_eq(jint(h, "month"), 8);
    cr_assert_eq(jint(h, "production_year"), 2023);
    cr_assert_eq(jint(h, "model_year"), 2024);
    cr_assert(json_is_false(json_object_get(h, "partial")));
}

Test(record, eu_cin_decodes_into_keys_and_derived)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment = boat("FR-B3N12345-E8-19");
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->nhull_keys, 1);
    cr_assert_str_eq(c->hull_keys[0], "FRB3N12345E819");
    json_t *h = json_array_get(derived_array(c, "hulls"), 0);
    cr_assert_str_eq(jstr(h, "kind"), "EU CIN");
    cr_assert_str_eq(jstr(h, "country"), "FR");
    cr_assert_str_eq(jstr(h, "maker"), "B3N");
    cr_assert_eq(jint(h, "month"), 5);
    cr_assert_eq(jint(h, "production_year"), 2018);
    cr_assert_eq(jint(h, "model_year"), 2019);
}

Test(record, hull_model_year_anchored_on_the_record_time)
{
    /* "26" is 2026 for a record of 2025, but 1926 for one of 1995. */
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment = boat("ABC12345H526");
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(jint(json_array_get(derived_array(c, "hulls"), 0), "model_year"), 2026);
    r->purchase->time->seconds = 800000000; /* 1995 */
    c = validate(r);
    cr_assert_eq(jint(json_array_get(derived_array(c, "hulls"), 0), "model_year"), 1926);
}

Test(record, hull_garbage_is_an_error_with_the_hin_code)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment = boat("ABC#12345");
    const tw_record_check *c = validate(r);
    expect_only_error(c, "purchase.items[0].equipment.hull_number", "bad_character");
    cr_assert_eq(c->nhull_keys, 0);
    cr_assert_eq(json_array_size(derived_array(c, "hulls")), 0);
    r->purchase->items[0]->equipment = boat("---");
    expect_only_error(validate(r), "purchase.items[0].equipment.hull_number", "empty");
    r->purchase->items[0]->equipment = boat(rep('A', 65));
    expect_only_error(validate(r), "purchase.items[0].equipment.hull_number", "too_long");
    /* An unknown form is a warning, never an error. */
    r->purchase->items[0]->equipment = boat("XYZ 42");
    c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.hull_number", "hull_format");
    cr_assert_eq(c->nhull_keys, 1);
    cr_assert_str_eq(c->hull_keys[0], "XYZ42");
}

Test(record, hull_number_on_an_engine_is_odd)
{
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment->hull_number = (char *)"ABC12345H324";
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_warning(c, "purchase.items[0].equipment.hull_number", "unexpected");
}

Test(record, duplicate_hull_keys_are_deduplicated)
{
    Tidewatch__V1__Record *r = valid_seizure();
    Tidewatch__V1__Seizure *s = r->seizure;
    PUSH(s->items, s->n_items, seized(boat("us abc 12345 h3 24")));
    PUSH(s->items, s->n_items, seized(boat("GB-ABC00042-A3-99")));
    const tw_record_check *c = validate(r);
    expect_ok(c);
    cr_assert_eq(c->nhull_keys, 2);
    cr_assert(has_key(c->hull_keys, c->nhull_keys, "ABC12345H324"));
    cr_assert(has_key(c->hull_keys, c->nhull_keys, "GBABC00042A399"));
    cr_assert_eq(json_array_size(derived_array(c, "hulls")), 3);
}

/* ---- places ---------------------------------------------------------------------------------- */

Test(record, place_coordinates_range)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Place *p = r->purchase->place;
    p->coordinates = latlon(90.5, 1.8);
    expect_only_error(validate(r), "purchase.place.coordinates", "bad_coordinates");
    p->coordinates = latlon(50.9, -180.5);
    expect_only_error(validate(r), "purchase.place.coordinates", "bad_coordinates");
    p->coordinates = latlon(NAN, 1.8);
    expect_only_error(validate(r), "purchase.place.coordinates", "bad_coordinates");
    p->coordinates = latlon(-90, 180);
    expect_ok(validate(r));
}

Test(record, place_locode_format)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Place *p = r->purchase->place;
    const char *bad[] = {"FRCQ1", "frcqf", "FRCQ", "FRCQFX", "F1CQF", "FR CQF"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p->locode = (char *)bad[i];
        expect_only_error(validate(r), "purchase.place.locode", "bad_locode");
    }
    p->locode = (char *)"FRO5P";
    expect_ok(validate(r));
}

Test(record, place_other_fields)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Place *p = r->purchase->place;
    p->postcode = rep('6', 33);
    expect_only_error(validate(r), "purchase.place.postcode", "too_long");
    p->postcode = (char *)"62100";
    p->country = (char *)"France";
    expect_only_error(validate(r), "purchase.place.country", "bad_country");
    p->country = (char *)"FR";
    p->address = rep('a', TW_RECORD_MAX_TEXT + 1);
    expect_only_error(validate(r), "purchase.place.address", "too_long");
    p->address = (char *)"";
    p->name = rep('n', TW_PLACE_NAME_MAX + 1);
    const tw_record_check *c = validate(r);
    expect_error(c, "purchase.place.name", "too_long");
    expect_error(c, "purchase.place", "required"); /* nothing else to go on */
    cr_assert_eq(c->nerrors, 2);
    p->locode = (char *)"FRCQF";
    expect_only_error(validate(r), "purchase.place.name", "too_long");
    p->locode = (char *)"";
    p->name = rep('n', TW_PLACE_NAME_MAX);
    expect_ok(validate(r));
}

Test(record, place_with_nothing_to_go_on)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Place *p = r->purchase->place;
    p->name = (char *)"";
    p->postcode = (char *)"62100";
    expect_only_error(validate(r), "purchase.place", "required");
    p->locode = (char *)"FRCQF";
    expect_ok(validate(r));
    /* A purchase's place is optional; a seizure's is not. */
    r->purchase->place = NULL;
    expect_ok(validate(r));
    Tidewatch__V1__Record *s = valid_seizure();
    s->seizure->place = NULL;
    expect_only_error(validate(s), "seizure.place", "required");
}

Test(record, places_unresolved_without_tables)
{
    const tw_record_check *c = validate_with(valid_purchase(), NULL);
    expect_ok(c);
    expect_warning(c, "purchase.place", "unresolved");
    cr_assert_eq(json_array_size(derived_array(c, "places")), 0);
}

Test(record, place_hub_by_name_and_alias)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->place = place_named("Dunkerque", "FR");
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    expect_no_warning(c, "purchase.place", NULL);
    json_t *places = derived_array(c, "places");
    cr_assert_eq(json_array_size(places), 1);
    json_t *p = json_array_get(places, 0);
    cr_assert_str_eq(jstr(p, "field"), "purchase.place");
    cr_assert_str_eq(jstr(p, "source"), "hub");
    cr_assert_str_eq(jstr(p, "name"), "Dunkerque");
    cr_assert_str_eq(jstr(p, "country"), "FR");
    cr_assert_str_eq(jstr(p, "locode"), "FRDKK");
    cr_assert_float_eq(jreal(p, "lat"), 51.03440, 1e-9);
    cr_assert_float_eq(jreal(p, "lon"), 2.37681, 1e-9);
    json_t *hub = json_object_get(p, "hub");
    cr_assert_str_eq(jstr(hub, "name"), "Dunkerque");
    cr_assert_str_eq(jstr(hub, "kind"), "coast");
    json_t *near = json_object_get(p, "nearest_hub");
    cr_assert_str_eq(jstr(near, "name"), "Dunkerque");
    cr_assert_float_eq(jreal(near, "km"), 0.0, 1e-9);

    r->purchase->place = place_named("Duinkerke", NULL); /* Dutch exonym */
    c = validate_with(r, pl);
    expect_ok(c);
    p = json_array_get(derived_array(c, "places"), 0);
    cr_assert_str_eq(jstr(p, "source"), "hub");
    cr_assert_str_eq(jstr(p, "name"), "Dunkerque");
}

Test(record, place_gazetteer_alias)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_shipment();
    r->shipment->origin = place_named("Cologne", "DE");
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    json_t *places = derived_array(c, "places");
    cr_assert_eq(json_array_size(places), 2, "origin and destination");
    json_t *o = json_array_get(places, 0);
    cr_assert_str_eq(jstr(o, "field"), "shipment.origin");
    cr_assert_str_eq(jstr(o, "source"), "gazetteer");
    cr_assert_str_eq(jstr(o, "name"), "Köln");
    cr_assert_null(json_object_get(o, "hub"), "Köln is no hub");
    json_t *near = json_object_get(o, "nearest_hub");
    cr_assert(json_is_object(near));
    cr_assert_gt(jreal(near, "km"), 0);
    json_t *d = json_array_get(places, 1);
    cr_assert_str_eq(jstr(d, "field"), "shipment.destination");
    cr_assert_str_eq(jstr(d, "name"), "Osnabrück");
    cr_assert_str_eq(jstr(json_object_get(d, "hub"), "kind"), "transit");
}

Test(record, place_ambiguous_is_unresolved_never_guessed)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->place = place_named("Revel", "FR"); /* Isère and Haute-Garonne */
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    const tw_issue *w = expect_warning(c, "purchase.place", "ambiguous");
    cr_assert(strstr(w->reason, "Revel"), "%s", w->reason);
    cr_assert_eq(json_array_size(derived_array(c, "places")), 0, "no guess");
}

Test(record, place_unknown_is_a_warning)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->place = place_named("Xyzzyville-sur-Mer", "FR");
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    expect_warning(c, "purchase.place", "not_found");
    cr_assert_eq(json_array_size(derived_array(c, "places")), 0);
}

Test(record, place_name_without_letters_is_an_error)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->place = place_named("--- / ---", "FR");
    expect_only_error(validate_with(r, pl), "purchase.place.name", "bad_name");
}

Test(record, place_coordinates_are_used)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_seizure();
    r->seizure->place = place_named("", NULL);
    r->seizure->place->coordinates = latlon(50.9871, 2.1200);
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    json_t *p = json_array_get(derived_array(c, "places"), 0);
    cr_assert_str_eq(jstr(p, "field"), "seizure.place");
    cr_assert_str_eq(jstr(p, "source"), "coords");
    cr_assert_eq(jreal(p, "lat"), 50.9871);
    cr_assert_eq(jreal(p, "lon"), 2.1200);
    cr_assert(json_is_null(json_object_get(p, "name")), "coordinates have no name");
    cr_assert(json_is_null(json_object_get(p, "locode")));
    cr_assert_null(json_object_get(p, "hub"), "no hub key unless the place is a hub");
    cr_assert_str_eq(jstr(json_object_get(p, "nearest_hub"), "name"), "Gravelines");
    /* Coordinates win over a name. */
    r->seizure->place->name = (char *)"Calais";
    c = validate_with(r, pl);
    cr_assert_str_eq(jstr(json_array_get(derived_array(c, "places"), 0), "source"), "coords");
}

Test(record, place_by_locode)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->place = place_named("", NULL);
    r->purchase->place->locode = (char *)"FRCQF";
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    json_t *p = json_array_get(derived_array(c, "places"), 0);
    cr_assert_str_eq(jstr(p, "source"), "locode");
    cr_assert_str_eq(jstr(p, "name"), "Calais");
    /* A locode whose country contradicts the given country: unresolved. */
    r->purchase->place->country = (char *)"BE";
    c = validate_with(r, pl);
    expect_ok(c);
    expect_warning(c, "purchase.place", "conflict");
    cr_assert_eq(json_array_size(derived_array(c, "places")), 0);
}

Test(record, invalid_place_fields_are_not_reported_twice)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->place->coordinates = latlon(95, 2);
    r->purchase->place->country = (char *)"fr";
    const tw_record_check *c = validate_with(r, pl);
    expect_error(c, "purchase.place.coordinates", "bad_coordinates");
    expect_error(c, "purchase.place.country", "bad_country");
    cr_assert_eq(c->nerrors, 2, "tw_places' own verdict on the same fields is not repeated");
}

/* ---- shipments --------------------------------------------------------------------------------- */

Test(record, shipment_needs_origin_or_destination)
{
    Tidewatch__V1__Record *r = valid_shipment();
    Tidewatch__V1__Place *o = r->shipment->origin;
    r->shipment->origin = r->shipment->destination = NULL;
    expect_only_error(validate(r), "shipment.destination", "required");
    r->shipment->origin = o;
    expect_ok(validate(r));
}

Test(record, shipment_text_fields_and_items)
{
    Tidewatch__V1__Record *r = valid_shipment();
    r->shipment->consignment_ref = rep('c', TW_RECORD_MAX_REF + 1);
    expect_only_error(validate(r), "shipment.consignment_ref", "too_long");
    r->shipment->consignment_ref = rep('c', TW_RECORD_MAX_REF);
    r->shipment->vehicle_registration = rep('v', 33);
    expect_only_error(validate(r), "shipment.vehicle_registration", "too_long");
    r->shipment->vehicle_registration = rep('v', 32);
    expect_ok(validate(r));
    r->shipment->n_items = 0;
    expect_only_error(validate(r), "shipment.items", "required");
    r->shipment->n_items = 1;
    r->shipment->carrier->name = (char *)"";
    expect_only_error(validate(r), "shipment.carrier.name", "required");
}

/* ---- seizures ----------------------------------------------------------------------------------- */

Test(record, seizure_required_fields)
{
    Tidewatch__V1__Record *r = valid_seizure();
    Tidewatch__V1__Seizure *s = r->seizure;
    s->time = NULL;
    expect_only_error(validate(r), "seizure.time", "required");
    s->time = ts(NOW + 11 * 60);
    expect_only_error(validate(r), "seizure.time", "in_future");
    s->time = ts(NOW);
    Tidewatch__V1__Party *agency = s->agency;
    s->agency = NULL;
    expect_only_error(validate(r), "seizure.agency", "required");
    s->agency = agency;
    s->case_ref = rep('c', TW_RECORD_MAX_REF + 1);
    expect_only_error(validate(r), "seizure.case_ref", "too_long");
    s->case_ref = (char *)"";
    expect_ok(validate(r));
}

Test(record, seizure_needs_items_or_launch)
{
    Tidewatch__V1__Record *r = valid_seizure();
    Tidewatch__V1__Seizure *s = r->seizure;
    s->n_items = 0;
    expect_only_error(validate(r), "seizure.items", "required");
    s->launch = mk(sizeof *s->launch);
    tidewatch__v1__launch_info__init(s->launch);
    s->launch->people_aboard = 40;
    expect_ok(validate(r));
}

Test(record, seizure_items_capped)
{
    Tidewatch__V1__Record *r = valid_seizure();
    Tidewatch__V1__Seizure *s = r->seizure;
    Tidewatch__V1__SeizedItem **many = mk((TW_RECORD_MAX_ITEMS + 1) * sizeof *many);
    for (size_t i = 0; i <= TW_RECORD_MAX_ITEMS; i++)
        many[i] = s->items[0];
    s->items = many;
    s->n_items = TW_RECORD_MAX_ITEMS;
    expect_ok(validate(r));
    s->n_items = TW_RECORD_MAX_ITEMS + 1;
    expect_error(validate(r), "seizure.items", "too_many");
    /* Item 1000 (the 1001st) is past the cap and is not looked at. */
    Tidewatch__V1__SeizedItem *bad = seized(engine("Yamaha", "6E5-X-1016523"));
    bad->condition = 99;
    many[TW_RECORD_MAX_ITEMS] = bad;
    const tw_record_check *c = validate(r);
    expect_only_error(c, "seizure.items", "too_many");
}

Test(record, seized_item_rules)
{
    Tidewatch__V1__Record *r = valid_seizure();
    Tidewatch__V1__SeizedItem *it = r->seizure->items[1];
    it->condition = 99;
    expect_only_error(validate(r), "seizure.items[1].condition", "bad_enum");
    it->condition = TIDEWATCH__V1__SEIZED_ITEM__CONDITION__DESTROYED;
    it->note = rep('n', TW_RECORD_MAX_TEXT + 1);
    expect_only_error(validate(r), "seizure.items[1].note", "too_long");
    it->note = (char *)"burnt on the beach";
    it->quantity = TW_RECORD_MAX_QUANTITY + 1;
    expect_only_error(validate(r), "seizure.items[1].quantity", "out_of_range");
    it->quantity = 3;
    it->equipment = NULL;
    expect_only_error(validate(r), "seizure.items[1].equipment", "required");
}

Test(record, launch_rules)
{
    Tidewatch__V1__Record *r = valid_seizure();
    Tidewatch__V1__LaunchInfo *l = mk(sizeof *l);
    tidewatch__v1__launch_info__init(l);
    r->seizure->launch = l;
    l->people_aboard = 501;
    expect_only_error(validate(r), "seizure.launch.people_aboard", "out_of_range");
    l->people_aboard = 50;
    PUSH(l->nationalities, l->n_nationalities, nationality("AF", 30));
    PUSH(l->nationalities, l->n_nationalities, nationality("ER", 20));
    const tw_record_check *c = validate(r);
    expect_ok(c);
    expect_no_warning(c, "seizure.launch.nationalities", NULL);
    l->nationalities[1]->count = 21;
    c = validate(r);
    expect_ok(c);
    expect_warning(c, "seizure.launch.nationalities", "inconsistent");
    l->nationalities[1]->count = 20;
    l->nationalities[1]->country = (char *)"";
    expect_only_error(validate(r), "seizure.launch.nationalities[1].country", "required");
    l->nationalities[1]->country = (char *)"Eritrea";
    expect_only_error(validate(r), "seizure.launch.nationalities[1].country", "bad_country");
}

/* ---- corrections ---------------------------------------------------------------------------------- */

Test(record, correction_that_corrects_itself)
{
    Tidewatch__V1__Record *r = valid_correction();
    r->source_ref = r->correction->corrects->source_ref;
    expect_only_error(validate(r), "correction.corrects", "self_reference");
    r->source_ref = (char *)"INV-2025-0001-fix";
    expect_ok(validate(r));
}

/* EPCIS: error declarations come from the party that declared the event.
 * A source corrects or retracts only its own records; references compare
 * byte for byte, like the log's key. */
Test(record, correction_of_another_source_is_rejected)
{
    Tidewatch__V1__Record *r = valid_correction();
    r->source = (char *)"retailer.fr.other";
    expect_only_error(validate(r), "correction.corrects.source", "other_source");
    cr_assert(strstr(fx.c.errors[0].reason, "own source"), "%s", fx.c.errors[0].reason);
    r->source = (char *)"Retailer.fr.example"; /* case matters */
    expect_only_error(validate(r), "correction.corrects.source", "other_source");
    /* A retraction follows the same rule. */
    r = valid_correction();
    r->correction->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT__NOT_SET;
    r->correction->purchase = NULL;
    r->source = (char *)"police.fr.nord";
    expect_only_error(validate(r), "correction.corrects.source", "other_source");
    /* Same source, another reference: fine. */
    r->source = (char *)"retailer.fr.example";
    expect_ok(validate(r));
    /* An invalid target source is reported once, as invalid. */
    r->correction->corrects->source = (char *)"retailer\x01";
    expect_only_error(validate(r), "correction.corrects.source", "control_character");
}

/* Errors found outside the walk (the wire check's unknown fields) join the
 * record's errors with the same cap. */
Test(record, errors_added_from_outside)
{
    Tidewatch__V1__Record *r = valid_purchase();
    const tw_record_check *c = validate(r);
    cr_assert_eq(c->nerrors, 0);
    cr_assert_eq(tw_record_add_error(&fx.c, &fx.out, "purchase.items[0].equipment", "unknown_field",
                                     "unknown field 99"), 0);
    cr_assert_eq(fx.c.nerrors, 1);
    cr_assert_str_eq(fx.c.errors[0].field, "purchase.items[0].equipment");
    cr_assert_str_eq(fx.c.errors[0].code, "unknown_field");
    cr_assert_str_eq(fx.c.errors[0].reason, "unknown field 99");
    cr_assert_eq(tw_record_add_error(&fx.c, &fx.out, "", "malformed", "x"), 0);
    cr_assert_str_eq(fx.c.errors[1].field, "(record)");
    for (int i = 0; i < 200; i++)
        cr_assert_eq(tw_record_add_error(&fx.c, &fx.out, "(record)", "unknown_field", "y"), 0);
    cr_assert_eq(fx.c.nerrors, 101, "capped like the walk's own issues");
    cr_assert_str_eq(fx.c.errors[100].code, "too_many_issues");
    char *json = tw_record_stored_errors(&fx.c);
    cr_assert(json && strstr(json, "unknown field 99"));
    free(json);
}

Test(record, correction_reference_and_reason)
{
    Tidewatch__V1__Record *r = valid_correction();
    Tidewatch__V1__Correction *c = r->correction;
    c->reason = (char *)"";
    expect_only_error(validate(r), "correction.reason", "required");
    c->reason = rep('r', TW_RECORD_MAX_TEXT + 1);
    expect_only_error(validate(r), "correction.reason", "too_long");
    c->reason = (char *)"typo";
    Tidewatch__V1__RecordRef *ref = c->corrects;
    c->corrects = NULL;
    expect_only_error(validate(r), "correction.corrects", "required");
    c->corrects = ref;
    ref->source = (char *)"";
    expect_only_error(validate(r), "correction.corrects.source", "required");
    ref->source = (char *)"retailer.fr.example";
    ref->source_ref = rep('x', TW_RECORD_MAX_REF + 1);
    expect_only_error(validate(r), "correction.corrects.source_ref", "too_long");
}

Test(record, correction_replacement_is_validated_with_its_path)
{
    Tidewatch__V1__Record *r = valid_correction();
    r->correction->purchase->time = NULL;
    r->correction->purchase->items[0]->equipment->serials[0]->text = (char *)"6E5-X-\xe2\x98\xba";
    const tw_record_check *c = validate(r);
    expect_error(c, "correction.purchase.time", "required");
    expect_error(c, "correction.purchase.items[0].equipment.serials[0].text", "bad_character");
    cr_assert_eq(c->nerrors, 2);

    Tidewatch__V1__Record *s = valid_correction();
    s->correction->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_SEIZURE;
    s->correction->seizure = seizure_body();
    s->correction->seizure->launch = mk(sizeof *s->correction->seizure->launch);
    tidewatch__v1__launch_info__init(s->correction->seizure->launch);
    s->correction->seizure->launch->people_aboard = 600;
    expect_only_error(validate(s), "correction.seizure.launch.people_aboard", "out_of_range");

    Tidewatch__V1__Record *t = valid_correction();
    t->correction->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_SHIPMENT;
    t->correction->shipment = shipment_body();
    t->correction->shipment->origin = t->correction->shipment->destination = NULL;
    expect_only_error(validate(t), "correction.shipment.destination", "required");
    t->correction->shipment = NULL;
    expect_only_error(validate(t), "correction.shipment", "required");
}

/* ---- the output as a whole --------------------------------------------------------------------- */

Test(record, derived_json_shape)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_seizure();
    r->seizure->items[0]->equipment->serials[0]->method =
        TIDEWATCH__V1__SERIAL_READING__METHOD__STAMP;
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    cr_assert_eq(json_object_size(derived_doc(c)), 6,
                 "serials, hulls, places, party_places, identifiers, times and nothing else");

    json_t *s = json_array_get(derived_array(c, "serials"), 0);
    cr_assert_eq(json_object_size(s), 5, "field, key, loose, format, partial");
    cr_assert_str_eq(jstr(s, "field"), "seizure.items[0].equipment.serials[0]");
    cr_assert_str_eq(jstr(s, "key"), "6E5X1016523");
    cr_assert_str_eq(jstr(s, "loose"), "6E5X1016523");
    cr_assert_str_eq(jstr(s, "format"), "Yamaha");
    cr_assert(json_is_false(json_object_get(s, "partial")));

    json_t *h = json_array_get(derived_array(c, "hulls"), 0);
    cr_assert_eq(json_object_size(h), 9);
    cr_assert_str_eq(jstr(h, "field"), "seizure.items[1].equipment");
    const char *hkeys[] = {"key", "kind", "country", "maker"};
    for (size_t i = 0; i < sizeof hkeys / sizeof *hkeys; i++)
        jstr(h, hkeys[i]);
    jint(h, "month");
    jint(h, "production_year");
    jint(h, "model_year");
    cr_assert(json_is_boolean(json_object_get(h, "partial")));

    json_t *p = json_array_get(derived_array(c, "places"), 0);
    cr_assert_str_eq(jstr(p, "field"), "seizure.place");
    cr_assert_str_eq(jstr(p, "source"), "hub");
    cr_assert_str_eq(jstr(p, "name"), "Gravelines");
    cr_assert_str_eq(jstr(p, "locode"), "FRGRV");
    jreal(p, "lat");
    jreal(p, "lon");
    cr_assert(json_is_object(json_object_get(p, "hub")));
    cr_assert(json_is_object(json_object_get(p, "nearest_hub")));

    char *text = json_dumps(derived_doc(c), JSON_COMPACT);
    cr_assert(text, "derived serializes");
    free(text);
}

Test(record, issues_are_capped)
{
    /* Thousands of empty identifiers: two errors each, but the output stays
     * bounded and says that it was cut. */
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Party *b = r->purchase->buyer;
    size_t n = 5000;
    b->identifiers = mk(n * sizeof *b->identifiers);
    Tidewatch__V1__PartyIdentifier *empty = identifier(0, "");
    for (size_t i = 0; i < n; i++)
        b->identifiers[i] = empty;
    b->n_identifiers = n;
    const tw_record_check *c = validate(r);
    cr_assert_eq(c->nerrors, 101, "100 errors and one saying so");
    cr_assert_str_eq(c->errors[0].field, "purchase.buyer.identifiers[0].kind");
    cr_assert_str_eq(c->errors[99].field, "purchase.buyer.identifiers[49].value");
    cr_assert_str_eq(c->errors[100].field, "(record)");
    cr_assert_str_eq(c->errors[100].code, "too_many_issues");
    cr_assert_lt(tw_arena_allocated(&fx.out), 256 * 1024, "output memory is bounded");
}

Test(record, validation_is_repeatable_in_one_arena)
{
    /* Nothing is kept between calls: the same record gives the same result. */
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->items[0]->equipment->serials[0]->text = (char *)"6E5-X-1O16523";
    const tw_record_check *c = validate(r);
    size_t nw = c->nwarnings;
    char *a = json_dumps(derived_doc(c), JSON_COMPACT | JSON_SORT_KEYS);
    c = validate(r);
    char *b = json_dumps(derived_doc(c), JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert(a && b);
    cr_assert_str_eq(a, b);
    cr_assert_eq(c->nwarnings, nw);
    free(a);
    free(b);
}

/* ---- party places and derived times (issue 7) ------------------------------------- */

Test(record, party_place_is_resolved_into_party_places)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    r->purchase->buyer->place = place_named("Calais", "FR");
    r->purchase->buyer->address = (char *)"12 rue Royale, Calais";
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    expect_no_warning(c, "purchase.buyer.place", NULL);
    json_t *pp = derived_array(c, "party_places");
    cr_assert_eq(json_array_size(pp), 1);
    json_t *p = json_array_get(pp, 0);
    cr_assert_str_eq(jstr(p, "field"), "purchase.buyer.place");
    cr_assert_str_eq(jstr(p, "name"), "Calais");
    cr_assert_str_eq(jstr(p, "country"), "FR");
    json_t *hub = json_object_get(p, "hub");
    cr_assert_str_eq(jstr(hub, "name"), "Calais");
    /* The record's own places stay apart. */
    for (size_t i = 0; i < json_array_size(derived_array(c, "places")); i++)
        cr_assert_str_neq(jstr(json_array_get(derived_array(c, "places"), i), "field"),
                          "purchase.buyer.place");
}

Test(record, party_place_fields_are_checked_with_their_path)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Place *p = place_named("", NULL);
    r->purchase->buyer->place = p;
    expect_only_error(validate_with(r, pl), "purchase.buyer.place", "required");
    p->name = rep('x', TW_PLACE_NAME_MAX + 1);
    expect_error(validate_with(r, pl), "purchase.buyer.place.name", "too_long");
    p->name = (char *)"Calais";
    p->country = (char *)"fr";
    expect_only_error(validate_with(r, pl), "purchase.buyer.place.country", "bad_country");
    p->country = (char *)"FR";
    p->region = rep('r', TW_PLACE_REGION_MAX + 1);
    expect_only_error(validate_with(r, pl), "purchase.buyer.place.region", "too_long");
    p->region = NULL;
    p->name = (char *)"Nowhereville-sur-Rien";
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    expect_warning(c, "purchase.buyer.place", "not_found");
    cr_assert_eq(json_array_size(derived_array(c, "party_places")), 0, "no guess");
    /* Shipment parties too: a consignee's storage town. */
    Tidewatch__V1__Record *s = valid_shipment();
    s->shipment->consignee = party("Lock-up SARL");
    s->shipment->consignee->place = place_named("Dunkirk", "FR");
    c = validate_with(s, pl);
    expect_ok(c);
    json_t *q = json_array_get(derived_array(c, "party_places"), 0);
    cr_assert_str_eq(jstr(q, "field"), "shipment.consignee.place");
    cr_assert_str_eq(jstr(q, "name"), "Dunkerque");
}

Test(record, every_time_is_derived)
{
    Tidewatch__V1__Record *r = valid_shipment();
    r->shipment->dispatched = ts(NOW - 86400);
    r->shipment->expected = ts(NOW + 86400);
    r->shipment->delivered = ts(NOW - 3600);
    r->shipment->delivered->nanos = 5;
    const tw_record_check *c = validate(r);
    expect_ok(c);
    json_t *t = derived_array(c, "times");
    cr_assert_eq(json_array_size(t), 3);
    const char *want[] = {"shipment.dispatched", "shipment.expected", "shipment.delivered"};
    int64_t secs[] = {NOW - 86400, NOW + 86400, NOW - 3600};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(t, i);
        cr_assert_str_eq(jstr(e, "field"), want[i]);
        cr_assert_eq(jint(e, "seconds"), secs[i]);
    }
    cr_assert_eq(jint(json_array_get(t, 2), "nanos"), 5);
    /* A bad time is an error and is not derived. */
    r->shipment->expected = ts(100);
    c = validate(r);
    expect_only_error(c, "shipment.expected", "too_early");
    cr_assert_eq(json_array_size(derived_array(c, "times")), 2);
    /* A purchase's time under its path, also inside a correction. */
    c = validate(valid_correction());
    expect_ok(c);
    cr_assert_str_eq(jstr(json_array_get(derived_array(c, "times"), 0), "field"),
                     "correction.purchase.time");
}

Test(record, party_identifiers_are_normalised_in_derived)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Party *b = r->purchase->buyer;
    b->country = (char *)"DE";
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT, "811 907.980"));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE, "01512 3456789"));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE, "0044 20 7946 0958"));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__EMAIL, " Max.Muster@Example.DE "));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__COMPANY_NUMBER, "hrb 123-45"));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__IDENTITY_DOCUMENT, "c01x.00t47"));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__OTHER, "whatever"));
    /* The issuing country wins over the party's. */
    Tidewatch__V1__PartyIdentifier *fr =
        identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE, "06 00 00 00 01");
    fr->issuing_country = (char *)"FR";
    PUSH(b->identifiers, b->n_identifiers, fr);
    const tw_record_check *c = validate(r);
    expect_ok(c);
    json_t *ids = derived_array(c, "identifiers");
    cr_assert_eq(json_array_size(ids), 7, "everything but OTHER");
    const char *want[][4] = {
        {"purchase.buyer.identifiers[0]", "vat", "DE811907980", "DE"},
        {"purchase.buyer.identifiers[1]", "phone", "+4915123456789", "DE"},
        {"purchase.buyer.identifiers[2]", "phone", "+442079460958", "DE"},
        {"purchase.buyer.identifiers[3]", "email", "max.muster@example.de", ""},
        {"purchase.buyer.identifiers[4]", "company_number", "HRB12345", ""},
        {"purchase.buyer.identifiers[5]", "identity_document", "C01X00T47", ""},
        {"purchase.buyer.identifiers[7]", "phone", "+33600000001", "FR"},
    };
    for (size_t i = 0; i < 7; i++) {
        json_t *e = json_array_get(ids, i);
        cr_assert_str_eq(jstr(e, "field"), want[i][0]);
        cr_assert_str_eq(jstr(e, "kind"), want[i][1]);
        cr_assert_str_eq(jstr(e, "value"), want[i][2]);
        cr_assert_str_eq(jstr(e, "country"), want[i][3]);
    }
    for (size_t i = 0; i < c->nwarnings; i++)
        cr_assert(!strstr(c->warnings[i].field, "identifiers"), "no warning: %s",
                  c->warnings[i].field);
}

Test(record, unparseable_identifiers_are_warnings_not_guesses)
{
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Party *b = r->purchase->buyer;
    b->country = NULL;
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE, "01512 3456789"));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT, "811907980"));
    PUSH(b->identifiers, b->n_identifiers,
         identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE, "+49 1512 34 ext. 5"));
    Tidewatch__V1__PartyIdentifier *v =
        identifier(TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT, "FR40303265045");
    v->issuing_country = (char *)"DE";
    PUSH(b->identifiers, b->n_identifiers, v);
    const tw_record_check *c = validate(r);
    expect_ok(c);
    const tw_issue *w = expect_warning(c, "purchase.buyer.identifiers[0].value", "not_normalised");
    cr_assert(strstr(w->reason, "issuing_country"), "advises a contract field: %s", w->reason);
    cr_assert(!strstr(w->reason, "admin1"), "%s", w->reason);
    expect_warning(c, "purchase.buyer.identifiers[1].value", "not_normalised");
    expect_warning(c, "purchase.buyer.identifiers[2].value", "not_normalised");
    expect_warning(c, "purchase.buyer.identifiers[3].value", "country_mismatch");
    json_t *ids = derived_array(c, "identifiers");
    cr_assert_eq(json_array_size(ids), 1, "only the explicitly prefixed VAT number");
    cr_assert_str_eq(jstr(json_array_get(ids, 0), "value"), "FR40303265045");
}

Test(record, place_region_resolves_an_ambiguous_town)
{
    const tw_places *pl = real_places();
    Tidewatch__V1__Record *r = valid_purchase();
    Tidewatch__V1__Place *p = place_named("Münster", "DE");
    r->purchase->buyer->place = p;
    const tw_record_check *c = validate_with(r, pl);
    expect_ok(c);
    const tw_issue *w = expect_warning(c, "purchase.buyer.place", "ambiguous");
    cr_assert(strstr(w->reason, "place.region"), "advises the contract's field: %s", w->reason);
    cr_assert(!strstr(w->reason, "admin1"), "no field the contract lacks: %s", w->reason);
    cr_assert_eq(json_array_size(derived_array(c, "party_places")), 0, "never guessed");
    p->region = (char *)"Nordrhein-Westfalen";
    c = validate_with(r, pl);
    expect_ok(c);
    expect_no_warning(c, "purchase.buyer.place", NULL);
    json_t *d = json_array_get(derived_array(c, "party_places"), 0);
    cr_assert_str_eq(jstr(d, "field"), "purchase.buyer.place");
    cr_assert_float_eq(jreal(d, "lat"), 51.96236, 1e-5);
    p->region = (char *)"Atlantis";
    c = validate_with(r, pl);
    expect_ok(c);
    w = expect_warning(c, "purchase.buyer.place", "region_unknown");
    cr_assert(strstr(w->reason, "place.region"), "%s", w->reason);
    cr_assert_eq(json_array_size(derived_array(c, "party_places")), 0, "never guessed");
    p->region = (char *)"--";
    expect_only_error(validate_with(r, pl), "purchase.buyer.place.region", "bad_region");
}
