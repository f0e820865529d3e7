/* tw_alertrules: the six alert rules of issue 8 on hand-built histories
 * (real Channel geography: the hubs and radii migration 0010 seeds). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "tw_alertrules.h"
#include "tw_places.h"

#define DAY 86400
#define T0 1772409600 /* 2026-03-02 00:00 UTC */

/* The hubs of migration 0010 that these tests need (same order rules as
 * the daemon: any order works). */
static const tw_ar_hub HUBS[] = {
    {"Calais", TW_AR_HUB_COAST, 50.95194, 1.85635, 10},
    {"Wissant", TW_AR_HUB_COAST, 50.88530, 1.66263, 10},
    {"Boulogne-sur-Mer", TW_AR_HUB_COAST, 50.72485, 1.61373, 10},
    {"Dunkerque", TW_AR_HUB_COAST, 51.03440, 2.37681, 10},
    {"Nieuwpoort", TW_AR_HUB_COAST, 51.13008, 2.75135, 10},
    {"Zeebrugge", TW_AR_HUB_COAST, 51.32901, 3.18188, 10},
    {"Lille", TW_AR_HUB_INLAND, 50.63391, 3.05512, 15},
    {"Saint-Omer", TW_AR_HUB_INLAND, 50.74834, 2.26091, 15},
    {"Arras", TW_AR_HUB_INLAND, 50.29301, 2.78186, 15},
    {"Osnabrück", TW_AR_HUB_TRANSIT, 52.27264, 8.04980, 25},
    {"Essen", TW_AR_HUB_TRANSIT, 51.45657, 7.01228, 25},
    {"Dover", TW_AR_HUB_UK_LANDING, 51.12598, 1.31257, 10},
};
#define NHUBS (sizeof HUBS / sizeof HUBS[0])

/* Places. */
typedef struct place {
    const char *name;
    double lat, lon;
} place;
static const place KOELN = {"Köln", 50.93753, 6.96028};
static const place HAMBURG = {"Hamburg", 53.55073, 9.99302};
static const place OSNABRUECK = {"Osnabrück", 52.27264, 8.04980};
static const place ESSEN = {"Essen", 51.45657, 7.01228};
static const place LILLE = {"Lille", 50.62925, 3.05726};
static const place WISSANT = {"Wissant", 50.8853, 1.6626};
static const place BOULOGNE = {"Boulogne-sur-Mer", 50.72640, 1.61470};
static const place OUTREAU = {"Outreau", 50.70540, 1.59400};
static const place PARIS = {"Paris", 48.85660, 2.35220};
static const place AACHEN = {"Aachen", 50.77664, 6.08342};

static const tw_ar_ident PHONE_A[] = {{"phone", "+491701234567"}};
static const tw_ar_ident PHONE_A_EMAIL[] = {{"email", "x@example.org"}, {"phone", "+491701234567"}};
static const tw_ar_ident VAT_DEALER[] = {{"vat", "FR40303265045"}};
static const tw_ar_ident VAT_IMPORTER[] = {{"vat", "DE811907980"}};

static tw_ar_config cfg(void)
{
    tw_ar_config c;
    tw_ar_config_defaults(&c);
    return c;
}

static tw_ar_party person(int64_t id, const char *name, const place *at)
{
    tw_ar_party p = {.party_id = id, .kind = TW_AR_PARTY_PERSON, .name = name, .name_key = "",
                     .address_key = "", .first_seen = TW_AR_NO_TIME};
    if (at) {
        p.has_place = 1;
        p.lat = at->lat;
        p.lon = at->lon;
    }
    return p;
}

static tw_ar_party company(int64_t id, const char *name, const place *at, int trade_records)
{
    tw_ar_party p = person(id, name, at);
    p.kind = TW_AR_PARTY_COMPANY;
    p.trade_records = trade_records;
    p.first_seen = trade_records ? T0 - 400 * DAY : TW_AR_NO_TIME;
    return p;
}

static const tw_ar_party POLICE = {.party_id = 900, .kind = TW_AR_PARTY_AGENCY,
                                   .name = "Police aux frontières", .first_seen = TW_AR_NO_TIME};

static tw_ar_hop hop(int kind, int64_t ev, int64_t item, int item_kind, int64_t at,
                     const tw_ar_party *from, const tw_ar_party *to, const place *where)
{
    tw_ar_hop h = {.event_id = ev, .line = 0, .kind = kind, .item_id = item,
                   .item_kind = item_kind, .item_label = "", .at = at, .quantity = 1,
                   .from = from, .to = to, .consignment = "", .vehicle = "",
                   .source = "test", .source_ref = "r", .grading_source = 1, .grading_info = 1};
    if (where) {
        h.has_place = 1;
        h.lat = where->lat;
        h.lon = where->lon;
        h.place_name = where->name;
    }
    return h;
}

static tw_ar_hop sale(int64_t ev, int64_t item, int item_kind, int64_t at, const tw_ar_party *from,
                      const tw_ar_party *to, const place *where)
{
    return hop(TW_AR_HOP_SALE, ev, item, item_kind, at, from, to, where);
}

static tw_ar_hop ship(int64_t ev, int64_t item, int item_kind, int64_t at, const tw_ar_party *from,
                      const tw_ar_party *to, const place *origin, const place *dest)
{
    tw_ar_hop h = hop(TW_AR_HOP_SHIPMENT, ev, item, item_kind, at, from, to, dest);
    if (origin) {
        h.has_origin = 1;
        h.origin_lat = origin->lat;
        h.origin_lon = origin->lon;
        h.origin_name = origin->name;
    }
    return h;
}

static tw_ar_hop seize(int64_t ev, int64_t item, int64_t at, const place *where, int launch)
{
    tw_ar_hop h = hop(TW_AR_HOP_SEIZURE, ev, item, TW_AR_ITEM_ENGINE, at, NULL, &POLICE, where);
    h.launch = launch;
    return h;
}

/* Run the real-time rules; returns the alerts (caller clears). */
static tw_ar_alerts run_rt(const tw_ar_config *c, const tw_ar_hub *hubs, size_t nhubs,
                           tw_ar_subject_kind kind, const char *subject, int64_t ev,
                           const tw_ar_hop *h, size_t n)
{
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_realtime(c, hubs, nhubs, kind, subject, ev, h, n, &a), 0);
    return a;
}

static const tw_ar_alert *find(const tw_ar_alerts *a, const char *rule)
{
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->v[i].rule, rule))
            return &a->v[i];
    return NULL;
}

static int has_factor(const tw_ar_alert *a, const char *name)
{
    json_error_t je;
    json_t *ev = json_loads(a->evidence_json, 0, &je);
    cr_assert(ev, "evidence is JSON: %s", je.text);
    int found = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(ev, "factors"), i, f) {
        if (!strcmp(json_string_value(json_object_get(f, "name")), name))
            found = 1;
    }
    json_decref(ev);
    /* The explanation names every factor in words. */
    char words[64];
    snprintf(words, sizeof words, "%s", name);
    for (char *p = words; *p; p++)
        if (*p == '_')
            *p = ' ';
    if (found)
        cr_assert(strstr(a->explanation, words), "explanation lacks \"%s\": %s", words,
                  a->explanation);
    return found;
}

static void dump(const tw_ar_alerts *a)
{
    for (size_t i = 0; i < a->n; i++)
        cr_log_info("%s [%s] %s | %s", a->v[i].rule, tw_ar_severity_name(a->v[i].severity),
                    a->v[i].title, a->v[i].explanation);
}

/* ---- configuration ---------------------------------------------------- */

static int cfg_eq(const tw_ar_config *a, const tw_ar_config *b)
{
    return a->version == b->version && a->approach_min_km == b->approach_min_km &&
           a->approach_end_km == b->approach_end_km &&
           a->via_transit_min_km == b->via_transit_min_km &&
           a->via_transit_max_days == b->via_transit_max_days &&
           a->seizure_lookback_days == b->seizure_lookback_days &&
           a->bulk_min_items == b->bulk_min_items && a->bulk_window_days == b->bulk_window_days &&
           a->quiet_within_km == b->quiet_within_km && a->quiet_days == b->quiet_days &&
           a->quiet_lookback_days == b->quiet_lookback_days &&
           a->trader_min_records == b->trader_min_records && a->local_km == b->local_km &&
           a->min_score == b->min_score && a->medium_score == b->medium_score &&
           a->high_score == b->high_score && a->critical_score == b->critical_score &&
           a->long_haul_km == b->long_haul_km;
}

static void parse_bad(const char *json, const char *part)
{
    tw_ar_config c = cfg(), before;
    c.version = 77;
    before = c;
    char err[256] = "";
    cr_assert_eq(tw_ar_config_parse(json, strlen(json), 2, &c, err, sizeof err), -1, "%s parsed",
                 json);
    cr_assert(strstr(err, part), "%s: \"%s\" lacks \"%s\"", json, err, part);
    cr_assert(cfg_eq(&c, &before), "out untouched on error");
}

