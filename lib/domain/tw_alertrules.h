/* tw_alertrules: the alert rules of issue 8, as pure functions (prefix
 * tw_ar_). The daemon (services/alerts) reads the derived model and the hub
 * table, hands them here as values, and writes what comes back through
 * alert_raise() (migrations/0010_alerts.sql), which deduplicates.
 *
 * Pure: no I/O, no clock, no globals; the same input gives the same output
 * byte for byte (replay equals live). Times are Unix seconds UTC, event
 * time (when things happened), never the wall clock: jobs take `as_of`.
 *
 * Rules (names are the alerts.rule values):
 *  real-time, evaluated for one event against one subject's history:
 *   1 "destination_hub"  a sale or shipment whose destination (shipment
 *                        destination; for a sale the buyer's place, else the
 *                        sale place) is within the radius of a coast or
 *                        inland hub;
 *   2 "approach_coast"   the subject's successive known places get nearer
 *                        the nearest coast hub by >= approach_min_km,
 *                        ending within approach_end_km of it;
 *   3 "via_transit"      the subject passed within a transit hub's radius
 *                        and later moved toward the coast (nearer the
 *                        nearest coast hub by >= via_transit_min_km);
 *   4 "seizure_link"     a new record for a subject already linked to a
 *                        seizure or a launch (an earlier seizure hop in its
 *                        history, or a party flagged seizure_linked);
 *  scheduled jobs (tw_ar_bulk, tw_ar_quiet):
 *   5 "bulk_acquisition" one buyer cluster acquires >= bulk_min_items
 *                        engines or boats within bulk_window_days;
 *   6 "quiet_near_coast" an item's or a party cluster's last known place
 *                        is within quiet_within_km of a coast hub and
 *                        nothing was recorded for quiet_days.
 *
 * Severity is a score: each factor that counts adds (or takes away) points,
 * and the explanation names every factor that counted with its points.
 * Legitimate trade stays quiet: an established trader (a company with at
 * least trader_min_records earlier trade records) as the receiving party
 * takes points away; stock moving between companies, not in cash, is
 * trade even on a first delivery (its quantities and distance do not
 * count); a retail sale (a company selling a private buyer one engine,
 * one boat, or one boat with its engine) scores below the raising
 * threshold wherever the buyer lives, and so does the outfit resting at
 * the buyer's home near the coast.
 * Alerts scoring below min_score are not returned at all.
 *
 * How the rules read a history (tw_ar_realtime):
 *  - the subject's known places, in rule order, are: for a shipment its
 *    origin then its destination; for a sale its place then the buyer's
 *    place (one point when they coincide). Seizures are no movement.
 *  - every real-time rule needs a new (event_id == event_id) sale or
 *    shipment; rule 1 looks only at the new hops (one alert per hub, the
 *    event's hops to that hub together); rules 2 and 3 look at the whole
 *    history ending at its latest place (which must be a sale or shipment
 *    to a non-agency, and not followed by a seizure), and speak only when
 *    a new hop is among the hops of their evidence; rule 4 needs a seizure
 *    of an earlier event within seizure_lookback_days (either way in time:
 *    a late record of what happened before the seizure is a lead) of a new
 *    hop, or a new hop naming a seizure-linked party that is not an
 *    established trader. A new seizure record alone raises nothing.
 *  - rule 2: H = the coast hub nearest the latest place; it fires when the
 *    latest place is within approach_end_km of H and the farthest earlier
 *    place (from H) is at least approach_min_km farther (so one shipment
 *    with an origin suffices). Hub: H.
 *  - rule 3: the latest earlier place within a transit hub's radius from
 *    which the subject got >= via_transit_min_km nearer the nearest coast
 *    hub, within via_transit_max_days (unknown times: not ruled out). Hub:
 *    the transit hub; the coast hub is in the evidence as "toward".
 *  - "passed a transit hub" (rule 3 and the passed_transit_hub factor)
 *    means an earlier place within a transit hub's radius where the
 *    equipment was held (shipper at an origin, seller at a sale place,
 *    consignee or buyer at a destination) by someone who is not an
 *    established trader: an importer's premises in the Ruhr are trade,
 *    a farm near Osnabrück is storage.
 *  - boundaries are inclusive: a place exactly at a radius is inside, a
 *    threshold exactly met fires.
 *
 * Scoring (points; the factor's name is in the evidence, and in words in
 * the explanation). Rule bases: destination_at_coast_hub / _inland_hub +1,
 * approach_coast +1, via_transit +2, linked_to_seizure +4,
 * linked_to_launch +5, party_seizure_linked +4 (as a base: rule 4 on a
 * party link), quiet_near_coast +1, bulk_acquisition +2. Then, for the
 * hop whose parties count (the latest hop of the evidence; rule 1: the
 * event's latest hop to the hub) and the event's hops:
 *   private_receiver +2; new_company (a company receiver without earlier
 *   trade records) +2, little_trading_history (fewer than
 *   trader_min_records) +1, established_trader -5; private_sender +1;
 *   supply_from_established_trader -3 (an established company supplying a
 *   company, not in cash, no seizure link: ordinary stock supply; then
 *   quantities, boats with engines, long haul and transit do not count),
 *   else trade_between_companies -2 (a company supplying a company, not
 *   in cash, no seizure link: quantities and boats with engines do not
 *   count, long haul only after a transit hub);
 *   local_single_sale -3 / retail_sale -2 (a retail sale: a company
 *   selling a private or unidentified buyer at most one engine and one
 *   boat in the event, no seizure link, not for rule 4; local within
 *   local_km of the sale or over the counter, else retail_sale; then
 *   units, boats with engines and long haul do not count); several_units
 *   (2-4 engines or boats in the event) +1, five_or_more_units +3;
 *   boats_with_engines +2; cash +1; long_haul (the place before the
 *   destination more than long_haul_km away) +2;
 *   passed_transit_hub (an earlier place within a transit hub's radius)
 *   +2; party_seizure_linked (sender or receiver, not an established
 *   trader, not an agency) +4; poorly_graded_source (source 3 or
 *   information E) -2.
 * Rule 5 (per buyer cluster, items counted once, quantities counted):
 *   large_quantity (>= 2 x bulk_min_items) +2, boats_with_engines +2,
 *   mostly_cash (half the units or more) +2 or some_cash +1,
 *   private_buyer +2, new_company +2 or little_trading_history +1,
 *   shared_identifiers (two buyers or more under different names; one
 *   party named by several records is one buyer) +2, several_sellers +1
 *   (two) or +2 (three or more; sellers told apart by their party key),
 *   buyer_near_coast (a buyer's place within a coast or inland hub's
 *   radius; not when every hop is between companies: a marina or dealer
 *   on the coast receiving stock) +1, established_trader (every buyer) -5,
 *   supply_from_established_trader (every hop) -4, else
 *   trade_between_companies (every hop a company supplying a company, not
 *   in cash) -2 (with either, large_quantity and boats_with_engines do not
 *   count), party_seizure_linked +4,
 *   poorly_graded_source (every hop) -2.
 * Rule 6 uses the subject's latest hop as rule 1 does, with the place
 * before it and any transit hub among its earlier places; for a cluster
 * also shared_identifiers +2 (two parties or more under different names).
 *
 * Evidence (JSON, keys sorted, compact, numbers rounded: km to 0.1,
 * degrees to 1e-5): {"rule", "subject_kind", "subject", "hub": {"name",
 * "kind", "lat", "lon", "radius_km", "km"} or null, "hops": [{"event_id",
 * "line", "kind", "item_id", "item_kind", "item_label", "quantity",
 * "payment", "at" (RFC 3339 UTC or null), ["launch"], ["origin",
 * "origin_lat", "origin_lon"], "place", "lat", "lon", ["buyer_lat",
 * "buyer_lon"], "km_to_hub", "from", "to" ({"party_id", "kind", "name"} or
 * null), "consignment", "vehicle", "source", "source_ref", "grading"
 * ("1A": source digit then information letter, as chains show it; ""
 * unknown)}], ["hops_omitted"], "factors": [{"name", "points", "detail"}],
 * "score", "severity", "config_version"} plus per rule: approach_coast
 * "from_place", "from_km", "progress_km"; via_transit "toward" (a hub
 * object), "progress_km"; seizure_link "link" {"kind" seizure|launch|
 * party, "event_id", "party"}; bulk_acquisition "members", "links",
 * "window_days", "as_of", "units", "engines", "boats", "sellers";
 * quiet_near_coast "as_of", "quiet_days" (these two are the only keys a
 * job run at a later as_of changes when nothing else did: alert_raise()
 * compares evidence without them, migration 0012). At most 64 hops are listed (the
 * first and the latest 63; "hops_omitted" counts the rest). known_at is
 * the latest time among the listed hops; when none of them has a time no
 * alert is returned (rules run on event time, and there is none).
 * Strings that are not UTF-8 are cleaned ('?') in the evidence and text. */
