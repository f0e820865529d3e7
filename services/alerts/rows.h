/* Reading the derived model into the rules' values (tw_ar_hop,
 * tw_ar_party): the SQL projections the real-time consumer and the jobs
 * share, and their parsers. Everything read lives in the caller's arena. */
#ifndef TW_ALERTS_ROWS_H
#define TW_ALERTS_ROWS_H

#include <libpq-fe.h>

#include "tw_alertrules.h"
#include "tw_arena.h"

/* One hop with its item and parties: FROM prov_hops h LEFT JOIN prov_items
 * it ON it.item_id = h.item_id LEFT JOIN prov_parties f ON f.party_id =
 * h.from_party LEFT JOIN prov_parties t ON t.party_id = h.to_party.
 * ALERTS_HOP_NCOLS columns. */
#define ALERTS_HOP_COLS                                                                          \
    "h.event_id, h.line, h.kind, coalesce(h.item_id, 0), coalesce(it.kind, 0), "                \
    "concat_ws(' ', CASE it.kind WHEN 1 THEN 'engine' WHEN 2 THEN 'boat' ELSE 'item' END, "     \
    "nullif(it.maker, ''), (SELECT k.key FROM prov_item_keys k WHERE k.item_id = it.item_id "   \
    "AND k.first_event <= h.event_id ORDER BY k.partial, k.key_kind, k.key LIMIT 1)), "          \
    "floor(extract(epoch FROM h.occurred_at))::bigint, h.quantity, h.payment, h.launch::int, "  \
    "h.origin_lat, h.origin_lon, h.origin_name, h.place_lat, h.place_lon, h.place_name, "       \
    "h.consignment_ref, h.vehicle, h.source, h.source_ref, h.grading_source, h.grading_info, "   \
    "coalesce(h.corrected_by, 0), coalesce(h.from_party, 0), f.kind, f.name, f.lat, f.lon, "     \
    "coalesce(h.to_party, 0), t.kind, t.name, t.lat, t.lon"
#define ALERTS_HOP_NCOLS 33

/* What is known of a party before its own event: its identifiers, its
 * trading history and whether it is linked to a seizure (an item it
 * received, or one merged with it by then, seized before its event). All
 * of it as it stood at the party's event, whatever provenance learnt
 * since (later merges, corrections), so a replay computes the same. Needs a relation
 * `bp` (party_id, event_id, kind, name, name_key, address_key, lat, lon:
 * prov_parties rows) and $LINKS (the most parties followed per party).
 * ALERTS_PARTY_NCOLS columns; FROM bp ALERTS_PARTY_LINKS(n) ALERTS_PARTY_TRADE. */
#define ALERTS_PARTY_COLS                                                                        \
    "bp.party_id, bp.kind, bp.name, bp.name_key, bp.address_key, bp.lat, bp.lon, "              \
    "(SELECT array_agg(i.kind || ':' || i.value ORDER BY i.kind, i.value) "                      \
    " FROM prov_party_identifiers i WHERE i.party_id = bp.party_id), "                           \
    "tr.records, floor(extract(epoch FROM tr.first))::bigint, "                                  \
    "(EXISTS (SELECT 1 FROM prov_hops h WHERE h.to_party = ANY (l.others) "                      \
    " AND h.item_id IS NOT NULL AND (EXISTS (SELECT 1 FROM prov_hops s "                         \
    "  WHERE s.item_id = h.item_id AND s.kind = 3 AND s.event_id < bp.event_id "                 \
    "  AND (s.status = 0 OR s.corrected_by > bp.event_id)) "                                     \
    " OR EXISTS (SELECT 1 FROM prov_merges m JOIN prov_hops s ON s.item_id = "                   \
    "  CASE WHEN m.item_id = h.item_id THEN m.into_id ELSE m.item_id END "                       \
    "  WHERE (m.item_id = h.item_id OR m.into_id = h.item_id) AND m.event_id < bp.event_id "     \
    "  AND (m.undone_by IS NULL OR m.undone_by > bp.event_id) AND s.kind = 3 "                   \
    "  AND s.event_id < bp.event_id AND (s.status = 0 OR s.corrected_by > bp.event_id)))))::int"
#define ALERTS_PARTY_NCOLS 11

/* The lateral that finds the parties linked to bp (the same identifier, or
 * the same name at the same address) in earlier events: l.others, the
 * newest first, at most the cap (parameter n); the same set on every
 * replay. Each branch reads its newest n off an index that ends in the
 * party id (migration 0011), so a company's VAT number on a million
 * records costs n entries, not a million (o.name_key <> '' lets the
 * planner use the partial index). */
#define ALERTS_PARTY_LINKS(n)                                                                    \
    "CROSS JOIN LATERAL (SELECT coalesce(array_agg(o.party_id), '{}') AS others FROM ("          \
    " SELECT x.party_id FROM prov_party_identifiers i CROSS JOIN LATERAL ("                      \
    "  SELECT j.party_id FROM prov_party_identifiers j WHERE j.kind = i.kind "                   \
    "  AND j.value = i.value AND j.party_id < bp.event_id * 1024 "                               \
    "  ORDER BY j.party_id DESC LIMIT " n ") x WHERE i.party_id = bp.party_id "                  \
    " AND i.kind <> 'other' "                                                                    \
    " UNION SELECT y.party_id FROM (SELECT o.party_id FROM prov_parties o "                      \
    "  WHERE bp.name_key <> '' AND bp.address_key <> '' AND o.name_key <> '' "                   \
    "  AND o.name_key = bp.name_key "                                                            \
    "  AND o.address_key = bp.address_key AND o.party_id < bp.event_id * 1024 "                  \
    "  ORDER BY o.party_id DESC LIMIT " n ") y "                                                 \
    " ORDER BY 1 DESC LIMIT " n ") o) l"

/* After ALERTS_PARTY_LINKS, for ALERTS_PARTY_COLS: the linked parties'
 * trading history tr (records, first). */
#define ALERTS_PARTY_TRADE                                                                       \
    " CROSS JOIN LATERAL (SELECT count(DISTINCT h.event_id) FILTER (WHERE h.kind IN (1, 2) "     \
    " AND (h.from_party = ANY (l.others) OR bp.kind = 2)) AS records, "                          \
    " min(h.occurred_at) AS first FROM prov_hops h WHERE h.event_id < bp.event_id "              \
    " AND (h.from_party = ANY (l.others) OR h.to_party = ANY (l.others))) tr"

/* Parties read with ALERTS_PARTY_COLS, sorted by id. */
typedef struct alerts_parties {
    tw_ar_party *v;
    size_t n;
} alerts_parties;

/* Read rows [0, PQntuples) of r, columns col0.. (ALERTS_PARTY_COLS) into
 * *out (in arena a). Returns 0 or -1 (out of memory). */
int alerts_parties_read(const PGresult *r, int col0, tw_arena *a, alerts_parties *out)
    __attribute__((warn_unused_result));

/* The party with that id, or NULL. */
const tw_ar_party *alerts_parties_find(const alerts_parties *p, int64_t id);

/* Read row `row`, columns col0.. (ALERTS_HOP_COLS) into *out; parties
 * found in `known` (may be NULL) are used as they are, others are made
 * from the row (kind, name, place; no history). *corrected_by gets the
 * correction that superseded the hop (0 none). Returns 0 or -1 (out of
 * memory). */
int alerts_hop_read(const PGresult *r, int row, int col0, tw_arena *a,
                    const alerts_parties *known, tw_ar_hop *out, int64_t *corrected_by)
    __attribute__((warn_unused_result));

#endif
