/* Every statement tidewatch-query runs, prepared by name on each connection
 * of the pool (main.c registers query_sql[]). Values are always parameters;
 * these texts are the only SQL the daemon sends.
 *
 * Conventions: times come back as microseconds since the epoch
 * (*_us bigint) and go in as float seconds ($n::float8, NULL = no bound);
 * id sets go in as bigint[] ("{1,2}"). */
#ifndef TW_QUERY_SQL_H
#define TW_QUERY_SQL_H

#define US(x) "(extract(epoch FROM " x ")*1000000)::bigint"

/* One hop, its parties (from, to, carrier) by id only. */
#define HOP_BASE_COLS                                                                              \
    "h.event_id, h.line, h.item_id, h.kind, h.status, h.corrected_by, h.corrects, h.line_field, "  \
    "h.quantity, " US("h.occurred_at") " AS occ_us, " US("h.expected_at") " AS exp_us, "           \
    US("h.delivered_at") " AS del_us, " US("h.received_at") " AS rec_us, "                          \
    "h.source, h.source_ref, h.grading_source, h.grading_info, h.grading_handling, "               \
    "h.from_party, h.to_party, h.carrier_party, h.origin_name, h.origin_country, h.origin_lat, "    \
    "h.origin_lon, h.place_name, h.place_country, h.place_lat, h.place_lon, h.place_hub, "          \
    "h.place_hub_kind, h.coast_hub, h.coast_hub_km, h.currency, h.unit_price_minor, h.payment, "    \
    "h.invoice_ref, h.consignment_ref, h.vehicle, h.case_ref, h.condition, h.launch"
/* One hop with its parties (from, to, carrier) by name. */
#define HOP_COLS                                                                                   \
    HOP_BASE_COLS ", fp.name AS f_name, fp.kind AS f_kind, fp.country AS f_country, "              \
    "fp.place AS f_place, fp.role AS f_role, tp.name AS t_name, tp.kind AS t_kind, tp.country AS t_country, "            \
    "tp.place AS t_place, tp.role AS t_role, cp.name AS c_name, cp.kind AS c_kind, "               \
    "cp.country AS c_country, cp.place AS c_place, cp.role AS c_role"
#define HOP_JOINS                                                                                  \
    " LEFT JOIN prov_parties fp ON fp.party_id = h.from_party"                                    \
    " LEFT JOIN prov_parties tp ON tp.party_id = h.to_party"                                      \
    " LEFT JOIN prov_parties cp ON cp.party_id = h.carrier_party"
#define HOP_ORDER "h.occurred_at NULLS LAST, h.event_id, h.line"

/* A party's identifiers as a JSON array of [kind, value]. */
#define PARTY_IDENTS(p)                                                                            \
    "(SELECT jsonb_agg(jsonb_build_array(pi.kind, pi.value) ORDER BY pi.kind, pi.value) "            \
    "FROM prov_party_identifiers pi WHERE pi.party_id = " p ".party_id) AS idents"

/* An alert row (alerts a), as qalert_from_row reads it. */
#define ALERT_COLS                                                                                 \
    "a.alert_id, a.rule, a.subject_kind, a.subject, a.hub, a.severity, a.score, a.state, "          \
    "a.title, a.explanation, a.evidence::text AS evidence, " US("a.known_at") " AS known_us, "     \
    US("a.raised_at") " AS raised_us, " US("a.updated_at") " AS updated_us, a.updates, "           \
    "a.config_version, a.job, " US("a.acked_at") " AS acked_us, a.acked_by, "                      \
    US("a.closed_at") " AS closed_us, a.closed_by, a.close_note, a.seq"
/* A hub row (hubs h), as qhub_from_row reads it. */
#define HUB_COLS                                                                                   \
    "h.hub_id, h.name, array_to_json(h.aliases)::text AS aliases, h.country, h.locode, h.lat, "    \
    "h.lon, h.kind, h.radius_km, h.enabled, h.version, " US("h.updated_at") " AS updated_us"

typedef enum {
    TW_SQL_AUDIT_I = 0,
    Q_ROOTS_BY_KEY,
    Q_ROOTS_BY_ID,
    Q_CANDIDATES,
    Q_ITEMS,
    Q_ITEM_KEYS,
    Q_ITEM_READINGS,
    Q_ITEM_MERGES,
    Q_CHAIN_HOPS,
    Q_CHAIN_PARTIES,
    Q_CHAIN_RELATED,
    Q_SEARCH_LIKE,
    Q_SEARCH_FUZZY,
    Q_EVENTS,
    Q_PARTY_CLUSTER,
    Q_PARTY_COMMON,
    Q_PARTY_HOPS,
    Q_EVENT_RESOLVE,
    Q_EVENT_ITEMS,
    Q_EVENT_UNIDENTIFIED,
    Q_HOPS_BEFORE,
    Q_FORWARD_WALK,
    Q_HOPS_AFTER,
    Q_PARTY_UNIDENTIFIED,
    Q_GENERIC_PLANS,
    Q_PARTIES_BY_ID,
    Q_ALERTS_LIST,
    Q_ALERT_GET,
    Q_ALERT_HISTORY,
    Q_ALERT_ACK,
    Q_ALERT_CLOSE,
    Q_HUBS_LIST,
    Q_HUB_PUT,
    Q_HUB_GET_PUT,
    Q_HUB_ENABLE,
    Q_HUB_GET,
    Q_WATCH_TOP,
    Q_WATCH_LIVE,
    Q_WATCH_BACKLOG,
    Q_COUNT
} query_sql_id;

typedef struct query_sql {
    const char *name;
    const char *text;
    int nparams;
} query_sql;

extern const query_sql query_sql_table[Q_COUNT];

#define TW_SQL_AUDIT "q_audit"
#define QSQL(id) (query_sql_table[id].name)

#endif