#ifndef TW_ALERTRULES_H
#define TW_ALERTRULES_H

#include <stddef.h>
#include <stdint.h>

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

/* at / first_seen when unknown. */
#define TW_AR_NO_TIME INT64_MIN

typedef enum {
    TW_AR_HUB_COAST = 1,
    TW_AR_HUB_INLAND = 2,
    TW_AR_HUB_TRANSIT = 3,
    TW_AR_HUB_UK_LANDING = 4,
} tw_ar_hub_kind;

/* One enabled hub (disabled hubs are not passed). Borrowed. */
typedef struct tw_ar_hub {
    const char *name;
    tw_ar_hub_kind kind;
    double lat, lon;
    double radius_km;
} tw_ar_hub;

typedef enum {
    TW_AR_SUBJECT_ITEM = 0,
    TW_AR_SUBJECT_CLUSTER = 1,
    TW_AR_SUBJECT_CONSIGNMENT = 2,
} tw_ar_subject_kind;

/* Party.Kind of records.proto. */
enum { TW_AR_PARTY_UNKNOWN = 0, TW_AR_PARTY_PERSON = 1, TW_AR_PARTY_COMPANY = 2, TW_AR_PARTY_AGENCY = 3 };
/* HopKind of provenance.proto. */
enum { TW_AR_HOP_SALE = 1, TW_AR_HOP_SHIPMENT = 2, TW_AR_HOP_SEIZURE = 3 };
/* Equipment.Kind. */
enum { TW_AR_ITEM_ENGINE = 1, TW_AR_ITEM_BOAT = 2, TW_AR_ITEM_OTHER = 3 };
/* PaymentMethod. */
enum { TW_AR_PAY_CASH = 1, TW_AR_PAY_CARD = 2, TW_AR_PAY_TRANSFER = 3, TW_AR_PAY_OTHER = 4 };