Test(alertrules, config_defaults_and_overrides)
{
    tw_ar_config d = cfg(), c;
    char err[256];
    cr_assert_eq(d.version, 1);
    cr_assert_eq(d.approach_min_km, 150);
    cr_assert_eq(d.approach_end_km, 60);
    cr_assert_eq(d.bulk_min_items, 4);
    cr_assert_eq(d.long_haul_km, 300);
    cr_assert(d.min_score < d.medium_score && d.medium_score < d.high_score &&
              d.high_score < d.critical_score);
    cr_assert_eq(tw_ar_config_parse("{}", 2, 1, &c, err, sizeof err), 0, "%s", err);
    cr_assert(cfg_eq(&c, &d), "'{}' is the defaults");
    const char *j = "{\"approach_min_km\": 200, \"quiet_days\": 14, \"local_km\": 25.5,"
                    " \"min_score\": 4, \"long_haul_km\": 0}";
    cr_assert_eq(tw_ar_config_parse(j, strlen(j), 3, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.version, 3);
    cr_assert_eq(c.approach_min_km, 200);
    cr_assert_eq(c.quiet_days, 14);
    cr_assert_eq(c.local_km, 25.5);
    cr_assert_eq(c.min_score, 4);
    cr_assert_eq(c.long_haul_km, 0);
    cr_assert_eq(c.approach_end_km, 60, "others keep their defaults");
}

/* The seed row the migration may write spells out the built-in defaults. */
Test(alertrules, config_seed_row_is_the_defaults)
{
    const char *seed =
        "{\"approach_min_km\":150,\"approach_end_km\":60,\"via_transit_min_km\":100,"
        "\"via_transit_max_days\":45,\"seizure_lookback_days\":365,\"bulk_min_items\":4,"
        "\"bulk_window_days\":30,\"quiet_within_km\":40,\"quiet_days\":10,"
        "\"quiet_lookback_days\":90,\"trader_min_records\":3,\"local_km\":50,"
        "\"min_score\":3,\"medium_score\":5,\"high_score\":8,\"critical_score\":11,"
        "\"long_haul_km\":300}";
    tw_ar_config c, d = cfg();
    char err[256];
    cr_assert_eq(tw_ar_config_parse(seed, strlen(seed), 1, &c, err, sizeof err), 0, "%s", err);
    cr_assert(cfg_eq(&c, &d));
}

Test(alertrules, config_errors_name_the_key)
{
    parse_bad("{\"approach_mn_km\": 1}", "approach_mn_km: unknown key");
    parse_bad("{\"version\": 2}", "version: unknown key");
    parse_bad("{\"quiet_days\": \"10\"}", "quiet_days: must be an integer");
    parse_bad("{\"quiet_days\": 1.5}", "quiet_days: must be an integer");
    parse_bad("{\"local_km\": true}", "local_km: must be a number");
    parse_bad("{\"approach_min_km\": -1}", "approach_min_km: -1 out of range");
    parse_bad("{\"bulk_min_items\": 0}", "bulk_min_items: 0 out of range");
    parse_bad("{\"seizure_lookback_days\": -5}", "seizure_lookback_days: -5 out of range");
    parse_bad("{\"quiet_days\": 99999999999}", "quiet_days");
    parse_bad("{\"min_score\": 9}", "must rise");
    parse_bad("{\"quiet_days\": 100}", "quiet_lookback_days: must be at least quiet_days");
    parse_bad("{\"quiet_days\": 1, \"quiet_days\": 2}", "invalid JSON");
    parse_bad("[]", "not a JSON object");
    parse_bad("{", "invalid JSON");
    parse_bad("", "invalid JSON");
}

Test(alertrules, names)
{
    cr_assert_str_eq(tw_ar_subject_kind_name(TW_AR_SUBJECT_ITEM), "item");
    cr_assert_str_eq(tw_ar_subject_kind_name(TW_AR_SUBJECT_CLUSTER), "cluster");
    cr_assert_str_eq(tw_ar_subject_kind_name(TW_AR_SUBJECT_CONSIGNMENT), "consignment");
    cr_assert_str_eq(tw_ar_severity_name(1), "low");
    cr_assert_str_eq(tw_ar_severity_name(4), "critical");
    cr_assert_str_eq(tw_ar_severity_name(0), "");
    cr_assert_str_eq(tw_ar_severity_name(5), "");
}

Test(alertrules, party_key)
{
    char buf[64];
    tw_ar_party p = person(7, "Jan", NULL);
    static const tw_ar_ident ids[] = {{"phone", "+49170"}, {"other", "aaa"}, {"email", "z@x"},
                                      {"phone", ""}};
    p.idents = ids;
    p.n_idents = 4;
    cr_assert_str_eq(tw_ar_party_key(&p, buf, sizeof buf), "email:z@x", "smallest, 'other' and empty skipped");
    p.n_idents = 0;
    p.name_key = "jan peeters";
    p.address_key = "lille 3";
    cr_assert_str_eq(tw_ar_party_key(&p, buf, sizeof buf), "name:jan peeters|lille 3");
    p.name_key = "";
    p.address_key = "";
    cr_assert_str_eq(tw_ar_party_key(&p, buf, sizeof buf), "party:7");
    p.idents = ids;
    p.n_idents = 1;
    cr_assert_str_eq(tw_ar_party_key(&p, buf, 6), "phone", "truncated to len - 1");
}

/* ---- rule 1 ---------------------------------------------------------------- */

/* The network's van: from a farm near Osnabrück to a private person in Lille. */
Test(alertrules, destination_hub_fires_with_evidence)
{
    tw_ar_config c = cfg();
    tw_ar_party courier = person(1, "Jan Peeters", NULL), recv = person(2, "Marc D.", &LILLE);
    tw_ar_hop h = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &courier, &recv, &OSNABRUECK, &LILLE);
    h.item_label = "engine Yamaha 6E5X1016523";
    h.vehicle = "GH-412-KT";
    h.grading_info = 2;
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    dump(&a);
    const tw_ar_alert *x = find(&a, "destination_hub");
    cr_assert(x, "rule 1 fired");
    cr_assert_str_eq(x->hub, "Lille");
    cr_assert_str_eq(x->subject, "42");
    cr_assert_eq(x->subject_kind, TW_AR_SUBJECT_ITEM);
    cr_assert_geq(x->severity, 2, "at least medium");
    cr_assert_eq(x->known_at, T0);
    cr_assert_eq(x->source_event, 10);
    cr_assert(has_factor(x, "destination_at_inland_hub"));
    cr_assert(has_factor(x, "private_receiver"));
    cr_assert(has_factor(x, "private_sender"));
    cr_assert(has_factor(x, "long_haul"));
    cr_assert(has_factor(x, "passed_transit_hub"));
    cr_assert(!has_factor(x, "cash"));
    cr_assert(strstr(x->explanation, "engine Yamaha 6E5X1016523 (item 42)"), "%s", x->explanation);
    cr_assert(strstr(x->explanation, "Lille"));
    cr_assert(strstr(x->explanation, "Counted: "));
    cr_assert(strstr(x->explanation, "(+2)"));
    cr_assert(strstr(x->title, "Lille"));
    json_error_t je;
    json_t *ev = json_loads(x->evidence_json, 0, &je);
    cr_assert(ev);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "rule")), "destination_hub");
    json_t *hub = json_object_get(ev, "hub");
    cr_assert_str_eq(json_string_value(json_object_get(hub, "name")), "Lille");
    cr_assert_str_eq(json_string_value(json_object_get(hub, "kind")), "inland");
    cr_assert_float_eq(json_real_value(json_object_get(hub, "radius_km")), 15.0, 1e-9);
    double km = json_real_value(json_object_get(hub, "km"));
    cr_assert(km >= 0 && km < 2, "km %f", km);
    cr_assert_float_eq(km * 10, round(km * 10), 1e-6, "rounded to 0.1 km");
    json_t *h0 = json_array_get(json_object_get(ev, "hops"), 0);
    cr_assert_eq(json_integer_value(json_object_get(h0, "event_id")), 10);
    cr_assert_str_eq(json_string_value(json_object_get(h0, "kind")), "shipment");
    cr_assert_str_eq(json_string_value(json_object_get(h0, "at")), "2026-03-02T00:00:00Z");
    cr_assert_str_eq(json_string_value(json_object_get(h0, "place")), "Lille");
    cr_assert_str_eq(json_string_value(json_object_get(h0, "origin")), "Osnabrück");
    cr_assert_str_eq(json_string_value(json_object_get(h0, "grading")), "1B");
    cr_assert_str_eq(json_string_value(json_object_get(h0, "vehicle")), "GH-412-KT");
    cr_assert_str_eq(json_string_value(json_object_get(h0, "source")), "test");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(h0, "to"), "name")), "Marc D.");
    cr_assert(json_is_real(json_object_get(h0, "km_to_hub")));
    cr_assert_eq(json_integer_value(json_object_get(ev, "config_version")), 1);
    cr_assert_eq(json_integer_value(json_object_get(ev, "score")), (json_int_t)x->score);
    json_decref(ev);
    tw_ar_alerts_clear(&a);
    cr_assert_eq(a.n, 0);
}

/* Exactly at the radius fires; a hair inside the radius' edge does not. */
Test(alertrules, destination_hub_boundary_is_the_radius)
{
    tw_ar_config c = cfg();
    tw_ar_party courier = person(1, "A", NULL), recv = person(2, "B", NULL);
    tw_ar_hop h = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &courier, &recv, &OSNABRUECK, &LILLE);
    tw_ar_hub hub = {"Staging", TW_AR_HUB_INLAND, 50.70, 3.20, 0};
    hub.radius_km = tw_haversine_km(LILLE.lat, LILLE.lon, hub.lat, hub.lon);
    tw_ar_alerts a = run_rt(&c, &hub, 1, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert(find(&a, "destination_hub"), "at the radius: inside");
    tw_ar_alerts_clear(&a);
    hub.radius_km = nextafter(hub.radius_km, 0);
    a = run_rt(&c, &hub, 1, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert_null(find(&a, "destination_hub"), "just outside");
    tw_ar_alerts_clear(&a);
    /* Transit and UK landing hubs are not destinations of rule 1. */
    hub.kind = TW_AR_HUB_TRANSIT;
    hub.radius_km = 100;
    a = run_rt(&c, &hub, 1, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert_null(find(&a, "destination_hub"));
    tw_ar_alerts_clear(&a);
}

Test(alertrules, destination_hub_quiet_cases)
{
    tw_ar_config c = cfg();
    tw_ar_party courier = person(1, "A", NULL), recv = person(2, "B", NULL);
    /* Destination far from every hub (Aachen). */
    tw_ar_hop h = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &courier, &recv, &HAMBURG, &AACHEN);
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert_eq(a.n, 0);
    /* A seizure at a beach is not a flow. */
    tw_ar_hop s = seize(11, 42, T0, &WISSANT, 1);
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, &s, 1);
    cr_assert_eq(a.n, 0);
    /* A hop of an earlier event is not re-evaluated by rule 1. */
    tw_ar_hop v = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &courier, &recv, &OSNABRUECK, &LILLE);
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 12, &v, 1);
    cr_assert_eq(a.n, 0, "event 12 has no hop of its own");
    /* No time: no event time to know it from, no alert. */
    tw_ar_hop nt = ship(10, 42, TW_AR_ITEM_ENGINE, TW_AR_NO_TIME, &courier, &recv, &OSNABRUECK,
                        &LILLE);
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &nt, 1);
    cr_assert_eq(a.n, 0);
    /* No places at all. */
    tw_ar_hop np = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &courier, &recv, NULL, NULL);
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &np, 1);
    cr_assert_eq(a.n, 0);
}

/* A sale's destination is the buyer's place when known, else the sale place. */
Test(alertrules, destination_hub_sale_uses_the_buyers_place)
{
    tw_ar_config c = cfg();
    tw_ar_party shop = company(1, "Rhein-Boote GmbH", &KOELN, 40);
    tw_ar_party buyer = person(2, "K. M.", &LILLE);
    tw_ar_hop h = sale(10, 42, TW_AR_ITEM_BOAT, T0, &shop, &buyer, &HAMBURG);
    h.payment = TW_AR_PAY_CASH;
    h.quantity = 3; /* not one outfit: no retail sale */
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    dump(&a);
    const tw_ar_alert *x = find(&a, "destination_hub");
    cr_assert(x);
    cr_assert_str_eq(x->hub, "Lille");
    cr_assert(has_factor(x, "cash"));
    cr_assert(has_factor(x, "long_haul"), "Hamburg to Lille");
    cr_assert(!has_factor(x, "local_single_sale"));
    cr_assert(!has_factor(x, "retail_sale"));
    tw_ar_alerts_clear(&a);
    /* Buyer's place unknown: the sale place (Hamburg) is no hub. */
    buyer.has_place = 0;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert_null(find(&a, "destination_hub"));
    tw_ar_alerts_clear(&a);
}

/* ---- legitimate trade stays quiet ------------------------------------------ */

/* A coastal dealer sells one engine to a local private buyer (paid in
 * cash), after receiving it from its importer: nothing, on every rule. */
