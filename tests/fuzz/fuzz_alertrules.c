/* Fuzz target for tw_alertrules (issue 8's alert rules).
 *
 * Input layout: byte 0 chooses what to do.
 *   bit 7 set: the rest is alert_config.settings JSON for
 *              tw_ar_config_parse (checked: a success has rising scores and
 *              the version asked for; a failure has a reason and leaves the
 *              output alone).
 *   else:      bits 0-1 the subject kind (% 3), bits 2-4 the event under
 *              evaluation (1-8); the rest is hops, 8 bytes each:
 *     0  kind (% 4, 0 invalid) | 0x40 has origin | 0x80 launch
 *     1  event id (% 8 + 1) | line (bits 3-4)
 *     2  item id (% 4, 0 none) | item kind (bits 2-3)
 *     3  time (% 8 from a pool: unknown, Channel 2026 dates, extremes) |
 *        payment (bits 3-5 % 5) | quantity (bits 6-7: 1, 2, 5, 10^9)
 *     4  place (% 8 from a pool: none, real towns near hubs, NaN, poles) |
 *        origin (bits 4-6)
 *     5  from party (% 8 from a pool: none, private persons sharing a
 *        phone, new and established companies, an agency, a seizure-linked
 *        person) | to party (bits 3-5)
 *     6  grading source (% 4) | information (bits 2-4 % 6)
 *     7  strings (% 4: labels, one not UTF-8) | consignment (bits 2-3)
 *   Real-time rules run on the hops with event id <= the evaluated one,
 *   the jobs on all of them. Checked: every alert is well formed (rule
 *   name, severity 1-4, score >= min_score, evidence a JSON object naming
 *   the rule, known_at one of the hops' times); real-time and
 *   rule 6 alerts are at most one per rule, subject and hub; the reversed
 *   input gives byte-identical alerts. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_alertrules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define MAX_HOPS 64
#define T0 INT64_C(1772409600)
#define DAY INT64_C(86400)

static const tw_ar_hub HUBS[] = {
    {"Calais", TW_AR_HUB_COAST, 50.95194, 1.85635, 10},
    {"Wissant", TW_AR_HUB_COAST, 50.88530, 1.66263, 10},
    {"Dunkerque", TW_AR_HUB_COAST, 51.03440, 2.37681, 10},
    {"Lille", TW_AR_HUB_INLAND, 50.63391, 3.05512, 15},
    {"Saint-Omer", TW_AR_HUB_INLAND, 50.74834, 2.26091, 15},
    {"Osnabrück", TW_AR_HUB_TRANSIT, 52.27264, 8.04980, 25},
    {"Essen", TW_AR_HUB_TRANSIT, 51.45657, 7.01228, 25},
    {"Dover", TW_AR_HUB_UK_LANDING, 51.12598, 1.31257, 10},
};
#define NHUBS (sizeof HUBS / sizeof HUBS[0])

static const int64_t TIMES[8] = {TW_AR_NO_TIME, T0, T0 + DAY, T0 + 5 * DAY, T0 + 40 * DAY,
                                 T0 + 400 * DAY, INT64_MAX, INT64_MIN + 1};
static const int QTY[4] = {1, 2, 5, 1000000000};

typedef struct pl {
    int has;
    double lat, lon;
    const char *name;
} pl;
static const pl PLACES[8] = {
    {0, 0, 0, NULL},
    {1, 50.62925, 3.05726, "Lille"},
    {1, 50.8853, 1.6626, "Wissant"},
    {1, 52.27264, 8.04980, "Osnabrück"},
    {1, 50.93753, 6.96028, "Köln"},
    {1, 53.55073, 9.99302, "Hamburg"},
    {1, NAN, 1.0, "nowhere"},
    {1, 90.0, 180.0, "\xff pole"},
};

static const tw_ar_ident PHONE[] = {{"phone", "+491701234567"}};
static const tw_ar_ident BOTH[] = {{"email", "x@example.org"}, {"phone", "+491701234567"}};
static const tw_ar_ident ODD[] = {{"other", "x"}, {NULL, NULL}, {"phone", ""}};
static const tw_ar_ident VAT[] = {{"vat", "DE811907980"}};

static const tw_ar_party PARTIES[7] = {
    {1, TW_AR_PARTY_PERSON, "Ali K.", "ali k", "", PHONE, 1, 1, 52.27, 8.05, 0, TW_AR_NO_TIME, 0},
    {2, TW_AR_PARTY_PERSON, "Omar K.", "", "lille 1", BOTH, 2, 1, 50.63, 3.06, 0, TW_AR_NO_TIME, 0},
    {3, TW_AR_PARTY_COMPANY, "Nord Loisirs", "nord loisirs", "boulogne", NULL, 0, 0, 0, 0, 0,
     TW_AR_NO_TIME, 0},
    {4, TW_AR_PARTY_COMPANY, "Rhein-Boote GmbH", "", "", VAT, 1, 1, 50.94, 6.96, 40, T0 - 400 * DAY,
     1},
    {5, TW_AR_PARTY_AGENCY, "PAF", "", "", NULL, 0, 0, 0, 0, 0, TW_AR_NO_TIME, 0},
    {6, TW_AR_PARTY_PERSON, "\xc3\x28", "", "", ODD, 3, 1, NAN, NAN, 0, TW_AR_NO_TIME, 1},
    {0, TW_AR_PARTY_UNKNOWN, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, TW_AR_NO_TIME, 0},
};

static const char *const LABELS[4] = {"", "engine Yamaha 6E5X1016523", "boat \xe2\x82",
                                      "Schlauchboot 4,5 m"};
static const char *const CONS[4] = {"", "LEF-2026-0412", "LEF-2026-0412", "x\x01y"};

static const tw_ar_party *party(unsigned i)
{
    i %= 8;
    return i == 7 ? NULL : &PARTIES[i];
}

static tw_ar_hop decode(const uint8_t *b)
{
    tw_ar_hop h = {0};
    h.kind = b[0] % 4;
    h.launch = (b[0] & 0x80) != 0;
    h.event_id = b[1] % 8 + 1;
    h.line = (b[1] >> 3) & 3;
    h.item_id = b[2] % 4;
    h.item_kind = (b[2] >> 2) & 3;
    h.at = TIMES[b[3] % 8];
    h.payment = ((b[3] >> 3) & 7) % 5;
    h.quantity = QTY[b[3] >> 6];
    const pl *p = &PLACES[b[4] % 8], *o = &PLACES[(b[4] >> 4) & 7];
    h.has_place = p->has;
    h.lat = p->lat;
    h.lon = p->lon;
    h.place_name = p->name;
    if ((b[0] & 0x40) && o->has) {
        h.has_origin = 1;
        h.origin_lat = o->lat;
        h.origin_lon = o->lon;
        h.origin_name = o->name;
    }
    h.from = party(b[5]);
    h.to = party(b[5] >> 3);
    h.grading_source = b[6] % 4;
    h.grading_info = ((b[6] >> 2) & 7) % 6;
    h.item_label = LABELS[b[7] % 4];
    h.consignment = CONS[(b[7] >> 2) & 3];
    h.vehicle = (b[7] & 0x10) ? "GH-412-KT" : NULL;
    h.source = "fuzz";
    h.source_ref = (b[7] & 0x20) ? "r1" : "";
    return h;
}

static int known_time(int64_t t, const tw_ar_hop *h, size_t n)
{
    if (t == TW_AR_NO_TIME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (h[i].at == t)
            return 1;
    return 0;
}

static void check_alerts(const tw_ar_config *c, const tw_ar_alerts *a, const tw_ar_hop *h,
                         size_t n, int64_t source_event, int unique)
{
    static const char *const rules[] = {"destination_hub", "approach_coast", "via_transit",
                                        "seizure_link", "bulk_acquisition", "quiet_near_coast"};
    for (size_t i = 0; i < a->n; i++) {
        const tw_ar_alert *x = &a->v[i];
        int ok = 0;
        for (size_t r = 0; r < 6; r++)
            ok |= !strcmp(x->rule, rules[r]);
        CHECK(ok);
        CHECK(x->severity >= 1 && x->severity <= 4);
        CHECK(x->score >= c->min_score);
        CHECK(x->subject && x->hub && x->title && x->explanation && x->evidence_json);
        CHECK(strstr(x->explanation, "Counted: "));
        CHECK(x->source_event == source_event);
        CHECK(known_time(x->known_at, h, n));
        json_error_t je;
        json_t *ev = json_loads(x->evidence_json, 0, &je);
        CHECK(ev && json_is_object(ev));
        CHECK(!strcmp(json_string_value(json_object_get(ev, "rule")), x->rule));
        CHECK(json_is_array(json_object_get(ev, "hops")));
        CHECK(json_array_size(json_object_get(ev, "hops")) >= 1);
        CHECK(json_integer_value(json_object_get(ev, "score")) == (json_int_t)x->score);
        json_decref(ev);
        for (size_t j = 0; unique && j < i; j++)
            CHECK(strcmp(a->v[j].rule, x->rule) || strcmp(a->v[j].hub, x->hub) ||
                  strcmp(a->v[j].subject, x->subject));
    }
}

static void check_same(const tw_ar_alerts *a, const tw_ar_alerts *b)
{
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        const tw_ar_alert *x = &a->v[i], *y = &b->v[i];
        CHECK(!strcmp(x->rule, y->rule) && !strcmp(x->subject, y->subject));
        CHECK(!strcmp(x->hub, y->hub) && x->severity == y->severity && x->score == y->score);
        CHECK(!strcmp(x->title, y->title) && !strcmp(x->explanation, y->explanation));
        CHECK(!strcmp(x->evidence_json, y->evidence_json));
        CHECK(x->known_at == y->known_at && x->source_event == y->source_event);
    }
}

static void config_input(const uint8_t *data, size_t size)
{
    tw_ar_config c, before;
    tw_ar_config_defaults(&c);
    c.version = -7;
    before = c;
    char err[200];
    if (tw_ar_config_parse((const char *)data, size, 5, &c, err, sizeof err) == 0) {
        CHECK(c.version == 5);
        CHECK(c.min_score <= c.medium_score && c.medium_score <= c.high_score &&
              c.high_score <= c.critical_score);
        CHECK(c.bulk_min_items >= 1 && c.quiet_lookback_days >= c.quiet_days);
    } else {
        CHECK(err[0] != '\0');
        CHECK(c.version == before.version && c.approach_min_km == before.approach_min_km &&
              c.quiet_days == before.quiet_days && c.min_score == before.min_score &&
              c.critical_score == before.critical_score && c.long_haul_km == before.long_haul_km);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 0x80) {
        config_input(data + 1, size - 1);
        return 0;
    }
    static tw_ar_hop all[MAX_HOPS], known[MAX_HOPS], rev[MAX_HOPS];
    tw_ar_subject_kind kind = (tw_ar_subject_kind)((data[0] & 3) % 3);
    int64_t ev = ((data[0] >> 2) & 7) + 1;
    size_t n = 0, nk = 0;
    for (size_t p = 1; p + 8 <= size && n < MAX_HOPS; p += 8) {
        all[n] = decode(data + p);
        if (all[n].event_id <= ev)
            known[nk++] = all[n];
        n++;
    }
    tw_ar_config c;
    tw_ar_config_defaults(&c);
    tw_ar_alerts a = {0}, b = {0};

    for (size_t i = 0; i < nk; i++)
        rev[i] = known[nk - 1 - i];
    CHECK(tw_ar_realtime(&c, HUBS, NHUBS, kind, "subject", ev, known, nk, &a) == 0);
    CHECK(tw_ar_realtime(&c, HUBS, NHUBS, kind, "subject", ev, rev, nk, &b) == 0);
    check_alerts(&c, &a, known, nk, ev, 1);
    check_same(&a, &b);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);

    for (size_t i = 0; i < n; i++)
        rev[i] = all[n - 1 - i];
    int64_t as_of = T0 + 10 * DAY;
    CHECK(tw_ar_bulk(&c, HUBS, NHUBS, as_of, all, n, &a) == 0);
    CHECK(tw_ar_bulk(&c, HUBS, NHUBS, as_of, rev, n, &b) == 0);
    check_alerts(&c, &a, all, n, 0, 0);
    check_same(&a, &b);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);

    as_of = T0 + 20 * DAY;
    CHECK(tw_ar_quiet(&c, HUBS, NHUBS, as_of, all, n, &a) == 0);
    CHECK(tw_ar_quiet(&c, HUBS, NHUBS, as_of, rev, n, &b) == 0);
    check_alerts(&c, &a, all, n, 0, 1);
    check_same(&a, &b);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);

    /* Rule 6 for a cluster: members chosen by the first byte's bits. */
    int64_t members[7];
    size_t nm = 0;
    for (size_t i = 0; i < 7; i++)
        if ((data[0] >> (i % 5)) & 1)
            members[nm++] = PARTIES[i].party_id;
    CHECK(tw_ar_quiet_cluster(&c, HUBS, NHUBS, as_of, members, nm, all, n, &a) == 0);
    CHECK(tw_ar_quiet_cluster(&c, HUBS, NHUBS, as_of, members, nm, rev, n, &b) == 0);
    CHECK(a.n <= 1);
    check_alerts(&c, &a, all, n, 0, 1);
    check_same(&a, &b);
    for (size_t i = 0; i < a.n; i++)
        CHECK(a.v[i].subject_kind == TW_AR_SUBJECT_CLUSTER);
    tw_ar_alerts_clear(&a);
    tw_ar_alerts_clear(&b);
    return 0;
}