/* One normalised identifier of a party: kind as prov_party_identifiers
 * names it ("vat", "company_number", "phone", "email", "identity_document",
 * "other") and the value as ingest normalised it. Borrowed. */
typedef struct tw_ar_ident {
    const char *kind;
    const char *value;
} tw_ar_ident;

/* A party as one record names it (prov_parties), with what the daemon
 * found about it in the records applied before the event under
 * evaluation. Borrowed. */
typedef struct tw_ar_party {
    int64_t party_id;
    int kind;                 /* TW_AR_PARTY_* */
    const char *name;         /* "" none */
    const char *name_key;     /* prov_parties.name_key, "" none */
    const char *address_key;  /* prov_parties.address_key, "" none */
    const tw_ar_ident *idents;
    size_t n_idents;
    int has_place;
    double lat, lon;
    /* Earlier records in which a party with one of its identifiers (or its
     * name at its address) sold or shipped equipment, or received it as a
     * company: its trading history. */
    int trade_records;
    /* Event time of the earliest of those records, TW_AR_NO_TIME none. */
    int64_t first_seen;
    /* A party with one of its identifiers is on an earlier record whose
     * equipment was seized or launched. */
    int seizure_linked;
} tw_ar_party;

/* One active hop (prov_hops row, status active) with its parties. The
 * daemon passes an item's hops with item_id set to the item's root. */