Test(alertrules, legit_local_single_sale_is_quiet)
{
    tw_ar_config c = cfg();
    tw_ar_party importer = company(1, "Nautic Import SAS", &PARIS, 200);
    tw_ar_party dealer = company(2, "Marine Boulogne SARL", &BOULOGNE, 30);
    tw_ar_party local = person(3, "Paul L.", &OUTREAU);
    tw_ar_hop h[2] = {
        ship(10, 42, TW_AR_ITEM_ENGINE, T0, &importer, &dealer, &HAMBURG, &BOULOGNE),
        sale(11, 42, TW_AR_ITEM_ENGINE, T0 + 20 * DAY, &dealer, &local, &BOULOGNE),
    };
    h[1].payment = TW_AR_PAY_CASH;
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, h, 1);
    dump(&a);
    cr_assert_eq(a.n, 0, "the stock delivery");
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, h, 2);
    dump(&a);
    cr_assert_eq(a.n, 0, "the local sale");
    /* Over the counter (the buyer's place unknown), and a dealer not yet
     * established: still nothing. */
    local.has_place = 0;
    dealer.trade_records = 0;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, h, 2);
    dump(&a);
    cr_assert_eq(a.n, 0, "over the counter");
    /* Rule 6 later on: the engine stays with its local owner. */
    a = (tw_ar_alerts){0};
    local.has_place = 1;
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, T0 + 60 * DAY, h, 2, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "quiet with its local owner");
    /* Control: the same engine sold to a private buyer 300 km away, who
     * then has it driven to a beach, is not quiet. */
    tw_ar_party far = person(4, "R. S.", &KOELN);
    tw_ar_hop g[3] = {h[0], sale(11, 42, TW_AR_ITEM_ENGINE, T0 + 20 * DAY, &dealer, &far, &BOULOGNE),
                      ship(12, 42, TW_AR_ITEM_ENGINE, T0 + 25 * DAY, &far, &far, &KOELN, &WISSANT)};
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 12, g, 3);
    dump(&a);
    cr_assert(find(&a, "destination_hub") || find(&a, "approach_coast"));
    tw_ar_alerts_clear(&a);
}

/* Stock deliveries from the usual importer to a coastal dealer, boats and
 * engines together, from far away and through the Ruhr: nothing, from the
 * first delivery (dealer without history) to the fifth, for the items,
 * the consignments and the dealer's cluster; and rule 5 stays quiet too. */
Test(alertrules, legit_usual_importer_deliveries_are_quiet)
{
    tw_ar_config c = cfg();
    tw_ar_party importer = company(1, "Nautic Import GmbH", &ESSEN, 120);
    importer.idents = VAT_IMPORTER;
    importer.n_idents = 1;
    tw_ar_party dealer[5];
    tw_ar_hop all[30];
    size_t n = 0;
    for (int d = 0; d < 5; d++) {
        dealer[d] = company(2, "Marine Boulogne SARL", &BOULOGNE, d * 6);
        dealer[d].idents = VAT_DEALER;
        dealer[d].n_idents = 1;
        tw_ar_hop cons[6];
        char ref[32];
        snprintf(ref, sizeof ref, "NI-%d", d);
        for (int l = 0; l < 6; l++) {
            cons[l] = ship(100 + d, 1000 + d * 10 + l, l % 2 ? TW_AR_ITEM_BOAT : TW_AR_ITEM_ENGINE,
                           T0 + d * 7 * DAY, &importer, &dealer[d], &HAMBURG, &BOULOGNE);
            cons[l].line = l;
            cons[l].consignment = "NI";
            cons[l].payment = TW_AR_PAY_TRANSFER;
            all[n++] = cons[l];
        }
        tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_CONSIGNMENT, ref, 100 + d, cons, 6);
        dump(&a);
        cr_assert_eq(a.n, 0, "delivery %d, consignment", d);
        a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "1000", 100 + d, cons, 1);
        cr_assert_eq(a.n, 0, "delivery %d, item", d);
        a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_CLUSTER, "vat:FR40303265045", 100 + d, all, n);
        dump(&a);
        cr_assert_eq(a.n, 0, "delivery %d, cluster", d);
    }
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, T0 + 7 * DAY, all, 12, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "bulk: first two deliveries (dealer new)");
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, T0 + 29 * DAY, all, n, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "bulk: all five");
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, T0 + 60 * DAY, all, n, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "dealer stock is not 'gone quiet'");
    /* Control: the same loads paid in cash by a new company from a private
     * shipper do alert. */
    tw_ar_party front = company(3, "Nord Loisirs SARL", &BOULOGNE, 0), van = person(4, "V.", NULL);
    for (size_t i = 0; i < 6; i++) {
        all[i].from = &van;
        all[i].to = &front;
        all[i].payment = TW_AR_PAY_CASH;
    }
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_CONSIGNMENT, "NI-0", 100, all, 6);
    dump(&a);
    const tw_ar_alert *x = find(&a, "destination_hub");
    cr_assert(x);
    cr_assert_geq(x->severity, 3);
    cr_assert(has_factor(x, "five_or_more_units"));
    cr_assert(has_factor(x, "boats_with_engines"));
    cr_assert(has_factor(x, "new_company"));
    tw_ar_alerts_clear(&a);
}

/* A dealer's first delivery from an importer that is new to the records
 * too (the first weeks of any data set): no alert at all on any subject
 * (trade between companies, the distance a distributor delivers over, a
 * dealer on the coast); the same load from a storage farm near Osnabrück
 * to a new company in Lille is medium. */
Test(alertrules, legit_first_delivery_between_new_companies_raises_nothing)
{
    tw_ar_config c = cfg();
    tw_ar_party importer = company(1, "Nautic Import GmbH", &HAMBURG, 0);
    tw_ar_party dealer = company(2, "Marine Boulogne SARL", &BOULOGNE, 0);
    tw_ar_hop cons[6];
    for (int l = 0; l < 6; l++) {
        cons[l] = ship(100, 1000 + l, l % 2 ? TW_AR_ITEM_BOAT : TW_AR_ITEM_ENGINE, T0, &importer,
                       &dealer, &HAMBURG, &BOULOGNE);
        cons[l].line = l;
        cons[l].payment = TW_AR_PAY_TRANSFER;
    }
    tw_ar_alerts a = {0};
    for (int k = 0; k < 3; k++) {
        size_t n = k == 1 ? 1 : 6;
        cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, (tw_ar_subject_kind)k, "s", 100, cons, n, &a), 0);
    }
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, T0 + DAY, cons, 6, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "%zu alerts on a first delivery to a dealer", a.n);
    tw_ar_alerts_clear(&a);
    /* Control: from the storage farm to a front company in Lille. */
    tw_ar_party farm = company(3, "Agrar Hof W. GmbH", &OSNABRUECK, 0);
    tw_ar_party front = company(4, "Lille Nautisme SARL", &LILLE, 0);
    for (int l = 0; l < 6; l++) {
        cons[l] = ship(101, 1000 + l, l % 2 ? TW_AR_ITEM_BOAT : TW_AR_ITEM_ENGINE, T0, &farm,
                       &front, &OSNABRUECK, &LILLE);
        cons[l].line = l;
    }
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_CONSIGNMENT, "s", 101, cons, 6);
    dump(&a);
    const tw_ar_alert *x = find(&a, "destination_hub");
    cr_assert(x);
    cr_assert_geq(x->severity, 2);
    cr_assert(has_factor(x, "trade_between_companies"));
    cr_assert(has_factor(x, "passed_transit_hub"));
    tw_ar_alerts_clear(&a);
}

/* A leisure buyer living on the coast buys one boat with its engine from
 * an inland dealer (by card) and keeps it at home: a retail sale of one
 * outfit, wherever the buyer lives, raises nothing in real time, and the
 * outfit resting at the buyer's home is not "quiet near the coast". A
 * private buyer taking three boats in cash to the coast still does. */
Test(alertrules, legit_coastal_leisure_buyer_keeping_an_outfit_is_not_quiet)
{
    tw_ar_config c = cfg();
    tw_ar_party importer = company(1, "Nautic Import SAS", &PARIS, 200);
    tw_ar_party dealer = company(2, "Nautisme Lillois SARL", &PARIS, 30);
    tw_ar_party buyer = person(3, "Paul L.", &OUTREAU);
    tw_ar_hop h[4] = {
        ship(10, 42, TW_AR_ITEM_BOAT, T0, &importer, &dealer, &HAMBURG, &PARIS),
        ship(10, 43, TW_AR_ITEM_ENGINE, T0, &importer, &dealer, &HAMBURG, &PARIS),
        sale(11, 42, TW_AR_ITEM_BOAT, T0 + 20 * DAY, &dealer, &buyer, &PARIS),
        sale(11, 43, TW_AR_ITEM_ENGINE, T0 + 20 * DAY, &dealer, &buyer, &PARIS),
    };
    h[3].line = 1;
    h[2].payment = h[3].payment = TW_AR_PAY_CARD;
    tw_ar_alerts a = {0};
    const tw_ar_hop boat[2] = {h[0], h[2]}, sale2[2] = {h[2], h[3]};
    cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, boat, 2, &a), 0);
    cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, TW_AR_SUBJECT_CLUSTER, "phone:x", 11, sale2, 2, &a),
                 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "a retail sale of one outfit to a coastal buyer");
    /* Rule 6: 40 days later the outfit is still at the buyer's home. */
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, T0 + 60 * DAY, h, 4, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "a leisure buyer keeping an outfit is not quiet near the coast");
    /* Cash does not change that (it counts, one point). */
    h[2].payment = h[3].payment = TW_AR_PAY_CASH;
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, T0 + 60 * DAY, h, 4, &a), 0);
    cr_assert_eq(a.n, 0);
    /* Control: three boats in one purchase is no retail sale; the items
     * resting near the coast are quiet_near_coast. */
    h[2].quantity = 3;
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, T0 + 60 * DAY, h, 4, &a), 0);
    dump(&a);
    const tw_ar_alert *x = find(&a, "quiet_near_coast");
    cr_assert(x, "three boats held by a private buyer near the coast");
    cr_assert_str_eq(x->subject, "42");
    cr_assert(!has_factor(x, "retail_sale"));
    cr_assert(has_factor(x, "several_units"));
    tw_ar_alerts_clear(&a);
}

/* A sailing school on the coast (a company new to the records) equips its
 * fleet: five engines and boats from a dealer, by transfer, in two
 * purchases a few days apart. Trade between companies: nothing in real
 * time nor from rule 5, whether the dealer is established or not. The same
 * purchases in cash by a private buyer are a bulk acquisition. */
Test(alertrules, legit_fleet_purchase_by_transfer_raises_nothing)
{
    tw_ar_config c = cfg();
    tw_ar_party dealer = company(1, "Marine Boulogne SARL", &BOULOGNE, 30);
    tw_ar_party school = company(2, "Ecole de voile de Wissant", &WISSANT, 0);
    tw_ar_hop h[6];
    for (int l = 0; l < 6; l++) {
        h[l] = sale(l < 3 ? 20 : 21, 500 + l, l % 2 ? TW_AR_ITEM_BOAT : TW_AR_ITEM_ENGINE,
                    T0 + (l < 3 ? 0 : 4 * DAY), &dealer, &school, &BOULOGNE);
        h[l].line = l % 3;
        h[l].payment = TW_AR_PAY_TRANSFER;
    }
    for (int pass = 0; pass < 2; pass++) {
        tw_ar_alerts a = {0};
        cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, TW_AR_SUBJECT_CLUSTER, "vat:x", 21, h, 6, &a), 0);
        cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "505", 21, &h[5], 1, &a), 0);
        cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, T0 + 5 * DAY, h, 6, &a), 0);
        cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, T0 + 40 * DAY, h, 6, &a), 0);
        dump(&a);
        cr_assert_eq(a.n, 0, "pass %d: %zu alerts on a fleet purchase", pass, a.n);
        dealer.trade_records = 0; /* a dealer new to the records too */
    }
    /* Control: a private buyer paying cash for the same six units. */
    tw_ar_party p = person(3, "R. S.", &WISSANT);
    for (int l = 0; l < 6; l++) {
        h[l].to = &p;
        h[l].payment = TW_AR_PAY_CASH;
    }
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, T0 + 5 * DAY, h, 6, &a), 0);
    dump(&a);
    const tw_ar_alert *x = find(&a, "bulk_acquisition");
    cr_assert(x);
    cr_assert_geq(x->severity, 2);
    tw_ar_alerts_clear(&a);
}

