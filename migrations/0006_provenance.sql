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