typedef struct tw_ar_hop {
    int64_t event_id;
    int line;
    int kind;                 /* TW_AR_HOP_* */
    int64_t item_id;          /* 0: the line names no item */
    int item_kind;            /* TW_AR_ITEM_*, 0 unknown */
    const char *item_label;   /* how people name it: "engine Yamaha 6E5X1016523", "" none */
    int64_t at;               /* occurred_at, TW_AR_NO_TIME unknown */
    int quantity;             /* >= 1 */
    int payment;              /* TW_AR_PAY_*, 0 unknown */
    int launch;               /* seizure at a launch */
    int has_origin;           /* shipments: origin */
    double origin_lat, origin_lon;
    const char *origin_name;
    int has_place;            /* sale place, destination, seizure place */
    double lat, lon;
    const char *place_name;
    const tw_ar_party *from;  /* seller, shipper; NULL none */
    const tw_ar_party *to;    /* buyer, consignee, agency; NULL none */
    const char *consignment;  /* "" none */
    const char *vehicle;      /* "" none */
    const char *source;
    const char *source_ref;
    int grading_source;       /* Grading.SourceEvaluation, 0 unspecified */
    int grading_info;         /* Grading.InformationAssessment, 0 unspecified */
} tw_ar_hop;

/* Thresholds (alert_config.settings, versioned). Distances in km, times in
 * days, scores in points. */
typedef struct tw_ar_config {
    int version;               /* alert_config.version; stamped on alerts */
    double approach_min_km;    /* rule 2: progress toward the coast */
    double approach_end_km;    /* rule 2: ending this near a coast hub */
    double via_transit_min_km; /* rule 3: progress after the transit point */
    int via_transit_max_days;  /* rule 3: transit to coastward move */
    int seizure_lookback_days; /* rule 4 */
    int bulk_min_items;        /* rule 5 */
    int bulk_window_days;      /* rule 5 */
    double quiet_within_km;    /* rule 6 */
    int quiet_days;            /* rule 6 */
    int quiet_lookback_days;   /* rule 6: last place older than this: ignored */
    int trader_min_records;    /* an established trader */
    double local_km;           /* a local sale */
    double min_score;          /* below: no alert */
    double medium_score;       /* severity thresholds (low is min_score) */
    double high_score;
    double critical_score;
    /* Appended after the first contract (zero keeps its behaviour): a hop
     * whose destination lies more than this from the place before it
     * counts "long_haul"; 0: no such factor. */
    double long_haul_km;
} tw_ar_config;

/* The built-in defaults (what version 1, '{}', means). */
void tw_ar_config_defaults(tw_ar_config *out);

/* Parse alert_config.settings (a JSON object; keys left out keep the
 * defaults; unknown keys, wrong types and out-of-range values are
 * errors). Returns 0 and fills *out (version set to `version`), or -1 with
 * the key and the reason in err (out untouched). */
int tw_ar_config_parse(const char *json, size_t len, int version, tw_ar_config *out, char *err,
                       size_t errlen) TW_WUR;

/* One alert to raise (or to update, alert_raise() decides). Every string
 * is owned by the tw_ar_alerts that holds it. */
typedef struct tw_ar_alert {
    const char *rule;
    tw_ar_subject_kind subject_kind;
    char *subject;       /* item id in decimal, cluster key, consignment ref */
    char *hub;           /* the hub's name, "" none */
    int severity;        /* 1 low .. 4 critical */
    double score;
    char *title;         /* one line */
    char *explanation;   /* plain language: what happened, what counted */
    char *evidence_json; /* a JSON object: hops, places, distances, sources, grading, factors */
    int64_t known_at;    /* latest event time in the evidence */
    int64_t source_event;/* real-time: the event evaluated; jobs: 0 */
} tw_ar_alert;

typedef struct tw_ar_alerts {
    tw_ar_alert *v;
    size_t n, cap;
} tw_ar_alerts;

/* Release every alert and its strings; the list is empty and reusable. */
void tw_ar_alerts_clear(tw_ar_alerts *a);