/* One dealer named by several records (its delivery notes and its own
 * sales reports) is one buyer and one seller: rule 5 counts no shared
 * identifiers and no several sellers for it; two persons under different
 * names sharing a phone are shared identifiers. */
Test(alertrules, bulk_shared_identifiers_need_different_buyers)
{
    tw_ar_config c = cfg();
    tw_ar_party imp1 = company(1, "Nautic Import SAS", &PARIS, 0);
    imp1.name_key = "nautic import";
    imp1.idents = VAT_IMPORTER;
    imp1.n_idents = 1;
    tw_ar_party imp2 = imp1;
    imp2.party_id = 11;
    tw_ar_party d1 = company(2, "Marine Boulogne SARL", &BOULOGNE, 0);
    d1.name_key = "marine boulogne";
    d1.idents = VAT_DEALER;
    d1.n_idents = 1;
    tw_ar_party d2 = d1;
    d2.party_id = 12;
    tw_ar_hop h[6];
    for (int l = 0; l < 6; l++) {
        h[l] = ship(30 + l / 3, 600 + l, TW_AR_ITEM_ENGINE, T0 + l * 3600, l < 3 ? &imp1 : &imp2,
                    l < 3 ? &d1 : &d2, &PARIS, &BOULOGNE);
        h[l].line = l % 3;
        h[l].payment = TW_AR_PAY_CASH; /* not b2b: rule 5 scores the cluster */
    }
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, T0 + DAY, h, 6, &a), 0);
    dump(&a);
    const tw_ar_alert *x = find(&a, "bulk_acquisition");
    cr_assert(x);
    cr_assert(!has_factor(x, "shared_identifiers"), "one dealer under two party ids");
    cr_assert(!has_factor(x, "several_sellers"), "one importer under two party ids");
    tw_ar_alerts_clear(&a);
    /* Control: two persons under different names with one phone. */
    tw_ar_party p1 = person(3, "A. B.", &LILLE), p2 = person(4, "C. D.", &LILLE);
    p1.name_key = "a b";
    p2.name_key = "c d";
    p1.idents = p2.idents = PHONE_A;
    p1.n_idents = p2.n_idents = 1;
    for (int l = 0; l < 6; l++)
        h[l].to = l < 3 ? &p1 : &p2;
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, T0 + DAY, h, 6, &a), 0);
    dump(&a);
    x = find(&a, "bulk_acquisition");
    cr_assert(x);
    cr_assert(has_factor(x, "shared_identifiers"));
    tw_ar_alerts_clear(&a);
}

/* ---- rule 2 -------------------------------------------------------------- */

Test(alertrules, approach_coast_fires_and_names_the_hub)
{
    tw_ar_config c = cfg();
    tw_ar_party shop = company(1, "Rhein-Boote GmbH", &KOELN, 40);
    tw_ar_party buyer = person(2, "K. M.", &KOELN);
    tw_ar_hop h[2] = {sale(10, 42, TW_AR_ITEM_ENGINE, T0, &shop, &buyer, &KOELN),
                      ship(11, 42, TW_AR_ITEM_ENGINE, T0 + 5 * DAY, &buyer, &buyer, NULL, &WISSANT)};
    h[0].payment = TW_AR_PAY_CASH;
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, h, 2);
    dump(&a);
    const tw_ar_alert *x = find(&a, "approach_coast");
    cr_assert(x);
    cr_assert_str_eq(x->hub, "Wissant");
    cr_assert_eq(x->known_at, T0 + 5 * DAY);
    cr_assert(has_factor(x, "approach_coast"));
    cr_assert(has_factor(x, "long_haul"));
    cr_assert(strstr(x->explanation, "Köln"), "%s", x->explanation);
    json_t *ev = json_loads(x->evidence_json, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(ev, "hops")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "from_place")), "Köln");
    cr_assert(json_real_value(json_object_get(ev, "progress_km")) > 300);
    json_decref(ev);
    tw_ar_alerts_clear(&a);
    /* Only one known place: no approach. */
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, &h[1], 1);
    cr_assert_null(find(&a, "approach_coast"));
    tw_ar_alerts_clear(&a);
}

Test(alertrules, approach_coast_thresholds)
{
    tw_ar_config c = cfg();
    tw_ar_party a1 = person(1, "A", NULL), a2 = person(2, "B", NULL);
    /* Aachen -> a point 30 km from Wissant. */
    const place near = {"Marquise-ish", 50.85, 2.08};
    tw_ar_hop h = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &a1, &a2, &AACHEN, &near);
    double dend = tw_haversine_km(near.lat, near.lon, 50.88530, 1.66263);
    double dcal = tw_haversine_km(near.lat, near.lon, 50.95194, 1.85635);
    double dend_min = fmin(dend, dcal);
    tw_ar_hub hubs[2] = {HUBS[0], HUBS[1]};
    c.approach_end_km = dend_min;
    tw_ar_alerts a = run_rt(&c, hubs, 2, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert(find(&a, "approach_coast"), "ending exactly at approach_end_km");
    tw_ar_alerts_clear(&a);
    c.approach_end_km = nextafter(dend_min, 0);
    a = run_rt(&c, hubs, 2, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert_null(find(&a, "approach_coast"), "ending just beyond");
    tw_ar_alerts_clear(&a);
    /* Progress exactly approach_min_km fires; more required does not. */
    c = cfg();
    const tw_ar_hub *H = dcal < dend ? &HUBS[0] : &HUBS[1];
    double dstart = tw_haversine_km(AACHEN.lat, AACHEN.lon, H->lat, H->lon);
    c.approach_min_km = dstart - tw_haversine_km(near.lat, near.lon, H->lat, H->lon);
    a = run_rt(&c, hubs, 2, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert(find(&a, "approach_coast"), "progress exactly approach_min_km");
    tw_ar_alerts_clear(&a);
    c.approach_min_km += 0.01;
    a = run_rt(&c, hubs, 2, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert_null(find(&a, "approach_coast"));
    tw_ar_alerts_clear(&a);
}

/* Measured from the farthest earlier place: Hamburg -> Lille -> Köln ->
 * Wissant approaches from Hamburg. */
Test(alertrules, approach_measures_from_the_farthest_earlier_place)
{
    tw_ar_config c = cfg();
    tw_ar_party a1 = person(1, "A", NULL), a2 = person(2, "B", NULL);
    tw_ar_hop h[3] = {ship(10, 42, TW_AR_ITEM_ENGINE, T0, &a1, &a2, &HAMBURG, &LILLE),
                      ship(11, 42, TW_AR_ITEM_ENGINE, T0 + DAY, &a2, &a1, NULL, &KOELN),
                      ship(12, 42, TW_AR_ITEM_ENGINE, T0 + 2 * DAY, &a1, &a2, NULL, &WISSANT)};
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 12, h, 3);
    const tw_ar_alert *x = find(&a, "approach_coast");
    cr_assert(x);
    json_t *ev = json_loads(x->evidence_json, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "from_place")), "Hamburg");
    cr_assert_eq(json_array_size(json_object_get(ev, "hops")), 3);
    json_decref(ev);
    tw_ar_alerts_clear(&a);
}

/* ---- rule 3 ---------------------------------------------------------------- */

Test(alertrules, via_transit_fires_within_the_window)
{
    tw_ar_config c = cfg();
    tw_ar_party farm = person(1, "Hof W.", &OSNABRUECK), drv = person(2, "D.", NULL);
    tw_ar_hop h[2] = {
        ship(10, 42, TW_AR_ITEM_BOAT, T0, &farm, &farm, &HAMBURG, &ESSEN),
        ship(11, 42, TW_AR_ITEM_BOAT, T0 + 45 * DAY, &farm, &drv, NULL, &LILLE),
    };
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, h, 2);
    dump(&a);
    const tw_ar_alert *x = find(&a, "via_transit");
    cr_assert(x);
    cr_assert_str_eq(x->hub, "Essen");
    cr_assert(has_factor(x, "via_transit"));
    cr_assert(!has_factor(x, "passed_transit_hub"), "not counted twice");
    json_t *ev = json_loads(x->evidence_json, 0, NULL);
    json_t *tw = json_object_get(ev, "toward");
    cr_assert_str_eq(json_string_value(json_object_get(tw, "kind")), "coast");
    cr_assert(json_real_value(json_object_get(ev, "progress_km")) >= 100);
    json_decref(ev);
    tw_ar_alerts_clear(&a);
    /* One day too late. */
    h[1].at = T0 + 46 * DAY;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, h, 2);
    cr_assert_null(find(&a, "via_transit"));
    tw_ar_alerts_clear(&a);
    /* Not far enough toward the coast: Essen -> Aachen (about 80 km). */
    h[1].at = T0 + DAY;
    h[1].lat = AACHEN.lat;
    h[1].lon = AACHEN.lon;
    h[1].place_name = AACHEN.name;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, h, 2);
    cr_assert_null(find(&a, "via_transit"));
    tw_ar_alerts_clear(&a);
}

/* An importer's premises in Essen are trade, not storage: its stock sold
 * on by a coastal dealer has not "passed a transit hub". A private
 * holder there is storage. */
Test(alertrules, transit_held_by_an_established_trader_is_trade)
{
    tw_ar_config c = cfg();
    tw_ar_party importer = company(1, "Nautic Import GmbH", &ESSEN, 120);
    tw_ar_party dealer = company(2, "Marine Boulogne SARL", &BOULOGNE, 30);
    const place inland = {"Desvres-ish", 50.67, 1.84}; /* ~17 km from Boulogne */
    tw_ar_party buyer = person(3, "P. L.", &inland);
    tw_ar_hop h[2] = {ship(10, 42, TW_AR_ITEM_ENGINE, T0, &importer, &dealer, &ESSEN, &BOULOGNE),
                      sale(11, 42, TW_AR_ITEM_ENGINE, T0 + 20 * DAY, &dealer, &buyer, &BOULOGNE)};
    c.local_km = 5; /* not a local sale: only the transit question is left */
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 11, h, 2);
    dump(&a);
    cr_assert_null(find(&a, "via_transit"));
    for (size_t i = 0; i < a.n; i++)
        cr_assert(!has_factor(&a.v[i], "passed_transit_hub"));
    tw_ar_alerts_clear(&a);
    /* The same route from a private holder near Essen. */
    tw_ar_party holder = person(4, "Hof W.", &ESSEN);
    h[0].from = &holder;
    h[0].to = &buyer;
    h[0].lat = inland.lat;
    h[0].lon = inland.lon;
    h[0].place_name = inland.name;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, h, 1);
    dump(&a);
    cr_assert(find(&a, "via_transit"));
    tw_ar_alerts_clear(&a);
}

/* ---- rule 4 ---------------------------------------------------------------- */

/* The engine was seized at a launch on a beach; the German shop's sale
 * record arrives afterwards: it names the buyer. */
