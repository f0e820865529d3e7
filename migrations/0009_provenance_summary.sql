-- Item summaries kept up incrementally (issue 7, consumer speed). Until now
-- every batch recomputed first_seen, last_seen and the last place of each
-- item it touched from all of the item's hops (prov_touch, two index scans
-- per item: a third of the consumer's database time). Plain records only
-- add hops, so tidewatch-provenance now folds a batch's new hops into the
-- summary instead; for that the item keeps which hop its last place came
-- from (its order key: event time, event id, line). Corrections still
-- recompute (prov_touch), which now fills these columns too.
ALTER TABLE prov_items
    ADD COLUMN last_place_at    timestamptz,
    ADD COLUMN last_place_event bigint,     -- NULL: no hop with a place
    ADD COLUMN last_place_line  integer;

CREATE OR REPLACE FUNCTION prov_touch(p_items bigint[]) RETURNS void LANGUAGE sql AS $$
    UPDATE prov_items i
       SET first_seen = s.f, last_seen = s.l,
           last_lat = p.place_lat, last_lon = p.place_lon,
           last_place = coalesce(p.place_name, ''), last_country = coalesce(p.place_country, ''),
           last_place_at = p.occurred_at, last_place_event = p.event_id,
           last_place_line = p.line
      FROM (SELECT DISTINCT x AS id FROM unnest(p_items) x WHERE x IS NOT NULL) t
      LEFT JOIN LATERAL (SELECT min(h.occurred_at) AS f, max(h.occurred_at) AS l
                           FROM prov_hops h WHERE h.item_id = t.id AND h.status = 0) s ON true
      LEFT JOIN LATERAL (SELECT h.place_lat, h.place_lon, h.place_name, h.place_country,
                                h.occurred_at, h.event_id, h.line
                           FROM prov_hops h
                          WHERE h.item_id = t.id AND h.status = 0
                            AND (h.place_name <> '' OR h.place_lat IS NOT NULL)
                          ORDER BY h.occurred_at DESC NULLS LAST, h.event_id DESC, h.line DESC
                          LIMIT 1) p ON true
     WHERE i.item_id = t.id
$$;

-- Existing items: the hop of their last place.
SELECT prov_touch(ARRAY(SELECT item_id FROM prov_items
                         WHERE last_place <> '' OR last_lat IS NOT NULL));
