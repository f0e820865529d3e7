-- Ingest integrity (issue 6): what a correction names, and what each record
-- said.
--
-- Corrections. 0002's `corrects` held the corrected event's id, looked up
-- with the inserting statement's snapshot: a target in the same group
-- commit, or committed meanwhile by the other connection, was invisible and
-- the link stayed NULL for ever. A correction now stores what it names,
-- (corrects_source, corrects_ref), and readers resolve it by that key when
-- they read, so it does not matter which of the two arrives first.
-- `corrects` stays for compatibility but is no longer written (NULL in
-- every event ingested from now on); use the view event_corrections or the
-- two columns. Ingest only accepts a correction of a record of the
-- correction's own source (EPCIS: error declarations come from the party
-- that declared the event), so corrects_source equals source today; it is
-- stored anyway so the rule can widen (an administrator's retraction)
-- without a schema change.
--
-- Digest. A SHA-256 of the record re-encoded canonically (protobuf-c packs
-- fields in number order, without defaults), so that a resubmission under
-- the same (source, source_ref) with different content is answered CONFLICT
-- instead of DUPLICATE. NULL for events ingested before this migration
-- (their resubmissions stay DUPLICATE).
--
-- No existing row is rewritten: the log is append-only.
ALTER TABLE events
    ADD COLUMN corrects_source text COLLATE "C",
    ADD COLUMN corrects_ref    text COLLATE "C",
    ADD COLUMN digest          bytea,
    ADD CONSTRAINT events_corrects_named CHECK ((corrects_source IS NULL) = (corrects_ref IS NULL)),
    ADD CONSTRAINT events_digest_sha256 CHECK (digest IS NULL OR octet_length(digest) = 32);

COMMENT ON COLUMN events.corrects IS
    'Deprecated (0003): no longer written; see corrects_source, corrects_ref and event_corrections';
COMMENT ON COLUMN events.corrects_source IS
    'For corrections: the source of the record corrected or retracted';
COMMENT ON COLUMN events.corrects_ref IS
    'For corrections: the source_ref of the record corrected or retracted';
COMMENT ON COLUMN events.digest IS
    'SHA-256 of the record re-encoded canonically; NULL before migration 0003';

-- A record that arrives after its corrections finds them here.
CREATE INDEX events_corrects ON events (corrects_source, corrects_ref)
    WHERE corrects_source IS NOT NULL;

-- Every correction with its target resolved now: target_id is NULL while
-- the corrected record is not (yet) in the log, and set as soon as it is.
-- Corrections ingested before 0003 resolve through their old `corrects`.
CREATE VIEW event_corrections AS
SELECT c.id AS correction_id,
       c.tx AS correction_tx,
       c.source AS source,
       coalesce(c.corrects_source, o.source) AS target_source,
       coalesce(c.corrects_ref, o.source_ref) AS target_ref,
       coalesce(t.id, c.corrects) AS target_id
FROM events c
LEFT JOIN events o ON o.id = c.corrects
LEFT JOIN events t ON t.source = c.corrects_source AND t.source_ref = c.corrects_ref
WHERE c.kind = 4;

GRANT SELECT ON event_corrections TO tidewatch_consumer, tidewatch_query;