Test(alertrules, seizure_link_on_a_late_record)
{
    tw_ar_config c = cfg();
    tw_ar_party shop = company(1, "Rhein-Boote GmbH", &KOELN, 40), buyer = person(2, "K. M.", &KOELN);
    tw_ar_hop h[2] = {seize(20, 42, T0 + 30 * DAY, &WISSANT, 1),
                      sale(21, 42, TW_AR_ITEM_ENGINE, T0, &shop, &buyer, &KOELN)};
    h[1].payment = TW_AR_PAY_CASH;
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 21, h, 2);
    dump(&a);
    const tw_ar_alert *x = find(&a, "seizure_link");
    cr_assert(x);
    cr_assert_geq(x->severity, 3);
    cr_assert_str_eq(x->hub, "");
    cr_assert(has_factor(x, "linked_to_launch"));
    cr_assert_eq(x->known_at, T0 + 30 * DAY, "the latest time in the evidence: the launch");
    cr_assert(strstr(x->explanation, "K. M."), "%s", x->explanation);
    tw_ar_alerts_clear(&a);
    /* Exactly seizure_lookback_days apart: linked; one day more: not. */
    c.seizure_lookback_days = 30;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 21, h, 2);
    cr_assert(find(&a, "seizure_link"));
    tw_ar_alerts_clear(&a);
    c.seizure_lookback_days = 29;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 21, h, 2);
    cr_assert_null(find(&a, "seizure_link"));
    tw_ar_alerts_clear(&a);
    /* A second seizure record is no new lead. */
    c = cfg();
    tw_ar_hop s2[2] = {h[0], seize(22, 42, T0 + 31 * DAY, &WISSANT, 0)};
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 22, s2, 2);
    cr_assert_eq(a.n, 0);
    /* The seizure of the same event is not "already" linked. */
    tw_ar_hop same[2] = {seize(21, 42, T0 + 30 * DAY, &WISSANT, 0), h[1]};
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 21, same, 2);
    cr_assert_null(find(&a, "seizure_link"));
    tw_ar_alerts_clear(&a);
}

Test(alertrules, seizure_link_through_a_party)
{
    tw_ar_config c = cfg();
    tw_ar_party shop = company(1, "Rhein-Boote GmbH", &KOELN, 40), buyer = person(2, "K. M.", &KOELN);
    buyer.seizure_linked = 1;
    tw_ar_hop h = sale(30, 43, TW_AR_ITEM_ENGINE, T0, &shop, &buyer, &KOELN);
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "43", 30, &h, 1);
    dump(&a);
    const tw_ar_alert *x = find(&a, "seizure_link");
    cr_assert(x);
    cr_assert(has_factor(x, "party_seizure_linked"));
    cr_assert_geq(x->severity, 2);
    tw_ar_alerts_clear(&a);
    /* An established dealer that once sold a seized engine is no lead. */
    buyer.seizure_linked = 0;
    shop.seizure_linked = 1;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "43", 30, &h, 1);
    cr_assert_eq(a.n, 0);
}

/* ---- grading ------------------------------------------------------------- */

Test(alertrules, poor_grading_discounts)
{
    tw_ar_config c = cfg();
    tw_ar_party courier = person(1, "A", NULL), recv = person(2, "B", NULL);
    tw_ar_hop h = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &courier, &recv, &OSNABRUECK, &LILLE);
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    double good = find(&a, "destination_hub")->score;
    tw_ar_alerts_clear(&a);
    h.grading_info = 5;
    a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    const tw_ar_alert *x = find(&a, "destination_hub");
    cr_assert(x);
    cr_assert_float_eq(x->score, good - 2, 1e-9);
    cr_assert(has_factor(x, "poorly_graded_source"));
    tw_ar_alerts_clear(&a);
}

/* ---- rule 5 ---------------------------------------------------------------- */

/* Three private buyers sharing a phone buy boats and engines in cash from
 * two shops within the window. */
Test(alertrules, bulk_acquisition_by_a_cluster)
{
    tw_ar_config c = cfg();
    tw_ar_party s1 = company(1, "Rhein-Boote GmbH", &KOELN, 40);
    tw_ar_party s2 = company(2, "Boot & Motor KG", &ESSEN, 25);
    tw_ar_party b1 = person(11, "Ali K.", &OSNABRUECK), b2 = person(12, "Omar K.", NULL),
                b3 = person(13, "Sami R.", NULL);
    b1.idents = PHONE_A;
    b1.n_idents = 1;
    b2.idents = PHONE_A_EMAIL;
    b2.n_idents = 2;
    static const tw_ar_ident EMAIL[] = {{"email", "x@example.org"}};
    b3.idents = EMAIL;
    b3.n_idents = 1;
    int64_t as_of = T0 + 30 * DAY;
    tw_ar_hop h[6] = {
        sale(1, 101, TW_AR_ITEM_BOAT, T0 + 1, &s1, &b1, &KOELN),
        sale(2, 102, TW_AR_ITEM_ENGINE, T0 + 2 * DAY, &s1, &b1, &KOELN),
        sale(3, 103, TW_AR_ITEM_ENGINE, T0 + 3 * DAY, &s2, &b2, &ESSEN),
        sale(4, 104, TW_AR_ITEM_BOAT, T0 + 4 * DAY, &s2, &b3, &ESSEN),
        /* the same boat shipped on to the buyer: counted once */
        ship(5, 101, TW_AR_ITEM_BOAT, T0 + 5 * DAY, &b1, &b2, &KOELN, &OSNABRUECK),
        /* before the window: not counted */
        sale(6, 105, TW_AR_ITEM_ENGINE, T0, &s1, &b1, &KOELN),
    };
    for (int i = 0; i < 6; i++)
        h[i].payment = TW_AR_PAY_CASH;
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, as_of, h, 6, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 1);
    const tw_ar_alert *x = &a.v[0];
    cr_assert_str_eq(x->rule, "bulk_acquisition");
    cr_assert_eq(x->subject_kind, TW_AR_SUBJECT_CLUSTER);
    cr_assert_str_eq(x->subject, "email:x@example.org", "the smallest identifier key");
    cr_assert_str_eq(x->hub, "");
    cr_assert_eq(x->source_event, 0);
    cr_assert_eq(x->known_at, T0 + 5 * DAY);
    cr_assert_geq(x->severity, 3);
    cr_assert(has_factor(x, "bulk_acquisition"));
    cr_assert(has_factor(x, "mostly_cash"));
    cr_assert(has_factor(x, "private_buyer"));
    cr_assert(has_factor(x, "shared_identifiers"));
    cr_assert(has_factor(x, "boats_with_engines"));
    cr_assert(has_factor(x, "several_sellers"));
    json_t *ev = json_loads(x->evidence_json, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(ev, "units")), 4);
    cr_assert_eq(json_array_size(json_object_get(ev, "members")), 3);
    cr_assert_eq(json_array_size(json_object_get(ev, "links")), 2);
    cr_assert_eq(json_array_size(json_object_get(ev, "hops")), 5);
    json_decref(ev);
    tw_ar_alerts_clear(&a);
    /* One unit fewer (the window's lower bound is exclusive). */
    h[3].at = as_of - 30 * DAY;
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, as_of, h, 6, &a), 0);
    cr_assert_eq(a.n, 0, "3 units");
    h[3].at = as_of; /* the upper bound is inclusive */
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, as_of, h, 6, &a), 0);
    cr_assert_eq(a.n, 1);
    tw_ar_alerts_clear(&a);
    /* Without the shared identifiers the buyers are separate: nothing. */
    b2.n_idents = 0;
    b3.n_idents = 0;
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, as_of, h, 6, &a), 0);
    cr_assert_eq(a.n, 0);
}

/* ---- rule 6 ---------------------------------------------------------------- */

Test(alertrules, quiet_near_coast)
{
    tw_ar_config c = cfg();
    tw_ar_party drv = person(1, "D.", NULL), holder = person(2, "H.", NULL);
    const place dunes = {"Dunes du Châtelet", 50.87, 1.70};
    tw_ar_hop h[2] = {
        ship(10, 42, TW_AR_ITEM_BOAT, T0, &drv, &drv, &HAMBURG, &OSNABRUECK),
        ship(11, 42, TW_AR_ITEM_BOAT, T0 + 2 * DAY, &drv, &holder, &OSNABRUECK, &dunes),
    };
    tw_ar_alerts a = {0};
    int64_t last = T0 + 2 * DAY;
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 10 * DAY, h, 2, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 1);
    const tw_ar_alert *x = &a.v[0];
    cr_assert_str_eq(x->rule, "quiet_near_coast");
    cr_assert_str_eq(x->subject, "42");
    cr_assert_str_eq(x->hub, "Wissant");
    cr_assert_eq(x->known_at, last);
    cr_assert_geq(x->severity, 2);
    cr_assert(has_factor(x, "quiet_near_coast"));
    cr_assert(has_factor(x, "long_haul"));
    cr_assert(has_factor(x, "passed_transit_hub"));
    tw_ar_alerts_clear(&a);
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 10 * DAY - 1, h, 2, &a), 0);
    cr_assert_eq(a.n, 0, "not yet quiet_days");
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 90 * DAY, h, 2, &a), 0);
    cr_assert_eq(a.n, 1, "quiet_lookback_days is inclusive");
    tw_ar_alerts_clear(&a);
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 90 * DAY + 1, h, 2, &a), 0);
    cr_assert_eq(a.n, 0, "older than quiet_lookback_days");
    /* A run 20 days later finds the same evidence but for when it looked
     * (alert_raise() compares without as_of and quiet_days). */
    tw_ar_alerts b = {0};
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 10 * DAY, h, 2, &a), 0);
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 30 * DAY, h, 2, &b), 0);
    cr_assert_eq(a.n, 1);
    cr_assert_eq(b.n, 1);
    cr_assert_str_neq(a.v[0].evidence_json, b.v[0].evidence_json);
    json_t *ea = json_loads(a.v[0].evidence_json, 0, NULL), *eb = json_loads(b.v[0].evidence_json, 0, NULL);
    cr_assert(ea && eb);
    json_object_del(ea, "as_of");
    json_object_del(ea, "quiet_days");
    json_object_del(eb, "as_of");
    json_object_del(eb, "quiet_days");
    cr_assert(json_equal(ea, eb), "%s\n%s", a.v[0].evidence_json, b.v[0].evidence_json);
    json_decref(ea);
    json_decref(eb);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);
    /* A later record (at or before as_of) means it is not quiet. */
    tw_ar_hop g[3] = {h[0], h[1], ship(12, 42, TW_AR_ITEM_BOAT, last + 5 * DAY, &holder, &holder,
                                       &dunes, &KOELN)};
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 20 * DAY, g, 3, &a), 0);
    cr_assert_eq(a.n, 0, "moved away");
    /* Seized: known, not quiet. */
    g[2] = seize(12, 42, last + 3 * DAY, &dunes, 0);
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 20 * DAY, g, 3, &a), 0);
    cr_assert_eq(a.n, 0, "seized");
    /* Farther than quiet_within_km from the coast. */
    c.quiet_within_km = 1;
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, last + 10 * DAY, h, 2, &a), 0);
    cr_assert_eq(a.n, 0);
}

