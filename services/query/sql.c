/* The statements of tidewatch-query (see sql.h). */
#include "sql.h"

#define ITEM_ROOTS "i.root_id = ANY($1::bigint[])"

/* Search: best key per chain (root), then the filters, then the keyset
 * (score DESC, root ASC) after ($9, $10), $11 rows. $1/$2 differ by mode. */
#define SEARCH_TAIL                                                                                \
    "), best AS (SELECT DISTINCT ON (root_id) root_id, key, score, how FROM m "                     \
    "ORDER BY root_id, score DESC, key), "                                                         \
    "f AS (SELECT b.* FROM best b JOIN prov_items r ON r.item_id = b.root_id "                     \
    "WHERE ($3::smallint = 0 OR r.kind = $3::smallint) "                                           \
    "AND ($4 = '' OR EXISTS (SELECT 1 FROM prov_items x WHERE x.root_id = b.root_id "              \
    "AND lower(x.maker) = lower($4))) "                                                            \
    "AND (($5::float8 IS NULL AND $6::float8 IS NULL AND $7 = '') OR EXISTS (SELECT 1 "             \
    "FROM prov_hops h JOIN prov_items x ON x.item_id = h.item_id WHERE x.root_id = b.root_id "     \
    "AND h.status = 0 AND ($5::float8 IS NULL OR h.occurred_at >= to_timestamp($5::float8)) "      \
    "AND ($6::float8 IS NULL OR h.occurred_at < to_timestamp($6::float8)) "                        \
    "AND ($7 = '' OR h.place_country = $7 OR h.origin_country = $7)))) "                           \
    "SELECT f.root_id, f.key, f.score, f.how FROM f "                                              \
    "WHERE $9::bigint IS NULL OR (f.score, -f.root_id) < ($9::bigint, -$10::bigint) "              \
    "ORDER BY f.score DESC, f.root_id LIMIT $11"

/* Parties that may share a cluster with party p1 (one step): the same
 * identifier (not too common: at most $n distinct names carry it) or the
 * same kind, name and address. */
#define NEIGHBOURS(n)                                                                              \
    "SELECT i2.party_id FROM prov_party_identifiers i1 JOIN prov_party_identifiers i2 "            \
    "ON i2.kind = i1.kind AND i2.value = i1.value WHERE i1.party_id = p1.party_id "                \
    "AND i1.kind IN ('phone','email','vat','company_number','identity_document') "                 \
    "AND (SELECT count(*) FROM (SELECT DISTINCT pp.name_key FROM prov_party_identifiers i3 "       \
    "JOIN prov_parties pp ON pp.party_id = i3.party_id WHERE i3.kind = i1.kind "                   \
    "AND i3.value = i1.value AND pp.name_key <> '' LIMIT " n "::int + 1) z) <= " n "::int "         \
    "UNION ALL SELECT p2.party_id FROM prov_parties p2 WHERE p1.name_key <> '' "                   \
    "AND p1.address_key <> '' AND p2.name_key <> '' AND p2.name_key = p1.name_key "                \
    "AND p2.address_key = p1.address_key AND p2.kind = p1.kind"

#define PARTY_COLS                                                                                 \
    "p.party_id, p.event_id, p.role, p.kind, p.name, p.name_key, p.country, p.address, "           \
    "p.address_key, p.place, " PARTY_IDENTS("p")

/* The same with the identifiers as json, not jsonb: text built once
 * instead of a jsonb value then printed (a quarter of GetChain's parties
 * statement); for statements that do not compare the rows (DISTINCT needs
 * jsonb's equality). */
#define PARTY_COLS_JSON                                                                            \
    "p.party_id, p.event_id, p.role, p.kind, p.name, p.name_key, p.country, p.address, "           \
    "p.address_key, p.place, (SELECT json_agg(json_build_array(pi.kind, pi.value) ORDER BY "       \
    "pi.kind, pi.value) FROM prov_party_identifiers pi WHERE pi.party_id = p.party_id) AS idents"

