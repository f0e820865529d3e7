-- The event log: append-only, the source of truth every derived table is
-- rebuilt from. One row per accepted record.
CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The inserting transaction. Consumers read in (tx, id) order and only
    -- below the oldest transaction still in progress, so an event whose
    -- transaction commits late is never skipped (see events_after below).
    tx           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- References compare byte for byte (COLLATE "C"): they are identifiers,
    -- not words, and the unique index is probed for every record.
    source       text COLLATE "C" NOT NULL CHECK (length(source) BETWEEN 1 AND 128),
    source_ref   text COLLATE "C" NOT NULL CHECK (length(source_ref) BETWEEN 1 AND 128),
    -- 1 purchase, 2 shipment, 3 seizure, 4 correction
    kind         smallint NOT NULL CHECK (kind BETWEEN 1 AND 4),
    occurred_at  timestamptz,
    received_at  timestamptz NOT NULL DEFAULT now(),
    -- The authenticated submitter, once auth exists.
    principal    text,
    -- The corrected event, for corrections.
    corrects     bigint REFERENCES events (id),
    -- Normalised keys consumers look up (engine serial keys, hull keys).
    -- Not indexed here: the log is read in order by its consumers, and
    -- provenance keeps the searchable, indexed model.
    serial_keys  text[] NOT NULL DEFAULT '{}',
    hull_keys    text[] NOT NULL DEFAULT '{}',
    -- What ingest derived with Tidewatch's rules and consumers need: keys
    -- per reading, hull decodes, resolved places, warning codes; a packed
    -- tidewatch.v1.DerivedRecord (proto/tidewatch/v1/derived.proto). Binary
    -- because it is written once per record on the hot path and read whole
    -- by consumers in C, never searched in place.
    derived      bytea NOT NULL DEFAULT '',
    -- The tidewatch.v1.Record exactly as submitted (protobuf).
    payload      bytea NOT NULL,
    UNIQUE (source, source_ref)
);
CREATE INDEX events_tx_id ON events (tx, id);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: corrections are new records';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Rejected records wait here with their reasons, never in the log. A
-- resubmission under the same (source, source_ref) replaces the row; once
-- accepted, resolved_event points at the event.
CREATE TABLE quarantine (
    source          text COLLATE "C" NOT NULL,
    source_ref      text COLLATE "C" NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 1,
    principal       text,
    errors          json NOT NULL,
    payload         bytea NOT NULL,
    resolved_event  bigint REFERENCES events (id),
    PRIMARY KEY (source, source_ref)
);
-- What still waits for a fix: every accepted batch looks here.
CREATE INDEX quarantine_unresolved ON quarantine (source, source_ref)
    WHERE resolved_event IS NULL;

-- Where each consumer has got to, committed with its derived writes.
CREATE TABLE consumer_cursors (
    consumer    text PRIMARY KEY,
    last_tx     xid8 NOT NULL DEFAULT '0',
    last_id     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events after the cursor (after_tx, after_id), in (tx, id) order, limited
-- to transactions older than every transaction still running: those can no
-- longer change, so reading by this cursor never skips a late commit.
CREATE FUNCTION events_after(after_tx xid8, after_id bigint, max_rows integer)
RETURNS SETOF events LANGUAGE sql STABLE AS $$
    SELECT * FROM events
    WHERE (tx, id) > (after_tx, after_id)
      AND tx < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY tx, id
    LIMIT max_rows
$$;

-- Group roles, one per service, with the least each needs. Deployments
-- create LOGIN users that are members of these.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tidewatch_ingest') THEN
        CREATE ROLE tidewatch_ingest NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tidewatch_consumer') THEN
        CREATE ROLE tidewatch_consumer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tidewatch_query') THEN
        CREATE ROLE tidewatch_query NOLOGIN;
    END IF;
END $$;

-- ingest appends events and writes quarantine; it reads events only to
-- answer duplicates.
GRANT SELECT, INSERT ON events TO tidewatch_ingest;
GRANT SELECT, INSERT, UPDATE ON quarantine TO tidewatch_ingest;
-- provenance and alerts read the log and keep their cursors.
GRANT SELECT ON events TO tidewatch_consumer;
GRANT EXECUTE ON FUNCTION events_after(xid8, bigint, integer) TO tidewatch_consumer;
GRANT SELECT, INSERT, UPDATE ON consumer_cursors TO tidewatch_consumer;
-- query reads.
GRANT SELECT ON events, quarantine TO tidewatch_query;