/* Rule 6 for a party cluster: two persons under different names sharing a
 * phone buy engines without serials (no item to follow) in cash inland and
 * have them shipped to a house in the dunes; the cluster's last known
 * place is that house. Items cannot say it (item_id 0), the cluster does. */
Test(alertrules, quiet_near_coast_for_a_cluster)
{
    tw_ar_config c = cfg();
    tw_ar_party shop = company(1, "Rhein-Boote GmbH", &KOELN, 40);
    tw_ar_party b1 = person(11, "Ali K.", &OSNABRUECK), b2 = person(12, "Omar K.", NULL);
    b1.idents = b2.idents = PHONE_A;
    b1.n_idents = b2.n_idents = 1;
    b1.name_key = "ali k";
    b2.name_key = "omar k";
    const place dunes = {"Dunes du Châtelet", 50.87, 1.70};
    tw_ar_hop h[3] = {
        sale(10, 0, TW_AR_ITEM_ENGINE, T0, &shop, &b1, &KOELN),
        ship(11, 0, TW_AR_ITEM_ENGINE, T0 + 3 * DAY, &b1, &b2, &OSNABRUECK, &dunes),
        sale(12, 0, TW_AR_ITEM_BOAT, T0 - 30 * DAY, &shop, &shop, &KOELN), /* names no member */
    };
    h[0].quantity = h[1].quantity = 3;
    h[0].payment = TW_AR_PAY_CASH;
    const int64_t members[] = {12, 11};
    int64_t last = T0 + 3 * DAY;
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 10 * DAY, members, 2, h, 3, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 1);
    const tw_ar_alert *x = &a.v[0];
    cr_assert_str_eq(x->rule, "quiet_near_coast");
    cr_assert_eq(x->subject_kind, TW_AR_SUBJECT_CLUSTER);
    cr_assert_str_eq(x->subject, "phone:+491701234567");
    cr_assert_str_eq(x->hub, "Wissant");
    cr_assert_eq(x->known_at, last);
    cr_assert_geq(x->severity, 2);
    cr_assert(has_factor(x, "quiet_near_coast"));
    cr_assert(has_factor(x, "shared_identifiers"));
    cr_assert(has_factor(x, "passed_transit_hub"));
    cr_assert(strstr(x->explanation, "party cluster phone:+491701234567 last received equipment"),
              "%s", x->explanation);
    tw_ar_alerts_clear(&a);
    /* The same input in another order: the same alert. */
    tw_ar_hop r[3] = {h[2], h[1], h[0]};
    const int64_t m2[] = {11, 12};
    tw_ar_alerts b = {0};
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 10 * DAY, members, 2, h, 3, &a), 0);
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 10 * DAY, m2, 2, r, 3, &b), 0);
    cr_assert_eq(a.n, 1);
    cr_assert_eq(b.n, 1);
    cr_assert_str_eq(a.v[0].evidence_json, b.v[0].evidence_json);
    cr_assert_str_eq(a.v[0].explanation, b.v[0].explanation);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);
    /* Boundaries: quiet_days and the lookback, inclusive. */
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 10 * DAY - 1, members, 2, h, 3, &a), 0);
    cr_assert_eq(a.n, 0, "not yet quiet_days");
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 90 * DAY, members, 2, h, 3, &a), 0);
    cr_assert_eq(a.n, 1, "quiet_lookback_days is inclusive");
    tw_ar_alerts_clear(&a);
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 90 * DAY + 1, members, 2, h, 3, &a), 0);
    cr_assert_eq(a.n, 0, "older than quiet_lookback_days");
    /* A later record of a member, even as the sender: not quiet. */
    tw_ar_hop g[4] = {h[0], h[1], h[2],
                      sale(13, 0, TW_AR_ITEM_ENGINE, last + 5 * DAY, &b2, &shop, &dunes)};
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 20 * DAY, members, 2, g, 4, &a), 0);
    cr_assert_eq(a.n, 0, "it sold on: the items carry the trail");
    /* ... but one after as_of is not known yet. */
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 4 * DAY + 10 * DAY, members, 2, g, 4,
                                     &a), 0);
    cr_assert_eq(a.n, 0, "as of before its own quiet_days: nothing");
    g[3].at = last + 30 * DAY;
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 20 * DAY, members, 2, g, 4, &a), 0);
    cr_assert_eq(a.n, 1, "a record after as_of is not known as of then");
    tw_ar_alerts_clear(&a);
    /* Equipment seized from a member: known, not quiet. */
    g[3] = seize(13, 0, last + 2 * DAY, &dunes, 0);
    g[3].from = &b2;
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 20 * DAY, members, 2, g, 4, &a), 0);
    cr_assert_eq(a.n, 0, "seized");
    /* Not a member of the cluster: no record of it. */
    const int64_t other[] = {99};
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, last + 10 * DAY, other, 1, h, 3, &a), 0);
    cr_assert_eq(a.n, 0);
}

/* Seeds of one cluster give the same alert: tw_ar_alerts_dedup keeps the
 * first of each (rule, subject kind, subject, hub), in order, from `from`
 * on; what comes before `from` is left alone. */
Test(alertrules, dedup_keeps_the_first_of_each_key)
{
    tw_ar_config c = cfg();
    tw_ar_party shop = company(1, "Rhein-Boote GmbH", &KOELN, 40);
    tw_ar_party b1 = person(11, "Ali K.", &OSNABRUECK), b2 = person(12, "Omar K.", NULL);
    b1.idents = b2.idents = PHONE_A;
    b1.n_idents = b2.n_idents = 1;
    const place dunes = {"Dunes du Châtelet", 50.87, 1.70};
    tw_ar_hop h[2] = {
        sale(10, 42, TW_AR_ITEM_ENGINE, T0, &shop, &b1, &KOELN),
        ship(11, 42, TW_AR_ITEM_ENGINE, T0 + 3 * DAY, &b1, &b2, &OSNABRUECK, &dunes),
    };
    h[0].quantity = h[1].quantity = 3;
    h[0].payment = TW_AR_PAY_CASH;
    const int64_t one[] = {11, 12}, two[] = {12};
    int64_t as_of = T0 + 20 * DAY;
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, as_of, one, 2, h, 2, &a), 0);
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, as_of, h, 2, &a), 0);       /* the item */
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, as_of, two, 1, h, 2, &a), 0);
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, as_of, one, 2, h, 2, &a), 0);
    cr_assert_eq(a.n, 4);
    char *second_cluster = a.v[2].evidence_json;
    cr_assert_eq(tw_ar_alerts_dedup(&a, 2), 0);
    cr_assert_eq(a.n, 3, "from 2 on, one of the two cluster alerts is left");
    cr_assert_eq(a.v[0].subject_kind, TW_AR_SUBJECT_CLUSTER);
    cr_assert_eq(a.v[1].subject_kind, TW_AR_SUBJECT_ITEM);
    cr_assert_eq(a.v[2].evidence_json, second_cluster, "the first of the range is kept");
    cr_assert_eq(tw_ar_alerts_dedup(&a, 0), 0);
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.v[0].subject_kind, TW_AR_SUBJECT_CLUSTER);
    cr_assert_eq(a.v[1].subject_kind, TW_AR_SUBJECT_ITEM);
    cr_assert_eq(tw_ar_alerts_dedup(&a, 5), 0, "past the end: nothing");
    cr_assert_eq(a.n, 2);
    tw_ar_alerts_clear(&a);
}

/* A coastal marina receiving its stock from its usual importer, then
 * quiet for a season, is no lead: the established trader and ordinary
 * supply outweigh the quiet. */
Test(alertrules, quiet_cluster_marina_stock_is_not_quiet)
{
    tw_ar_config c = cfg();
    tw_ar_party importer = company(1, "Nautic Import SAS", &PARIS, 200);
    tw_ar_party marina = company(2, "Port de plaisance de Boulogne", &BOULOGNE, 25);
    marina.idents = VAT_DEALER;
    marina.n_idents = 1;
    tw_ar_hop h[2] = {
        ship(10, 0, TW_AR_ITEM_ENGINE, T0, &importer, &marina, &PARIS, &BOULOGNE),
        ship(11, 0, TW_AR_ITEM_BOAT, T0 + DAY, &importer, &marina, &PARIS, &BOULOGNE),
    };
    h[0].quantity = h[1].quantity = 6;
    h[0].payment = h[1].payment = TW_AR_PAY_TRANSFER;
    const int64_t members[] = {2};
    tw_ar_alerts a = {0};
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, T0 + 60 * DAY, members, 1, h, 2, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 0, "a marina's stock from its importer");
    /* Control: the same deliveries to a private person in cash. */
    tw_ar_party p = person(2, "R. S.", &BOULOGNE);
    h[0].to = h[1].to = &p;
    h[0].payment = h[1].payment = TW_AR_PAY_CASH;
    cr_assert_eq(tw_ar_quiet_cluster(&c, HUBS, NHUBS, T0 + 60 * DAY, members, 1, h, 2, &a), 0);
    dump(&a);
    cr_assert_eq(a.n, 1);
    cr_assert_str_eq(a.v[0].subject, "party:2", "a person with no identifier nor name key");
    tw_ar_alerts_clear(&a);
}

/* ---- determinism, replay ------------------------------------------------- */

static void assert_same(const tw_ar_alerts *x, const tw_ar_alerts *y)
{
    cr_assert_eq(x->n, y->n);
    for (size_t i = 0; i < x->n; i++) {
        const tw_ar_alert *a = &x->v[i], *b = &y->v[i];
        cr_assert_str_eq(a->rule, b->rule);
        cr_assert_eq(a->subject_kind, b->subject_kind);
        cr_assert_str_eq(a->subject, b->subject);
        cr_assert_str_eq(a->hub, b->hub);
        cr_assert_eq(a->severity, b->severity);
        cr_assert_eq(a->score, b->score);
        cr_assert_str_eq(a->title, b->title);
        cr_assert_str_eq(a->explanation, b->explanation);
        cr_assert_str_eq(a->evidence_json, b->evidence_json);
        cr_assert_eq(a->known_at, b->known_at);
        cr_assert_eq(a->source_event, b->source_event);
    }
}

/* A network history for a party cluster, in arrival (event id) order; the
 * German purchase (event 5) arrives after the van trips it preceded. */
typedef struct story {
    tw_ar_party shop, b1, b2, farm;
    tw_ar_hop h[8];
} story;

static void make_story(story *s)
{
    s->shop = company(1, "Rhein-Boote GmbH", &KOELN, 40);
    s->b1 = person(11, "Ali K.", &OSNABRUECK);
    s->b1.idents = PHONE_A;
    s->b1.n_idents = 1;
    s->b2 = person(12, "Omar K.", &LILLE);
    s->b2.idents = PHONE_A;
    s->b2.n_idents = 1;
    s->farm = person(13, "Hof W.", &OSNABRUECK);
    s->h[0] = sale(1, 101, TW_AR_ITEM_BOAT, T0, &s->shop, &s->b1, &KOELN);
    s->h[1] = sale(2, 102, TW_AR_ITEM_ENGINE, T0 + DAY, &s->shop, &s->b1, &KOELN);
    s->h[2] = ship(3, 101, TW_AR_ITEM_BOAT, T0 + 10 * DAY, &s->b1, &s->b2, &OSNABRUECK, &LILLE);
    s->h[3] = ship(3, 102, TW_AR_ITEM_ENGINE, T0 + 10 * DAY, &s->b1, &s->b2, &OSNABRUECK, &LILLE);
    s->h[3].line = 1;
    s->h[4] = ship(4, 101, TW_AR_ITEM_BOAT, T0 + 12 * DAY, &s->b2, &s->b2, &LILLE, &WISSANT);
    s->h[5] = sale(5, 103, TW_AR_ITEM_ENGINE, T0 - 4 * DAY, &s->shop, &s->b1, &HAMBURG);
    s->h[6] = seize(6, 101, T0 + 13 * DAY, &WISSANT, 1);
    s->h[7] = sale(7, 104, TW_AR_ITEM_ENGINE, T0 + 20 * DAY, &s->shop, &s->b2, &KOELN);
    for (int i = 0; i < 8; i++)
        s->h[i].payment = s->h[i].kind == TW_AR_HOP_SALE ? TW_AR_PAY_CASH : 0;
}