const query_sql query_sql_table[Q_COUNT] = {
    /* The audit rows of many calls: parallel arrays (binary), one row per
     * element, in order; $7 durations in microseconds. */
    [TW_SQL_AUDIT_I] = {TW_SQL_AUDIT,
                        "INSERT INTO query_audit (peer, method, arguments, result_count, status, "
                        "message, duration_ms) SELECT u.p, u.m, u.a, u.c::int, u.s, u.msg, "
                        "u.us / 1000.0::float8 FROM unnest($1::text[], $2::text[], $3::jsonb[], "
                        "$4::int8[], $5::int2[], $6::text[], $7::int8[]) WITH ORDINALITY AS "
                        "u(p, m, a, c, s, msg, us, o) ORDER BY u.o",
                        7},
    /* $1 key kind, $2 key, $3 maker ('' any), $4 limit */
    [Q_ROOTS_BY_KEY] = {"q_roots_by_key",
                        "SELECT r.item_id AS root_id, r.partial, r.last_lat, r.last_lon, "
                        "extract(epoch FROM r.last_seen)::bigint AS last_seen_s, r.maker, r.model "
                        "FROM prov_items r WHERE r.item_id IN (SELECT i.root_id FROM "
                        "prov_item_keys k JOIN prov_items i ON i.item_id = k.item_id "
                        "WHERE k.key_kind = $1::smallint AND k.key = $2 AND ($3 = '' OR "
                        "k.maker = '' OR lower(k.maker) = lower($3))) ORDER BY r.item_id "
                        "LIMIT $4::int",
                        4},
    /* $1 item id */
    [Q_ROOTS_BY_ID] = {"q_roots_by_id",
                       "SELECT r.item_id AS root_id, r.partial, r.last_lat, r.last_lon, "
                       "extract(epoch FROM r.last_seen)::bigint AS last_seen_s, r.maker, r.model "
                       "FROM prov_items r WHERE r.item_id = (SELECT root_id FROM prov_items "
                       "WHERE item_id = $1::bigint)",
                       1},
    /* $1 LIKE on loose keys ('?' as '%'), $2..$3 key length, $4 scan cap */
    [Q_CANDIDATES] = {"q_candidates",
                      "WITH c AS (SELECT DISTINCT i.root_id FROM prov_item_keys k JOIN prov_items i "
                      "ON i.item_id = k.item_id WHERE k.key_kind = 1 AND NOT k.partial AND NOT "
                      "i.partial AND length(k.key) BETWEEN $2::int AND $3::int AND k.loose LIKE $1 "
                      "LIMIT $4::int) SELECT r.item_id AS root_id, r.maker, r.model, r.last_lat, "
                      "r.last_lon, extract(epoch FROM r.last_seen)::bigint AS last_seen_s, "
                      "string_agg(DISTINCT k2.key, ' ') AS keys FROM c JOIN prov_items r ON "
                      "r.item_id = c.root_id JOIN prov_items m ON m.root_id = c.root_id JOIN "
                      "prov_item_keys k2 ON k2.item_id = m.item_id AND k2.key_kind = 1 AND NOT "
                      "k2.partial GROUP BY r.item_id ORDER BY r.item_id",
                      4},
    /* Items of roots $1 (the root first). */
    [Q_ITEMS] = {"q_items",
                 "SELECT i.root_id, i.item_id, i.kind, i.maker, i.model, i.partial, "
                 US("i.first_seen") " AS first_us, " US("i.last_seen") " AS last_us, "
                 "i.last_lat, i.last_lon, i.last_place, i.last_country FROM prov_items i WHERE "
                 ITEM_ROOTS " ORDER BY i.root_id, (i.item_id <> i.root_id), i.item_id",
                 1},
    [Q_ITEM_KEYS] = {"q_item_keys",
                     "SELECT i.root_id, k.key_kind, k.key, k.maker, k.item_id FROM prov_item_keys k "
                     "JOIN prov_items i ON i.item_id = k.item_id WHERE " ITEM_ROOTS
                     " ORDER BY i.root_id, k.first_event, k.key_kind, k.key, k.maker",
                     1},
    /* $2 readings per chain at most */
    [Q_ITEM_READINGS] = {"q_item_readings",
                         "SELECT * FROM (SELECT i.root_id, r.key_kind, r.key, r.raw, r.method, "
                         "r.completeness, r.event_id, r.field, e.source, row_number() OVER "
                         "(PARTITION BY i.root_id ORDER BY r.event_id, r.field) AS n FROM "
                         "prov_readings r JOIN prov_items i ON i.item_id = r.item_id LEFT JOIN "
                         "events e ON e.id = r.event_id WHERE " ITEM_ROOTS ") x WHERE n <= "
                         "$2::int ORDER BY root_id, event_id, field",
                         2},
    [Q_ITEM_MERGES] = {"q_item_merges",
                       "SELECT DISTINCT i.root_id, m.item_id, m.into_id, m.event_id, m.reason, "
                       "m.undone_by IS NOT NULL AS undone FROM prov_merges m JOIN prov_items i ON "
                       "i.item_id IN (m.item_id, m.into_id) WHERE " ITEM_ROOTS
                       " ORDER BY 1, 4, 2, 3",
                       1},
    /* Hops of roots $1, the first $2 of each in chain order. Their parties
     * by id only: GetChain takes them from Q_CHAIN_PARTIES' rows (which
     * read them anyway), and Q_PARTIES_BY_ID those beyond its cap. */
    [Q_CHAIN_HOPS] = {"q_chain_hops",
                      "SELECT x.* FROM (SELECT i.root_id, row_number() OVER (PARTITION BY "
                      "i.root_id ORDER BY " HOP_ORDER ") AS n, " HOP_BASE_COLS " FROM prov_hops h "
                      "JOIN prov_items i ON i.item_id = h.item_id WHERE " ITEM_ROOTS
                      ") x WHERE x.n <= $2::int ORDER BY x.root_id, x.n",
                      2},
    /* The parties on the hops of roots $1, $2 at most. Only they: tw_cluster
     * then ties those of them that are one actor (custody gaps compare
     * them). Expanding to their neighbours, as GetParty does, made a chain
     * through a busy dealer read every other mention of the dealer (its VAT
     * number on thousands of sales): 69 ms for 13,705 rows, for nothing the
     * chain shows. */
    [Q_CHAIN_PARTIES] = {"q_chain_parties",
                         "WITH hp AS (SELECT DISTINCT v.p FROM prov_hops h JOIN prov_items i ON "
                         "i.item_id = h.item_id CROSS JOIN LATERAL (VALUES (h.from_party), "
                         "(h.to_party), (h.carrier_party)) v(p) WHERE " ITEM_ROOTS
                         " AND v.p IS NOT NULL), sel AS (SELECT p AS party_id FROM hp ORDER BY p "
                         "LIMIT $2::int) SELECT " PARTY_COLS_JSON " FROM prov_parties p JOIN sel USING "
                         "(party_id) ORDER BY p.party_id",
                         2},
    /* Related items of roots $1 ($2 at most). The related items' roots are
     * looked up one by one (OFFSET 0 keeps the planner from joining them
     * with a hash over every item: a scan of prov_items per call). The
     * buyer's cluster is NEIGHBOURS in one pass: each identifier's carriers
     * read once (too common when more than 50 distinct names carry it:
     * their names are read only when more than 50 parties carry it), the
     * identifiers of the buyer by its party id alone
     * ("kind || ''": an IN list on the index would descend it once per
     * kind); the buyer's name ("bought by") is read for the rows kept only;
     * hops without a consignment do not look for others (m.consignment_ref
     * <> '' filters before the index). UNION ALL: the grouping below
     * removes duplicates. */
    [Q_CHAIN_RELATED] =
        {"q_chain_related",
         "WITH mine AS (SELECT h.event_id, h.kind, h.consignment_ref, h.to_party, i.root_id FROM "
         "prov_hops h JOIN prov_items i ON i.item_id = h.item_id WHERE " ITEM_ROOTS
         " AND h.status = 0), rel AS (SELECT m.root_id, 'same_purchase' AS relation, o.item_id, "
         "m.event_id, '' AS detail, NULL::bigint AS buyer FROM mine m JOIN prov_hops o ON "
         "o.event_id = m.event_id AND m.kind = 1 AND o.item_id IS NOT NULL AND o.status = 0 "
         "UNION ALL SELECT m.root_id, 'same_consignment', o.item_id, o.event_id, 'consignment ' "
         "|| m.consignment_ref, NULL FROM mine m JOIN prov_hops o ON o.consignment_ref = "
         "m.consignment_ref AND m.consignment_ref <> '' AND o.consignment_ref <> '' AND "
         "o.item_id IS NOT NULL AND o.status = "
         "0 UNION ALL SELECT m.root_id, 'same_buyer_cluster', o.item_id, o.event_id, NULL, "
         "o.to_party FROM mine m JOIN prov_parties p1 ON p1.party_id = m.to_party AND m.kind = 1 "
         "CROSS JOIN LATERAL (SELECT unnest(c.ids) AS party_id FROM prov_party_identifiers i1 "
         "CROSS JOIN LATERAL (SELECT array_agg(i3.party_id) AS ids FROM prov_party_identifiers i3 "
         "WHERE i3.kind = i1.kind AND i3.value = i1.value) c WHERE (cardinality(c.ids) <= 50 OR "
         "(SELECT count(DISTINCT pp.name_key) FILTER (WHERE pp.name_key <> '') FROM prov_parties "
         "pp WHERE pp.party_id = ANY(c.ids)) <= 50) AND i1.party_id = p1.party_id AND (i1.kind || '') IN ('phone','email','vat',"
         "'company_number','identity_document') UNION ALL SELECT p2.party_id FROM prov_parties p2 "
         "WHERE p1.name_key <> '' AND p1.address_key <> '' AND p2.name_key <> '' AND p2.name_key "
         "= p1.name_key AND p2.address_key = p1.address_key AND p2.kind = p1.kind) n JOIN "
         "prov_hops o ON o.to_party = n.party_id AND o.kind = 1 AND o.item_id IS NOT NULL AND "
         "o.status = 0 AND o.event_id <> m.event_id) SELECT r.root_id, r.relation, oi.root_id AS "
         "other_root, min(r.event_id) AS event_id, CASE WHEN r.relation = 'same_buyer_cluster' "
         "THEN (SELECT min('bought by ' || bp.name) FROM prov_parties bp WHERE bp.party_id = "
         "ANY(array_agg(r.buyer))) ELSE min(r.detail) END AS detail, (SELECT k.key FROM "
         "prov_item_keys k JOIN prov_items x ON x.item_id = k.item_id WHERE x.root_id = "
         "oi.root_id ORDER BY k.first_event, k.key LIMIT 1) AS key FROM rel r CROSS JOIN LATERAL "
         "(SELECT x.root_id FROM prov_items x WHERE x.item_id = r.item_id OFFSET 0) oi "
         "WHERE oi.root_id <> r.root_id GROUP BY r.root_id, r.relation, oi.root_id ORDER BY "
         "r.root_id, r.relation, other_root LIMIT $2::int",
         2},
    /* $1 LIKE strict, $2 LIKE loose, $8 known characters. A key that
     * matches $1 matches $2 (folding is per character), so only the loose
     * LIKE filters, on the trigram index. */
    [Q_SEARCH_LIKE] = {"q_search_like",
                       "WITH m AS (SELECT i.root_id, k.key, CASE WHEN k.key LIKE $1 THEN 500000 + "
                       "500000 * $8::int / greatest(length(k.key), 1) ELSE 400000 + 400000 * "
                       "$8::int / greatest(length(k.key), 1) END::bigint AS score, CASE WHEN k.key "
                       "LIKE $1 THEN 'pattern' ELSE 'lookalike' END AS how FROM prov_item_keys k "
                       "JOIN prov_items i ON i.item_id = k.item_id WHERE k.loose LIKE $2"
                       SEARCH_TAIL,
                       11},
    /* $1 strict key, $2 folded key (trigrams, on the index: an equal key
     * is similar too); $8 unused (0) */
    [Q_SEARCH_FUZZY] = {"q_search_fuzzy",
                        "WITH m AS (SELECT i.root_id, k.key, CASE WHEN k.key = $1 THEN 1000000 "
                        "WHEN k.loose = $2 THEN 900000 ELSE (800000 * similarity(k.loose, $2) + "
                        "0 * $8::int)::bigint END AS score, CASE WHEN k.key = $1 THEN 'exact' "
                        "WHEN k.loose = $2 THEN 'lookalike' ELSE 'similar' END AS how FROM "
                        "prov_item_keys k JOIN prov_items i ON i.item_id = k.item_id WHERE "
                        "k.loose % $2" SEARCH_TAIL,
                        11},
    /* $1/$2 occurred range, $3 kind (0 all), $4 source, $5 after id, $6 rows */
    [Q_EVENTS] = {"q_events",
                  "SELECT e.id, e.kind, e.source, e.source_ref, " US("e.occurred_at") " AS occ_us, "
                  US("e.received_at") " AS rec_us, array_to_string(e.serial_keys, ' ') AS skeys, "
                  "array_to_string(e.hull_keys, ' ') AS hkeys, e.payload FROM events e WHERE "
                  "($1::float8 IS NULL OR e.occurred_at >= to_timestamp($1::float8)) AND "
                  "($2::float8 IS NULL OR e.occurred_at < to_timestamp($2::float8)) AND "
                  "($3::smallint = 0 OR e.kind = $3::smallint) AND ($4 = '' OR e.source = $4) "
                  "AND e.id > $5::bigint ORDER BY e.id LIMIT $6::int",
                  6},
    /* Breadth-first from party $1 over shared identifiers (at most $3
     * names each) and name+address, $2 parties at most. */
    [Q_PARTY_CLUSTER] = {"q_party_cluster",
                         "WITH RECURSIVE c(party_id) AS (SELECT party_id FROM prov_parties WHERE "
                         "party_id = $1::bigint UNION SELECT n.party_id FROM c JOIN prov_parties "
                         "p1 ON p1.party_id = c.party_id CROSS JOIN LATERAL (" NEIGHBOURS("$3")
                         ") n) SELECT " PARTY_COLS " FROM (SELECT party_id FROM c LIMIT $2::int) s "
                         "JOIN prov_parties p USING (party_id) ORDER BY p.party_id",
                         3},
    /* Identifiers of parties $1 carried by more than $2 names: up to $2 + 1
     * carriers each with distinct names (so tw_cluster reports them). */
    [Q_PARTY_COMMON] = {"q_party_common",
                        "WITH ids AS (SELECT DISTINCT kind, value FROM prov_party_identifiers WHERE "
                        "party_id = ANY($1::bigint[]) AND kind IN ('phone','email','vat',"
                        "'company_number','identity_document')), carriers AS (SELECT ids.kind, "
                        "ids.value, x.party_id FROM ids CROSS JOIN LATERAL (SELECT DISTINCT ON "
                        "(pp.name_key) pp.party_id FROM prov_party_identifiers i3 JOIN "
                        "prov_parties pp ON pp.party_id = i3.party_id WHERE i3.kind = ids.kind AND "
                        "i3.value = ids.value AND pp.name_key <> '' ORDER BY pp.name_key, "
                        "pp.party_id LIMIT $2::int + 1) x), common AS (SELECT kind, value FROM "
                        "carriers GROUP BY kind, value HAVING count(*) > $2::int) SELECT DISTINCT "
                        PARTY_COLS " FROM carriers c JOIN common USING (kind, value) JOIN "
                        "prov_parties p ON p.party_id = c.party_id WHERE NOT (p.party_id = "
                        "ANY($1::bigint[])) ORDER BY p.party_id LIMIT 1000",
                        2},
    /* Hops of parties $1 (any role), $2 at most, in chain order. */
    [Q_PARTY_HOPS] = {"q_party_hops",
                      "SELECT " HOP_COLS " FROM prov_hops h" HOP_JOINS " WHERE h.from_party = "
                      "ANY($1::bigint[]) OR h.to_party = ANY($1::bigint[]) OR h.carrier_party = "
                      "ANY($1::bigint[]) ORDER BY " HOP_ORDER " LIMIT $2::int",
                      2},
    /* $1 id or ($2, $3) */
    [Q_EVENT_RESOLVE] = {"q_event_resolve",
                         "SELECT e.id, e.kind, " US("e.occurred_at") " AS occ_us FROM events e "
                         "WHERE e.id = $1::bigint OR (e.source = $2 AND e.source_ref = $3) "
                         "ORDER BY e.id LIMIT 1",
                         3},
    /* Chains with a hop in event $1 ($2 at most), with that hop's time. */
    [Q_EVENT_ITEMS] = {"q_event_items",
                       "SELECT i.root_id, min(" US("h.occurred_at") ") AS t_us FROM prov_hops h "
                       "JOIN prov_items i ON i.item_id = h.item_id WHERE h.event_id = $1::bigint "
                       "GROUP BY i.root_id ORDER BY i.root_id LIMIT $2::int",
                       2},
    [Q_EVENT_UNIDENTIFIED] = {"q_event_unidentified",
                              "SELECT " HOP_COLS " FROM prov_hops h" HOP_JOINS
                              " WHERE h.event_id = $1::bigint AND h.item_id IS NULL ORDER BY "
                              "h.line LIMIT 1000",
                              1},
    /* Hops of roots $1 up to event $2 at time $3 (float8 seconds, NULL:
     * every hop up to the event in log order), $4 per chain. */
    [Q_HOPS_BEFORE] = {"q_hops_before",
                       "SELECT x.* FROM (SELECT i.root_id, row_number() OVER (PARTITION BY "
                       "i.root_id ORDER BY " HOP_ORDER ") AS n, " HOP_COLS " FROM prov_hops h "
                       "JOIN prov_items i ON i.item_id = h.item_id" HOP_JOINS " WHERE " ITEM_ROOTS
                       " AND (h.event_id = $2::bigint OR ($3::float8 IS NOT NULL AND "
                       "(h.occurred_at < to_timestamp($3::float8) OR (h.occurred_at = "
                       "to_timestamp($3::float8) AND h.event_id < $2::bigint))))) x WHERE x.n <= "
                       "$4::int ORDER BY x.root_id, x.n",
                       4},
    /* From event $1 or the receivers $2 (bigint[]): chains and their
     * handoffs, $3 deep, $4 chains at most, $5 names per identifier. */
    [Q_FORWARD_WALK] =
        {"q_forward_walk",
         "WITH RECURSIVE seed AS (SELECT i.root_id, h.occurred_at AS t FROM prov_hops h JOIN "
         "prov_items i ON i.item_id = h.item_id WHERE h.status = 0 AND (h.event_id = $1::bigint "
         "OR h.to_party = ANY($2::bigint[]))), walk(root_id, t, depth) AS (SELECT root_id, "
         "min(t), 0 FROM seed GROUP BY root_id UNION SELECT i2.root_id, h2.occurred_at, w.depth "
         "+ 1 FROM walk w JOIN prov_items i ON i.root_id = w.root_id JOIN prov_hops h ON "
         "h.item_id = i.item_id AND h.status = 0 AND h.to_party IS NOT NULL AND (w.t IS NULL OR "
         "h.occurred_at >= w.t) JOIN prov_parties p1 ON p1.party_id = h.to_party CROSS JOIN "
         "LATERAL (SELECT p1.party_id UNION " NEIGHBOURS("$5") ") n JOIN prov_hops h2 ON "
         "h2.from_party = n.party_id AND h2.status = 0 AND h2.item_id IS NOT NULL AND "
         "(h.occurred_at IS NULL OR h2.occurred_at >= h.occurred_at) JOIN prov_items i2 ON "
         "i2.item_id = h2.item_id WHERE w.depth < $3::int AND i2.root_id <> w.root_id) SELECT "
         "root_id, min(depth) AS depth, " US("min(t)") " AS t_us FROM walk GROUP BY root_id "
         "ORDER BY min(depth), root_id LIMIT $4::int",
         5},
    /* Hops of roots $1 from times $2 (float8[] seconds, parallel; NaN:
     * every hop), $3 per chain. */
    [Q_HOPS_AFTER] = {"q_hops_after",
                      "SELECT x.* FROM (SELECT i.root_id, row_number() OVER (PARTITION BY "
                      "i.root_id ORDER BY " HOP_ORDER ") AS n, " HOP_COLS " FROM unnest("
                      "$1::bigint[], $2::float8[]) AS u(root_id, t) JOIN prov_items i ON "
                      "i.root_id = u.root_id JOIN prov_hops h ON h.item_id = i.item_id" HOP_JOINS
                      " WHERE u.t = 'NaN'::float8 OR h.occurred_at >= to_timestamp(u.t)) x "
                      "WHERE x.n <= $3::int ORDER BY x.root_id, x.n",
                      3},
    /* Line items without serials received by parties $1. */
    [Q_PARTY_UNIDENTIFIED] = {"q_party_unidentified",
                              "SELECT " HOP_COLS " FROM prov_hops h" HOP_JOINS
                              " WHERE h.item_id IS NULL AND h.to_party = ANY($1::bigint[]) ORDER "
                              "BY " HOP_ORDER " LIMIT 1000",
                              1},
    /* qcall_sql_generic's first step: generic plans for the rest of the
     * batch's transaction only (prepared: not parsed at every call). */
    [Q_GENERIC_PLANS] = {"q_generic_plans",
                         "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)", 0},
    /* Parties $1 (bigint[]) as a hop shows them. */
    [Q_PARTIES_BY_ID] = {"q_parties_by_id",
                         "SELECT p.party_id, p.role, p.kind, p.name, p.country, p.place FROM "
                         "prov_parties p WHERE p.party_id = ANY($1::bigint[]) ORDER BY p.party_id",
                         1},
    /* ---- AlertService ---- */
    /* ListAlerts: $1 states (text[]), $2 minimum severity (0 any), $3 rule,
     * $4 subject kind, $5 subject, $6 hub ('' any), $7 known at or after
     * (float8 seconds, NULL any), $8 before this seq (NULL: first page),
     * $9 rows. Newest change first. */
    [Q_ALERTS_LIST] = {"q_alerts_list",
                       "SELECT " ALERT_COLS " FROM alerts a WHERE a.state = ANY($1::text[]) AND "
                       "a.severity >= $2::smallint AND ($3 = '' OR a.rule = $3) AND ($4 = '' OR "
                       "a.subject_kind = $4) AND ($5 = '' OR a.subject = $5) AND ($6 = '' OR "
                       "a.hub = $6) AND ($7::float8 IS NULL OR a.known_at >= "
                       "to_timestamp($7::float8)) AND ($8::bigint IS NULL OR a.seq < $8::bigint) "
                       "ORDER BY a.seq DESC LIMIT $9::int",
                       9},
    [Q_ALERT_GET] = {"q_alert_get", "SELECT " ALERT_COLS " FROM alerts a WHERE a.alert_id = "
                                    "$1::bigint", 1},
    /* History of alert $1, oldest first, $2 rows at most. */
    [Q_ALERT_HISTORY] = {"q_alert_history",
                         "SELECT u.seq, u.kind, " US("u.at") " AS at_us, u.by, u.note, u.severity "
                         "FROM alert_updates u WHERE u.alert_id = $1::bigint ORDER BY u.seq "
                         "LIMIT $2::int",
                         2},
    /* $1 alert, $2 by, $3 note (SQLSTATE TWA01, TWA02, TWA03) */
    [Q_ALERT_ACK] = {"q_alert_ack", "SELECT alert_acknowledge($1::bigint, $2, $3) AS seq", 3},
    [Q_ALERT_CLOSE] = {"q_alert_close", "SELECT alert_close($1::bigint, $2, $3) AS seq", 3},
    /* $1 kind ('' any), $2 disabled ones too */
    [Q_HUBS_LIST] = {"q_hubs_list",
                     "SELECT " HUB_COLS " FROM hubs h WHERE ($1 = '' OR h.kind = $1) AND "
                     "($2::bool OR h.enabled) ORDER BY h.hub_id",
                     2},
    /* hub_put's arguments; the hub's id goes into a transaction-local
     * setting that Q_HUB_GET_PUT, next in the batch, reads (a statement
     * does not see the changes of a function it calls). */
    [Q_HUB_PUT] = {"q_hub_put",
                   "SELECT set_config('tidewatch.hub_id', hub_put($1::int, $2::int, $3, "
                   "$4::text[], $5, $6, $7::float8, $8::float8, $9, $10::float8, $11, $12)::text, "
                   "true) AS hub_id",
                   12},
    [Q_HUB_GET_PUT] = {"q_hub_get_put",
                       "SELECT " HUB_COLS " FROM hubs h WHERE h.hub_id = "
                       "current_setting('tidewatch.hub_id')::int",
                       0},
    /* $1 hub, $2 enabled, $3 by, $4 note (SQLSTATE TWH01) */
    [Q_HUB_ENABLE] = {"q_hub_enable", "SELECT hub_set_enabled($1::int, $2::bool, $3, $4)", 4},
    [Q_HUB_GET] = {"q_hub_get", "SELECT " HUB_COLS " FROM hubs h WHERE h.hub_id = $1::int", 1},
    /* WatchAlerts: the newest change (changes commit in seq order). */
    [Q_WATCH_TOP] = {"q_watch_top", "SELECT coalesce(max(seq), 0) AS top FROM alerts", 0},
    /* Alerts changed after seq $1, severity $2 at least, $3 rows, in seq
     * order, with the kind of their latest change. */
    [Q_WATCH_LIVE] = {"q_watch_live",
                      "SELECT " ALERT_COLS ", u.kind AS change FROM alerts a JOIN alert_updates u "
                      "ON u.seq = a.seq WHERE a.seq > $1::bigint AND a.severity >= $2::smallint "
                      "ORDER BY a.seq LIMIT $3::int",
                      3},
    /* The backlog: alerts above id $1 whose latest change is at most seq
     * $2, severity $3 at least, $4 rows, in id order. */
    [Q_WATCH_BACKLOG] = {"q_watch_backlog",
                         "SELECT " ALERT_COLS ", 'backlog' AS change FROM alerts a WHERE "
                         "a.alert_id > $1::bigint AND a.seq > 0 AND a.seq <= $2::bigint AND "
                         "a.severity >= $3::smallint ORDER BY a.alert_id LIMIT $4::int",
                         4},
};