/* Keep the first of the alerts v[from..n) that share a rule, subject kind,
 * subject and hub, release the others, and close the gaps (order kept).
 * O(m log m) in m = n - from. Returns 0, or -1 on allocation failure (the
 * list unchanged). */
int tw_ar_alerts_dedup(tw_ar_alerts *a, size_t from) TW_WUR;

/* "item", "cluster", "consignment". */
const char *tw_ar_subject_kind_name(tw_ar_subject_kind k);
/* "low" .. "critical", "" out of range. */
const char *tw_ar_severity_name(int severity);

/* Real-time rules 1-4 for one event and one subject.
 *   hist[0..n): the subject's active hops known when event_id is applied
 *   (event ids <= event_id; those with event_id == event_id are the new
 *   ones; there is at least one), in any order: the function orders them
 *   by (at, event_id, line), unknown times last.
 *   subject: the item id in decimal, the cluster key, or the consignment
 *   reference (copied into each alert).
 * Appends 0 or more alerts (at most one per rule and hub). Returns 0, or -1
 * on allocation failure (alerts appended before stay valid). */
int tw_ar_realtime(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs,
                   tw_ar_subject_kind kind, const char *subject, int64_t event_id,
                   const tw_ar_hop *hist, size_t n, tw_ar_alerts *out) TW_WUR;

/* Rule 5 as of `as_of`: buys[0..n) are the active sale hops (and shipments
 * to a consignee) with at in (as_of - bulk_window_days, as_of], any order.
 * Buyers (hop->to) are joined into clusters by shared identifiers or the
 * same name at the same address (tw_cluster); a cluster acquiring >=
 * bulk_min_items engines or boats (quantities counted) is scored (cash,
 * private or new buyers, several sellers, boats with engines raise it;
 * established traders lower it). Subject: the cluster key, the smallest
 * "kind:value" among its identifiers, else "name:<name_key>|<address_key>".
 * Returns 0, or -1 on allocation failure. */
int tw_ar_bulk(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs, int64_t as_of,
               const tw_ar_hop *buys, size_t n, tw_ar_alerts *out) TW_WUR;

/* Rule 6 as of `as_of`: last[0..n) is, per item, its latest active hop
 * with a place at or before as_of (item_id set); plus, optionally, the
 * item's earlier hops (same item_id) for the evidence and the score.
 * Items whose latest place is within quiet_within_km of an enabled coast
 * hub and older than quiet_days (but not older than quiet_lookback_days),
 * and not seized, are scored (who holds it, how it got there) and alerted
 * on subject "item". Returns 0, or -1 on allocation failure. */
int tw_ar_quiet(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs, int64_t as_of,
                const tw_ar_hop *hops, size_t n, tw_ar_alerts *out) TW_WUR;

/* Rule 6 for one party cluster as of `as_of`: members[0..nm) are the
 * party ids of the cluster (prov_parties rows: the parties linked by shared
 * identifiers or a name at an address), hops[0..n) the cluster's records:
 * active hops naming a member as receiver or sender, any order (hops that
 * name none, or happened after as_of, are ignored). The cluster's last
 * known place is the destination of its latest record, which must be a
 * sale or shipment received by a member (equipment it passed on is
 * followed on the items); with that place within quiet_within_km of a
 * coast hub, older than quiet_days (not older than quiet_lookback_days)
 * and no seizure or launch among its records, it is scored as an item's
 * latest hop is (who received it from whom, how it got there), plus
 * shared_identifiers, and alerted on subject "cluster" with the key of
 * that receiver (tw_ar_party_key). Returns 0, or -1 on allocation failure. */
int tw_ar_quiet_cluster(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs,
                        int64_t as_of, const int64_t *members, size_t nm, const tw_ar_hop *hops,
                        size_t n, tw_ar_alerts *out) TW_WUR;

/* The cluster key of a party alone (as tw_ar_bulk names clusters): the
 * smallest "kind:value" among its identifiers (kind "other" excluded),
 * else "name:<name_key>|<address_key>", else "party:<party_id>". Writes
 * into buf (truncated to len - 1) and returns buf. */
const char *tw_ar_party_key(const tw_ar_party *p, char *buf, size_t len);

#endif