/* Evaluate each event with the hops known then, given in `order`. */
static void replay(const story *s, const int *order, tw_ar_alerts *out)
{
    tw_ar_config c = cfg();
    for (int64_t ev = 1; ev <= 7; ev++) {
        tw_ar_hop known[8];
        size_t n = 0;
        for (int i = 0; i < 8; i++)
            if (s->h[order[i]].event_id <= ev)
                known[n++] = s->h[order[i]];
        cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, TW_AR_SUBJECT_CLUSTER, "phone:+491701234567",
                                    ev, known, n, out),
                     0);
    }
}

Test(alertrules, replay_equals_live_and_order_does_not_matter)
{
    story s;
    make_story(&s);
    static const int fwd[8] = {0, 1, 2, 3, 4, 5, 6, 7}, rev[8] = {7, 6, 5, 4, 3, 2, 1, 0},
                     mix[8] = {4, 0, 6, 2, 7, 1, 5, 3};
    tw_ar_alerts live = {0}, again = {0}, r = {0}, m = {0};
    replay(&s, fwd, &live);
    replay(&s, fwd, &again);
    replay(&s, rev, &r);
    replay(&s, mix, &m);
    dump(&live);
    assert_same(&live, &again);
    assert_same(&live, &r);
    assert_same(&live, &m);
    /* What the history raised. */
    cr_assert(find(&live, "destination_hub"), "Lille, then Wissant");
    cr_assert(find(&live, "via_transit"), "Osnabrück, then toward the coast");
    cr_assert(find(&live, "approach_coast"));
    /* Event 7: a new purchase by the cluster after the launch. */
    const tw_ar_alert *l = NULL;
    for (size_t i = 0; i < live.n; i++)
        if (!strcmp(live.v[i].rule, "seizure_link") && live.v[i].source_event == 7)
            l = &live.v[i];
    cr_assert(l, "seizure link at event 7");
    cr_assert(has_factor(l, "linked_to_launch"));
    /* Event 5 (a late record of an earlier purchase in Hamburg): the
     * approach is now measured from Hamburg, and the alert is known from
     * the latest time in its evidence, not from the late record's. */
    const tw_ar_alert *ap = NULL;
    for (size_t i = 0; i < live.n; i++)
        if (!strcmp(live.v[i].rule, "approach_coast") && live.v[i].source_event == 5)
            ap = &live.v[i];
    cr_assert(ap, "the late record reshapes the approach");
    cr_assert_eq(ap->known_at, T0 + 12 * DAY);
    json_t *ev = json_loads(ap->evidence_json, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "from_place")), "Hamburg");
    json_decref(ev);
    tw_ar_alerts_clear(&live);
    tw_ar_alerts_clear(&again);
    tw_ar_alerts_clear(&r);
    tw_ar_alerts_clear(&m);
}

Test(alertrules, jobs_are_deterministic_under_permutation)
{
    story s;
    make_story(&s);
    tw_ar_config c = cfg();
    tw_ar_hop rev[8];
    for (int i = 0; i < 8; i++)
        rev[i] = s.h[7 - i];
    s.h[6] = s.h[5]; /* no seizure: rule 6 can speak */
    rev[1] = rev[2];
    tw_ar_alerts a = {0}, b = {0};
    int64_t as_of = T0 + 25 * DAY;
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, as_of, s.h, 8, &a), 0);
    cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, as_of, rev, 8, &b), 0);
    cr_assert_geq(a.n, 1);
    assert_same(&a, &b);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, as_of, s.h, 8, &a), 0);
    cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, as_of, rev, 8, &b), 0);
    cr_assert_geq(a.n, 1);
    assert_same(&a, &b);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);
}

/* Strings that are not UTF-8 still give valid JSON and text. */
Test(alertrules, invalid_utf8_is_cleaned)
{
    tw_ar_config c = cfg();
    tw_ar_party courier = person(1, "\xff\xfe bad", NULL), recv = person(2, "B\xc3", NULL);
    tw_ar_hop h = ship(10, 42, TW_AR_ITEM_ENGINE, T0, &courier, &recv, &OSNABRUECK, &LILLE);
    h.item_label = "engine \xe2\x82";
    h.place_name = "Lil\x01le";
    tw_ar_alerts a = run_rt(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, "42", 10, &h, 1);
    cr_assert_geq(a.n, 1);
    json_t *ev = json_loads(a.v[0].evidence_json, 0, NULL);
    cr_assert(ev);
    json_decref(ev);
    cr_assert(strstr(a.v[0].explanation, "?? bad"), "%s", a.v[0].explanation);
    tw_ar_alerts_clear(&a);
}

/* ---- a synthetic year: networks among ordinary trade ---------------------- */

/* A small simulation in the spirit of the public record (supply-chain.md):
 * coastal dealers restocked by their usual importers and selling single
 * engines and boats to local people; two networks whose private buyers,
 * sharing a phone and an e-mail, buy engines and boats for cash from
 * German shops, store them on a farm near Osnabrück or Lotte, drive them
 * in vans to Lille, Saint-Omer or Arras and then to a beach, where most
 * are seized at a launch. The events are evaluated in order as the daemon
 * would (per item and per consignment, with each party's trading history
 * and seizure link as known before the event) and rule 5 runs daily.
 * Asserted: recall (network items named by a medium-or-higher alert before
 * their seizure or launch) >= 0.9 and precision (such alerts concerning a
 * network) >= 0.8. */

#define SIM_MAX_HOPS 4000
#define SIM_MAX_PARTIES 3000

typedef struct sim {
    tw_ar_party party[SIM_MAX_PARTIES];
    int np;
    int records[SIM_MAX_PARTIES];
    int network_party[SIM_MAX_PARTIES];
    tw_ar_hop hop[SIM_MAX_HOPS];
    int nh;
    int network_item[2000];
    int64_t end_at[2000]; /* seizure or launch time, 0 none */
    int64_t named_at[2000];
    char cons[SIM_MAX_HOPS][16];
    uint32_t rng;
} sim;

static uint32_t rnd(sim *s, uint32_t n)
{
    s->rng = s->rng * 1103515245u + 12345u;
    return (s->rng >> 8) % n;
}

static int sim_party(sim *s, int kind, const char *name, double lat, double lon, int network)
{
    int i = s->np++;
    cr_assert_lt(s->np, SIM_MAX_PARTIES);
    s->party[i] = (tw_ar_party){.party_id = i + 1, .kind = kind, .name = name, .name_key = "",
                                .address_key = "", .has_place = 1, .lat = lat, .lon = lon,
                                .first_seen = TW_AR_NO_TIME};
    s->network_party[i] = network;
    return i;
}

static tw_ar_hop *sim_hop(sim *s, int kind, int64_t at, int item, int item_kind, int from, int to,
                          const place *origin, double lat, double lon, const char *cons)
{
    cr_assert_lt(s->nh, SIM_MAX_HOPS);
    tw_ar_hop *h = &s->hop[s->nh];
    *h = (tw_ar_hop){.kind = kind, .at = at, .item_id = item, .item_kind = item_kind,
                     .item_label = "", .quantity = 1, .has_place = 1, .lat = lat, .lon = lon,
                     .place_name = "", .from = from >= 0 ? &s->party[from] : NULL,
                     .to = to >= 0 ? &s->party[to] : &POLICE, .consignment = "", .vehicle = "",
                     .source = "sim", .source_ref = "", .grading_source = 2, .grading_info = 2};
    if (origin) {
        h->has_origin = 1;
        h->origin_lat = origin->lat;
        h->origin_lon = origin->lon;
        h->origin_name = origin->name;
    }
    if (cons) {
        snprintf(s->cons[s->nh], sizeof s->cons[0], "%s", cons);
        h->consignment = s->cons[s->nh];
    }
    s->nh++;
    return h;
}

static int cmp_sim_hop(const void *x, const void *y)
{
    const tw_ar_hop *a = x, *b = y;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    return (a->item_id > b->item_id) - (a->item_id < b->item_id);
}

static double jitter(sim *s, double km)
{
    return ((double)rnd(s, 2001) - 1000.0) / 1000.0 * km / 111.0;
}

