-- The provenance model (issue 7), written only by tidewatch-provenance
-- (role tidewatch_provenance) as it consumes the log, read by
-- tidewatch-query. Every row is a function of the log: a replay from zero
-- (tidewatch-provenance --rebuild) or a consumer killed at any instant and
-- restarted yields exactly the same rows. So no sequences: every id is made
-- from the id of the event that created the row (event id * 1024 + its
-- ordinal within the record), which a replay reproduces.
--
-- Times: occurred_at is when a thing happened (the chain's order),
-- received_at when Tidewatch learnt of it (events.received_at).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Engines, boats and other equipment. An item is created by the first
-- reading of a key it is known by; when a record proves that two items are
-- one (one equipment read with keys of both), the later one's root_id
-- points at the earlier one's (the smallest item_id of the merged set) and
-- prov_merges keeps the evidence. A chain is every hop of every item with
-- the same root_id.
CREATE TABLE prov_items (
    item_id      bigint PRIMARY KEY,   -- first event id * 1024 + equipment ordinal
    root_id      bigint NOT NULL,      -- itself unless merged
    kind         smallint NOT NULL,    -- tidewatch.v1.ItemKind
    maker        text NOT NULL DEFAULT '',
    model        text NOT NULL DEFAULT '',
    -- Built from partial readings only: never merged, ranked as candidates.
    partial      boolean NOT NULL DEFAULT false,
    first_event  bigint NOT NULL,
    -- Summary of its active hops (for search and candidates).
    first_seen   timestamptz,
    last_seen    timestamptz,
    last_lat     double precision,
    last_lon     double precision,
    last_place   text NOT NULL DEFAULT '',
    last_country text NOT NULL DEFAULT ''
);
CREATE INDEX prov_items_root ON prov_items (root_id);

-- The keys an item is known by: (kind, key, maker). maker is the canonical
-- maker name when the reading named one, '' otherwise.
CREATE TABLE prov_item_keys (
    key_kind   smallint NOT NULL,          -- 1 serial, 2 hull number
    key        text COLLATE "C" NOT NULL,  -- normalised (strict) key
    maker      text COLLATE "C" NOT NULL DEFAULT '',
    item_id    bigint NOT NULL REFERENCES prov_items,
    loose      text NOT NULL,              -- look-alikes folded (fuzzy search)
    partial    boolean NOT NULL DEFAULT false,
    first_event bigint NOT NULL,
    PRIMARY KEY (key_kind, key, maker)
);
CREATE INDEX prov_item_keys_item ON prov_item_keys (item_id);
CREATE INDEX prov_item_keys_trgm ON prov_item_keys USING gin (loose gin_trgm_ops);
CREATE INDEX prov_item_keys_key ON prov_item_keys (key_kind, key);

-- Every raw reading, as read, and the item it was attributed to.
CREATE TABLE prov_readings (
    event_id     bigint NOT NULL,
    field        text COLLATE "C" NOT NULL,  -- "purchase.items[0].equipment.serials[1]"
    item_id      bigint NOT NULL,
    key_kind     smallint NOT NULL,
    key          text COLLATE "C" NOT NULL,
    raw          text NOT NULL,
    method       smallint NOT NULL DEFAULT 0,        -- SerialReading.Method
    completeness smallint NOT NULL DEFAULT 0,        -- SerialReading.Completeness
    format       text NOT NULL DEFAULT '',
    -- Added while writing tidewatch-provenance: the reading's maker (the
    -- equipment's, canonical; '' for hull numbers and unknown makers) and
    -- whether the key has unreadable characters ('?').
    maker        text COLLATE "C" NOT NULL DEFAULT '',
    partial      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (event_id, field)
);
CREATE INDEX prov_readings_item ON prov_readings (item_id);

-- Merges of two items into one, with the record that proved it. undone_by
-- is the correction that removed the evidence (the merge no longer holds).
CREATE TABLE prov_merges (
    item_id     bigint NOT NULL,  -- the item merged (later)
    into_id     bigint NOT NULL,  -- the item it was merged with (earlier)
    event_id    bigint NOT NULL,  -- the evidence
    reason      text NOT NULL,
    undone_by   bigint,
    PRIMARY KEY (item_id, into_id, event_id)
);

-- A party as one record names it (seller, buyer, shipper, carrier,
-- consignee, agency). Parties are tied into clusters when read (shared
-- identifiers, same name at the same address: lib/domain/tw_cluster).
CREATE TABLE prov_parties (
    party_id    bigint PRIMARY KEY,   -- event id * 1024 + role ordinal
    event_id    bigint NOT NULL,
    role        text NOT NULL,        -- "seller", "buyer", ...
    kind        smallint NOT NULL,    -- Party.Kind
    name        text NOT NULL DEFAULT '',
    name_key    text NOT NULL DEFAULT '',  -- tw_place_key of the name
    country     text NOT NULL DEFAULT '',
    address     text NOT NULL DEFAULT '',
    address_key text NOT NULL DEFAULT '',  -- resolved place key, or folded address
    place       text NOT NULL DEFAULT '',  -- resolved place name
    lat         double precision,
    lon         double precision
);
CREATE INDEX prov_parties_event ON prov_parties (event_id);
CREATE INDEX prov_parties_name ON prov_parties (name_key, address_key) WHERE name_key <> '';

-- Normalised identifiers (events.derived identifiers).
CREATE TABLE prov_party_identifiers (
    party_id  bigint NOT NULL REFERENCES prov_parties,
    kind      text NOT NULL,   -- "vat", "phone", "email", ...
    value     text COLLATE "C" NOT NULL,
    PRIMARY KEY (party_id, kind, value)
);
CREATE INDEX prov_party_identifiers_value ON prov_party_identifiers (kind, value);

-- One movement of one item (or of a quantity of unidentified items).
CREATE TABLE prov_hops (
    event_id      bigint NOT NULL,
    line          integer NOT NULL,     -- line item ordinal within the record
    item_id       bigint,               -- NULL: no serial or hull number on the line
    kind          smallint NOT NULL,    -- tidewatch.v1.HopKind
    status        smallint NOT NULL DEFAULT 0,  -- tidewatch.v1.HopStatus
    corrected_by  bigint,               -- the correction's event id
    corrects      bigint,               -- hop from a correction of this event
    line_field    text NOT NULL DEFAULT '',
    quantity      integer NOT NULL DEFAULT 1,
    occurred_at   timestamptz,          -- purchase time, dispatch, seizure time
    expected_at   timestamptz,
    delivered_at  timestamptz,
    received_at   timestamptz NOT NULL,
    source        text COLLATE "C" NOT NULL,
    source_ref    text COLLATE "C" NOT NULL,
    grading_source smallint NOT NULL DEFAULT 0,
    grading_info  smallint NOT NULL DEFAULT 0,
    grading_handling smallint NOT NULL DEFAULT 0,
    from_party    bigint,               -- seller, shipper
    to_party      bigint,               -- buyer, consignee, agency
    carrier_party bigint,
    -- Origin (shipments) and place (sale place, destination, seizure place).
    origin_name   text NOT NULL DEFAULT '',
    origin_country text NOT NULL DEFAULT '',
    origin_lat    double precision,
    origin_lon    double precision,
    place_name    text NOT NULL DEFAULT '',
    place_country text NOT NULL DEFAULT '',
    place_lat     double precision,
    place_lon     double precision,
    place_hub     text NOT NULL DEFAULT '',
    place_hub_kind text NOT NULL DEFAULT '',
    coast_hub     text NOT NULL DEFAULT '',    -- nearest Channel-coast hub to place
    coast_hub_km  double precision,
    currency      text NOT NULL DEFAULT '',
    unit_price_minor bigint,
    payment       smallint NOT NULL DEFAULT 0,
    invoice_ref   text NOT NULL DEFAULT '',
    consignment_ref text NOT NULL DEFAULT '',
    vehicle       text NOT NULL DEFAULT '',
    case_ref      text NOT NULL DEFAULT '',
    condition     smallint NOT NULL DEFAULT 0,
    launch        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (event_id, line)
);
CREATE INDEX prov_hops_item ON prov_hops (item_id, occurred_at, event_id) WHERE item_id IS NOT NULL;
CREATE INDEX prov_hops_from ON prov_hops (from_party) WHERE from_party IS NOT NULL;
CREATE INDEX prov_hops_to ON prov_hops (to_party) WHERE to_party IS NOT NULL;
CREATE INDEX prov_hops_consignment ON prov_hops (consignment_ref) WHERE consignment_ref <> '';

-- tidewatch_provenance (0004, a member of tidewatch_consumer) writes the
-- model; tidewatch_query reads it.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE
    ON prov_items, prov_item_keys, prov_readings, prov_merges, prov_parties,
       prov_party_identifiers, prov_hops
    TO tidewatch_provenance;
GRANT SELECT ON prov_items, prov_item_keys, prov_readings, prov_merges, prov_parties,
                prov_party_identifiers, prov_hops
    TO tidewatch_query;

-- ---- How tidewatch-provenance builds the model ------------------------------
-- The daemon decodes each event in C (lib/domain/tw_provrows) into one jsonb
-- document (parties, identifiers, and per line item its equipment with
-- every reading, and its hop) and calls prov_apply() once per batch with
-- the documents in the log's order, in the transaction that moves its
-- cursor. Identities are resolved here, event by event, and depend only on
-- the events applied before (never on arrival time or on another run), so a
-- replay from zero gives the same rows.
--
-- Corrections applied so far (one row per correction event): the target is
-- named by (source, source_ref) and may arrive later than its correction.
CREATE TABLE prov_corrections (
    correction_id  bigint PRIMARY KEY,   -- the correction's event id
    correction_tx  xid8 NOT NULL,        -- its events.tx (log order is (tx, id))
    target_source  text COLLATE "C" NOT NULL,
    target_ref     text COLLATE "C" NOT NULL,
    retraction     boolean NOT NULL      -- no replacement body
);
CREATE INDEX prov_corrections_target ON prov_corrections (target_source, target_ref);
CREATE INDEX prov_merges_event ON prov_merges (event_id);
CREATE INDEX prov_merges_into ON prov_merges (into_id);
CREATE INDEX prov_hops_corrects ON prov_hops (corrects) WHERE corrects IS NOT NULL;

-- The item a complete (non-partial) key names, or NULL. A reading with a
-- maker matches the key of that maker, else the key's only entry when that
-- one has no maker; a reading without a maker matches the key's only entry
-- whatever its maker, else the entry without a maker. Once matched, the key
-- as read (its maker included) is recorded for that item too, so a later
-- reading of another maker no longer finds a lone entry without a maker.
CREATE FUNCTION prov_key_item(p_kind smallint, p_key text, p_maker text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_item bigint;
    v_n bigint;
    v_maker text;
BEGIN
    IF p_maker <> '' THEN
        SELECT item_id INTO v_item FROM prov_item_keys
         WHERE key_kind = p_kind AND key = p_key AND maker = p_maker;
        IF FOUND THEN
            RETURN v_item;
        END IF;
    END IF;
    SELECT count(*), min(item_id), min(maker) INTO v_n, v_item, v_maker
      FROM prov_item_keys WHERE key_kind = p_kind AND key = p_key;
    IF v_n = 1 AND (p_maker = '' OR v_maker = '') THEN
        RETURN v_item;
    END IF;
    IF p_maker = '' AND v_n > 1 THEN
        SELECT item_id INTO v_item FROM prov_item_keys
         WHERE key_kind = p_kind AND key = p_key AND maker = '';
        IF FOUND THEN
            RETURN v_item;
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- root_id of every item in the merge groups of p_items, recomputed from the
-- merges still in force: the smallest item_id of each connected group. One
-- walk per resulting group, from its smallest item (linear in the merges).
CREATE FUNCTION prov_reroot(p_items bigint[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_left bigint[];
    v_start bigint;
    v_group bigint[];
BEGIN
    v_left := ARRAY(SELECT item_id FROM prov_items
                     WHERE root_id IN (SELECT root_id FROM prov_items
                                        WHERE item_id = ANY (p_items))
                     ORDER BY item_id);
    WHILE cardinality(v_left) > 0 LOOP
        v_start := v_left[1];
        WITH RECURSIVE r(n) AS (
            SELECT v_start
            UNION
            SELECT x.n FROM r CROSS JOIN LATERAL (
                SELECT g.into_id FROM prov_merges g WHERE g.item_id = r.n AND g.undone_by IS NULL
                UNION ALL
                SELECT g.item_id FROM prov_merges g WHERE g.into_id = r.n AND g.undone_by IS NULL
            ) x(n)
        )
        SELECT array_agg(n) INTO v_group FROM r;
        UPDATE prov_items SET root_id = v_start
         WHERE item_id = ANY (v_group) AND root_id <> v_start;
        v_left := ARRAY(SELECT x FROM unnest(v_left) x WHERE x <> ALL (v_group) ORDER BY x);
    END LOOP;
END $$;

-- first_seen, last_seen and the last place of p_items from their active
-- hops, by event time (ties: later event, later line).
CREATE FUNCTION prov_touch(p_items bigint[]) RETURNS void LANGUAGE sql AS $$
    UPDATE prov_items i
       SET first_seen = s.f, last_seen = s.l,
           last_lat = p.place_lat, last_lon = p.place_lon,
           last_place = coalesce(p.place_name, ''), last_country = coalesce(p.place_country, '')
      FROM (SELECT DISTINCT x AS id FROM unnest(p_items) x WHERE x IS NOT NULL) t
      LEFT JOIN LATERAL (SELECT min(h.occurred_at) AS f, max(h.occurred_at) AS l
                           FROM prov_hops h WHERE h.item_id = t.id AND h.status = 0) s ON true
      LEFT JOIN LATERAL (SELECT h.place_lat, h.place_lon, h.place_name, h.place_country
                           FROM prov_hops h
                          WHERE h.item_id = t.id AND h.status = 0
                            AND (h.place_name <> '' OR h.place_lat IS NOT NULL)
                          ORDER BY h.occurred_at DESC NULLS LAST, h.event_id DESC, h.line DESC
                          LIMIT 1) p ON true
     WHERE i.item_id = t.id
$$;

-- Apply one event (a document built by tw_provrows_json). Returns the items
-- whose hops it added or changed (their summaries are refreshed by the
-- caller, once per batch: they depend only on the hops).
CREATE FUNCTION prov_apply_event(ev jsonb) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (ev->>'id')::bigint;
    v_tx xid8 := (ev->>'tx')::xid8;
    v_src text := ev->>'source';
    v_ref text := ev->>'ref';
    v_first bigint;           -- first correction of this event already applied
    v_last bigint;            -- the last one (it decides the status)
    v_last_retraction boolean;
    v_status smallint := 0;
    v_corrected_by bigint;
    v_undone bigint;          -- merges proved by this event are born undone by it
    v_target bigint;          -- corrections: the corrected event, once applied
    v_sup bigint[];           -- corrections: the events whose effect they replace
    v_touched bigint[] := '{}';
    v_reroot bigint[];
    v_csrc text;
    v_cref text;
    v_retraction boolean;
    ln jsonb;
    eq jsonb;
    rd jsonb;
    v_line integer;
    v_item bigint;
    v_key_item bigint;
    v_matched bigint[];
    v_full boolean;
    v_partial boolean;
    v_reason text;
BEGIN
    SELECT correction_id INTO v_first FROM prov_corrections
     WHERE target_source = v_src AND target_ref = v_ref
     ORDER BY correction_tx, correction_id LIMIT 1;
    IF v_first IS NOT NULL THEN
        SELECT correction_id, retraction INTO v_last, v_last_retraction FROM prov_corrections
         WHERE target_source = v_src AND target_ref = v_ref
         ORDER BY correction_tx DESC, correction_id DESC LIMIT 1;
        v_status := CASE WHEN v_last_retraction THEN 2 ELSE 1 END;
        v_corrected_by := v_last;
        v_undone := v_first;
    END IF;

    IF ev->'corr' IS NOT NULL AND jsonb_typeof(ev->'corr') = 'object' THEN
        v_csrc := ev->'corr'->>'source';
        v_cref := ev->'corr'->>'ref';
        v_retraction := (ev->'corr'->>'retraction')::boolean;
        SELECT e.id INTO v_target FROM events e
         WHERE e.source = v_csrc AND e.source_ref = v_cref AND (e.tx, e.id) < (v_tx, v_id);
        v_sup := ARRAY(SELECT correction_id FROM prov_corrections
                        WHERE target_source = v_csrc AND target_ref = v_cref);
        IF v_target IS NOT NULL THEN
            v_sup := v_sup || v_target;
        END IF;
        INSERT INTO prov_corrections VALUES (v_id, v_tx, v_csrc, v_cref, v_retraction);
        WITH u AS (
            UPDATE prov_hops SET status = CASE WHEN v_retraction THEN 2 ELSE 1 END,
                                 corrected_by = v_id
             WHERE event_id = ANY (v_sup)
            RETURNING item_id)
        SELECT v_touched || coalesce(array_agg(item_id), '{}') INTO v_touched FROM u;
        WITH u AS (
            UPDATE prov_merges SET undone_by = v_id
             WHERE event_id = ANY (v_sup) AND undone_by IS NULL
            RETURNING item_id, into_id)
        SELECT coalesce(array_agg(item_id) || array_agg(into_id), '{}') INTO v_reroot FROM u;
        IF cardinality(v_reroot) > 0 THEN
            PERFORM prov_reroot(v_reroot);
        END IF;
    END IF;

    INSERT INTO prov_parties
    SELECT * FROM jsonb_populate_recordset(NULL::prov_parties, coalesce(ev->'parties', '[]'));
    INSERT INTO prov_party_identifiers
    SELECT DISTINCT * FROM jsonb_populate_recordset(NULL::prov_party_identifiers,
                                                    coalesce(ev->'idents', '[]'))
    ON CONFLICT DO NOTHING;

    FOR ln IN SELECT value FROM jsonb_array_elements(coalesce(ev->'lines', '[]')) LOOP
        v_line := (ln->>'line')::integer;
        v_item := NULL;
        eq := ln->'eq';
        IF eq IS NOT NULL AND jsonb_typeof(eq) = 'object' THEN
            v_matched := '{}';
            v_full := false;
            v_partial := false;
            FOR rd IN SELECT value FROM jsonb_array_elements(eq->'readings') LOOP
                CONTINUE WHEN rd->>'key' = '';
                IF (rd->>'partial')::boolean THEN
                    v_partial := true;
                    CONTINUE;
                END IF;
                v_full := true;
                v_key_item := prov_key_item((rd->>'key_kind')::smallint, rd->>'key', rd->>'maker');
                IF v_key_item IS NOT NULL AND NOT v_key_item = ANY (v_matched) THEN
                    v_matched := v_matched || v_key_item;
                END IF;
            END LOOP;
            IF v_full AND cardinality(v_matched) > 0 THEN
                v_item := (SELECT min(x) FROM unnest(v_matched) x);
            ELSIF v_full OR v_partial THEN
                v_item := v_id * 1024 + v_line;
                INSERT INTO prov_items (item_id, root_id, kind, maker, model, partial, first_event)
                VALUES (v_item, v_item, (eq->>'kind')::smallint, eq->>'maker', eq->>'model',
                        NOT v_full, v_id);
            END IF;
            IF cardinality(v_matched) > 1 THEN
                SELECT (eq->>'field') || ' read as '
                       || string_agg(r->>'key' || CASE WHEN r->>'mname' <> ''
                                                       THEN ' (' || (r->>'mname') || ')' ELSE '' END,
                                     ', ' ORDER BY o)
                  INTO v_reason
                  FROM jsonb_array_elements(eq->'readings') WITH ORDINALITY AS t(r, o)
                 WHERE r->>'key' <> '' AND NOT (r->>'partial')::boolean;
                INSERT INTO prov_merges (item_id, into_id, event_id, reason, undone_by)
                SELECT x, v_item, v_id, v_reason, v_undone FROM unnest(v_matched) x
                 WHERE x <> v_item
                ON CONFLICT DO NOTHING;
                IF v_undone IS NULL THEN
                    UPDATE prov_items SET root_id = m.r
                      FROM (SELECT min(root_id) AS r, array_agg(DISTINCT root_id) AS roots
                              FROM prov_items WHERE item_id = ANY (v_matched)) m
                     WHERE root_id = ANY (m.roots) AND root_id <> m.r;
                END IF;
            END IF;
            IF v_item IS NOT NULL THEN
                FOR rd IN SELECT value FROM jsonb_array_elements(eq->'readings') LOOP
                    v_key_item := v_item;
                    IF rd->>'key' <> '' THEN
                        IF (rd->>'partial')::boolean THEN
                            INSERT INTO prov_item_keys (key_kind, key, maker, item_id, loose, partial,
                                                        first_event)
                            VALUES ((rd->>'key_kind')::smallint, rd->>'key', rd->>'maker', v_item,
                                    rd->>'loose', true, v_id)
                            ON CONFLICT DO NOTHING;
                        ELSE
                            -- The key as read (with this reading's maker) now names
                            -- the item it matched, or the equipment's.
                            v_key_item := coalesce(prov_key_item((rd->>'key_kind')::smallint,
                                                                 rd->>'key', rd->>'maker'),
                                                   v_item);
                            INSERT INTO prov_item_keys (key_kind, key, maker, item_id, loose,
                                                        partial, first_event)
                            VALUES ((rd->>'key_kind')::smallint, rd->>'key', rd->>'maker',
                                    v_key_item, rd->>'loose', false, v_id)
                            ON CONFLICT DO NOTHING;
                        END IF;
                    END IF;
                    INSERT INTO prov_readings (event_id, field, item_id, key_kind, key, raw, method,
                                               completeness, format, maker, partial)
                    VALUES (v_id, rd->>'field', v_key_item, (rd->>'key_kind')::smallint,
                            rd->>'key', rd->>'raw', (rd->>'method')::smallint,
                            (rd->>'completeness')::smallint, rd->>'format', rd->>'maker',
                            (rd->>'partial')::boolean);
                END LOOP;
                v_touched := v_touched || v_item;
            END IF;
        END IF;
        INSERT INTO prov_hops
        SELECT * FROM jsonb_populate_record(NULL::prov_hops,
                    (ln->'hop') || jsonb_build_object('item_id', v_item, 'status', v_status,
                                                      'corrected_by', v_corrected_by,
                                                      'corrects', v_target));
    END LOOP;

    -- Corrections of this event applied before it: their hops now know it.
    IF v_first IS NOT NULL THEN
        UPDATE prov_hops SET corrects = v_id
         WHERE corrects IS NULL
           AND event_id IN (SELECT correction_id FROM prov_corrections
                             WHERE target_source = v_src AND target_ref = v_ref);
    END IF;
    RETURN v_touched;
END $$;

-- Apply a batch of event documents in the given (log) order.
CREATE FUNCTION prov_apply(p_events jsonb[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    ev jsonb;
    n integer := 0;
    v_touched bigint[] := '{}';
BEGIN
    FOREACH ev IN ARRAY p_events LOOP
        v_touched := v_touched || prov_apply_event(ev);
        n := n + 1;
    END LOOP;
    IF cardinality(v_touched) > 0 THEN
        PERFORM prov_touch(v_touched);
    END IF;
    RETURN n;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON prov_corrections TO tidewatch_provenance;
GRANT SELECT ON prov_corrections TO tidewatch_query;
REVOKE ALL ON FUNCTION prov_key_item(smallint, text, text), prov_reroot(bigint[]),
                       prov_touch(bigint[]), prov_apply_event(jsonb), prov_apply(jsonb[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prov_key_item(smallint, text, text), prov_reroot(bigint[]),
                          prov_touch(bigint[]), prov_apply_event(jsonb), prov_apply(jsonb[])
    TO tidewatch_provenance;
GRANT EXECUTE ON FUNCTION prov_key_item(smallint, text, text) TO tidewatch_query;