static void simulate(sim *s)
{
    static const place importers[3] = {{"Hamburg", 53.55, 9.99}, {"Paris", 48.86, 2.35},
                                       {"Essen", 51.45, 7.01}};
    static const place dealers[9] = {{"Boulogne", 50.726, 1.615}, {"Calais", 50.95, 1.86},
                                     {"Dunkerque", 51.03, 2.37},   {"Étaples", 50.52, 1.64},
                                     {"Ostend", 51.22, 2.93},      {"Nieuwpoort", 51.13, 2.75},
                                     {"Gravelines", 50.99, 2.13},  {"Lille", 50.63, 3.06},
                                     {"Berck", 50.40, 1.60}};
    static const place shops[4] = {{"Köln", 50.94, 6.96}, {"Düsseldorf", 51.23, 6.77},
                                   {"Dortmund", 51.51, 7.47}, {"Duisburg", 51.43, 6.76}};
    static const place farms[2] = {{"Osnabrück farm", 52.30, 8.02}, {"Lotte farm", 52.28, 7.93}};
    static const place staging[3] = {{"Lille", 50.63, 3.06}, {"Saint-Omer", 50.75, 2.25},
                                     {"Arras", 50.29, 2.78}};
    static const place beaches[4] = {{"Wissant", 50.88, 1.66}, {"Gravelines beach", 51.00, 2.10},
                                     {"Hardelot", 50.63, 1.60}, {"Bray-Dunes", 51.08, 2.52}};
    static const tw_ar_ident net_ids[2][2] = {{{"email", "kurier1@example.org"}, {"phone", "+4915111111111"}},
                                              {{"email", "kurier2@example.org"}, {"phone", "+4915222222222"}}};
    int imp[3], dl[9], shop[4];
    for (int i = 0; i < 3; i++)
        imp[i] = sim_party(s, TW_AR_PARTY_COMPANY, "importer", importers[i].lat, importers[i].lon, 0);
    for (int i = 0; i < 9; i++)
        dl[i] = sim_party(s, TW_AR_PARTY_COMPANY, "dealer", dealers[i].lat, dealers[i].lon, 0);
    for (int i = 0; i < 4; i++)
        shop[i] = sim_party(s, TW_AR_PARTY_COMPANY, "shop", shops[i].lat, shops[i].lon, 0);
    int item = 1;
    char ref[16];
    int nref = 0;
    /* Ordinary trade over 180 days. */
    for (int d = 0; d < 9; d++) {
        int im = d % 3;
        for (int64_t day = rnd(s, 10); day < 180; day += 12 + rnd(s, 6)) {
            snprintf(ref, sizeof ref, "L%d", nref++);
            int units = 4 + (int)rnd(s, 5);
            int64_t at = T0 + day * DAY;
            for (int u = 0; u < units; u++) {
                int it = item++;
                int kind = u % 2 ? TW_AR_ITEM_BOAT : TW_AR_ITEM_ENGINE;
                tw_ar_hop *h = sim_hop(s, TW_AR_HOP_SHIPMENT, at, it, kind, imp[im], dl[d],
                                       &importers[im], dealers[d].lat, dealers[d].lon, ref);
                h->payment = TW_AR_PAY_TRANSFER;
                /* Sold within weeks to someone local (one in six from 60-90 km). */
                if (rnd(s, 4) == 0)
                    continue;
                int64_t sold = at + (int64_t)(3 + rnd(s, 40)) * DAY;
                double far = rnd(s, 6) == 0 ? 60 + rnd(s, 30) : rnd(s, 30);
                int buyer = sim_party(s, TW_AR_PARTY_PERSON, "local", dealers[d].lat + jitter(s, far),
                                      dealers[d].lon + jitter(s, far), 0);
                tw_ar_hop *v = sim_hop(s, TW_AR_HOP_SALE, sold, it, kind, dl[d], buyer, NULL,
                                       dealers[d].lat, dealers[d].lon, NULL);
                v->payment = 1 + rnd(s, 3);
            }
        }
    }
    /* Two networks. */
    for (int n = 0; n < 2; n++) {
        int buyers[4], drivers[2];
        for (int b = 0; b < 4; b++) {
            buyers[b] = sim_party(s, TW_AR_PARTY_PERSON, "network buyer", 51.5 + jitter(s, 20),
                                  7.0 + jitter(s, 20), 1);
            s->party[buyers[b]].idents = &net_ids[n][b % 2];
            s->party[buyers[b]].n_idents = 1 + (b == 0);
        }
        for (int k = 0; k < 2; k++)
            drivers[k] = sim_party(s, TW_AR_PARTY_PERSON, "driver", 51.5, 7.0, 1);
        const place *farm = &farms[n];
        int64_t day = 20 + n * 40;
        for (int wave = 0; wave < 4; wave++, day += 30) {
            /* Buying: 6-10 items over a week, cash, across shops. */
            int first = item, count = 6 + (int)rnd(s, 5);
            for (int k = 0; k < count; k++) {
                int sh = (int)rnd(s, 4), b = buyers[rnd(s, 4)];
                int kind = k % 2 ? TW_AR_ITEM_BOAT : TW_AR_ITEM_ENGINE;
                tw_ar_hop *h = sim_hop(s, TW_AR_HOP_SALE, T0 + (day + rnd(s, 7)) * DAY, item++, kind,
                                       shop[sh], b, NULL, shops[sh].lat, shops[sh].lon, NULL);
                h->payment = TW_AR_PAY_CASH;
            }
            /* To the farm, then in two vans to staging, then to a beach. */
            int64_t at = T0 + (day + 8) * DAY;
            for (int it = first; it < item; it++) {
                s->network_item[it] = 1;
                sim_hop(s, TW_AR_HOP_SHIPMENT, at, it, it % 2 ? TW_AR_ITEM_ENGINE : TW_AR_ITEM_BOAT,
                        buyers[0], drivers[0], NULL, farm->lat, farm->lon, NULL);
            }
            for (int v = 0; v < 2; v++) {
                snprintf(ref, sizeof ref, "V%d", nref++);
                const place *st = &staging[rnd(s, 3)];
                const place *beach = &beaches[rnd(s, 4)];
                int64_t t1 = at + (int64_t)(5 + rnd(s, 10)) * DAY, t2 = t1 + (int64_t)(1 + rnd(s, 4)) * DAY;
                for (int it = first + v; it < item; it += 2) {
                    int kind = it % 2 ? TW_AR_ITEM_ENGINE : TW_AR_ITEM_BOAT;
                    sim_hop(s, TW_AR_HOP_SHIPMENT, t1, it, kind, drivers[v], drivers[1 - v], farm,
                            st->lat, st->lon, ref);
                    sim_hop(s, TW_AR_HOP_SHIPMENT, t2, it, kind, drivers[1 - v], drivers[v], st,
                            beach->lat + jitter(s, 2), beach->lon + jitter(s, 2), NULL);
                    int64_t t3 = t2 + (int64_t)(1 + rnd(s, 3)) * DAY;
                    s->end_at[it] = t3;
                    if (rnd(s, 5) < 3) {
                        tw_ar_hop *z = sim_hop(s, TW_AR_HOP_SEIZURE, t3, it, kind, drivers[v], -1,
                                               NULL, beach->lat, beach->lon, NULL);
                        z->launch = 1;
                    }
                }
            }
        }
    }
    qsort(s->hop, (size_t)s->nh, sizeof s->hop[0], cmp_sim_hop);
}

/* Concerns a network: its subject or any item of its evidence. */
static int alert_is_network(const sim *s, const tw_ar_alert *a)
{
    json_t *ev = json_loads(a->evidence_json, 0, NULL);
    int net = 0;
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(ev, "hops"), i, h) {
        json_int_t it = json_integer_value(json_object_get(h, "item_id"));
        if (it > 0 && it < 2000 && s->network_item[it])
            net = 1;
    }
    json_decref(ev);
    return net;
}

static void note_named(sim *s, const tw_ar_alert *a, int64_t when)
{
    if (a->severity < 2)
        return;
    json_t *ev = json_loads(a->evidence_json, 0, NULL);
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(ev, "hops"), i, h) {
        json_int_t it = json_integer_value(json_object_get(h, "item_id"));
        if (it > 0 && it < 2000 && s->named_at[it] == 0)
            s->named_at[it] = when;
    }
    json_decref(ev);
}

Test(alertrules, synthetic_year_recall_and_precision, .timeout = 60)
{
    static sim s;
    memset(&s, 0, sizeof s);
    s.rng = 20260302;
    simulate(&s);
    tw_ar_config c = cfg();
    static tw_ar_hop known[SIM_MAX_HOPS], sub[SIM_MAX_HOPS];
    static int seized_party[SIM_MAX_PARTIES];
    /* Distinct medium+ alert keys and whether each concerns a network. */
    size_t keys = 0, net_keys = 0;
    static char seen[4096][96];
    size_t nseen = 0;
    int64_t last_job_day = -1;
    size_t nk = 0;
    for (int e = 0; e < s.nh; e++) {
        tw_ar_hop h = s.hop[e];
        h.event_id = e + 1;
        /* Daily jobs before the day's events. */
        int64_t day = (h.at - T0) / DAY;
        while (last_job_day < day) {
            last_job_day++;
            tw_ar_alerts a = {0};
            int64_t as_of = T0 + last_job_day * DAY;
            cr_assert_eq(tw_ar_bulk(&c, HUBS, NHUBS, as_of, known, nk, &a), 0);
            cr_assert_eq(tw_ar_quiet(&c, HUBS, NHUBS, as_of, known, nk, &a), 0);
            for (size_t i = 0; i < a.n; i++) {
                note_named(&s, &a.v[i], as_of);
                char key[96];
                snprintf(key, sizeof key, "%s|%s|%s", a.v[i].rule, a.v[i].subject, a.v[i].hub);
                size_t j = 0;
                while (j < nseen && strcmp(seen[j], key))
                    j++;
                if (j == nseen && a.v[i].severity >= 2 && nseen < 4096) {
                    snprintf(seen[nseen++], sizeof seen[0], "%s", key);
                    keys++;
                    net_keys += alert_is_network(&s, &a.v[i]);
                    if (!alert_is_network(&s, &a.v[i]) && getenv("SIM_FP"))
                        printf("FP %s\n", a.v[i].explanation);
                }
            }
            tw_ar_alerts_clear(&a);
        }
        /* The parties as known before this event. */
        for (int p = 0; p < s.np; p++) {
            s.party[p].trade_records = s.records[p];
            s.party[p].seizure_linked = seized_party[p];
        }
        known[nk++] = h;
        tw_ar_alerts a = {0};
        size_t n = 0;
        char subject[32];
        for (size_t i = 0; i < nk; i++)
            if (known[i].item_id == h.item_id)
                sub[n++] = known[i];
        snprintf(subject, sizeof subject, "%" PRId64, h.item_id);
        cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, TW_AR_SUBJECT_ITEM, subject, h.event_id, sub, n,
                                    &a),
                     0);
        if (h.consignment[0]) {
            n = 0;
            for (size_t i = 0; i < nk; i++)
                if (!strcmp(known[i].consignment, h.consignment))
                    sub[n++] = known[i];
            /* lines of one consignment share an event in the daemon; here
             * each line is its own event, which only makes the rule see
             * fewer units at once */
            cr_assert_eq(tw_ar_realtime(&c, HUBS, NHUBS, TW_AR_SUBJECT_CONSIGNMENT, h.consignment,
                                        h.event_id, sub, n, &a),
                         0);
        }
        for (size_t i = 0; i < a.n; i++) {
            note_named(&s, &a.v[i], h.at);
            char key[96];
            snprintf(key, sizeof key, "%s|%s|%s", a.v[i].rule, a.v[i].subject, a.v[i].hub);
            size_t j = 0;
            while (j < nseen && strcmp(seen[j], key))
                j++;
            if (j == nseen && a.v[i].severity >= 2 && nseen < 4096) {
                snprintf(seen[nseen++], sizeof seen[0], "%s", key);
                keys++;
                net_keys += alert_is_network(&s, &a.v[i]);
                if (!alert_is_network(&s, &a.v[i]) && getenv("SIM_FP"))
                    printf("FP %s\n", a.v[i].explanation);
            }
        }
        tw_ar_alerts_clear(&a);
        /* What this record teaches about its parties. */
        const tw_ar_party *from = h.from, *to = h.to;
        if (h.kind != TW_AR_HOP_SEIZURE) {
            if (from)
                s.records[from->party_id - 1]++;
            if (to && to->kind == TW_AR_PARTY_COMPANY)
                s.records[to->party_id - 1]++;
        } else {
            for (size_t i = 0; i < nk; i++)
                if (known[i].item_id == h.item_id && known[i].kind != TW_AR_HOP_SEIZURE) {
                    if (known[i].to)
                        seized_party[known[i].to->party_id - 1] = 1;
                    if (known[i].from)
                        seized_party[known[i].from->party_id - 1] = 1;
                }
        }
    }
    int net_items = 0, named = 0;
    for (int it = 1; it < 2000; it++)
        if (s.network_item[it]) {
            net_items++;
            if (s.named_at[it] && s.named_at[it] < s.end_at[it])
                named++;
        }
    double recall = (double)named / net_items, precision = keys ? (double)net_keys / keys : 0;
    cr_log_info("synthetic year: %d hops, %d network items, %d named before their end "
                "(recall %.3f); %zu medium+ alerts, %zu about networks (precision %.3f)",
                s.nh, net_items, named, recall, keys, net_keys, precision);
    printf("synthetic year: recall %.3f (%d/%d), precision %.3f (%zu/%zu)\n", recall, named,
           net_items, precision, net_keys, keys);
    cr_assert_geq(recall, 0.9);
    cr_assert_geq(precision, 0.8);
}
