-- The audit of investigators' calls (issue 7): tidewatch-query writes one
-- row per call to tidewatch.v1.ProvenanceService, answered or refused
-- (INVALID_ARGUMENT, NOT_FOUND, DEADLINE_EXCEEDED, cancelled ...), before
-- the answer leaves: a call whose row cannot be written is answered
-- UNAVAILABLE. Append-only: nobody updates or deletes a row (a trigger
-- refuses it, superusers included, as for events).
--
-- The database fills what the daemon must not choose: id, at (the
-- server's clock) and db_login (the service login that wrote the row).
-- principal stays NULL until gRPC authentication exists; it will then hold
-- the authenticated caller the daemon attests.
CREATE TABLE query_audit (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    db_login      text NOT NULL DEFAULT session_user,
    peer          text NOT NULL,                 -- "ip:port" of the caller
    principal     text,                          -- NULL until auth exists
    method        text NOT NULL,                 -- "/tidewatch.v1.ProvenanceService/GetChain"
    arguments     jsonb NOT NULL,                -- the request as JSON (proto field names)
    result_count  integer NOT NULL DEFAULT 0,    -- chains, items, events, hops answered
    status        smallint NOT NULL,             -- gRPC status code sent
    message       text NOT NULL DEFAULT '',      -- the status message
    duration_ms   double precision NOT NULL DEFAULT 0
);
CREATE INDEX query_audit_at ON query_audit (at);
CREATE INDEX query_audit_method_at ON query_audit (method, at);

CREATE FUNCTION query_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'query_audit is append-only';
END $$;
CREATE TRIGGER query_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON query_audit
    FOR EACH STATEMENT EXECUTE FUNCTION query_audit_append_only();

-- tidewatch_query reads the log and the derived tables (0002, 0006) and may
-- only add audit rows, naming only its own columns (never id, at, db_login).
REVOKE ALL ON query_audit FROM tidewatch_query;
GRANT INSERT (peer, principal, method, arguments, result_count, status, message, duration_ms)
    ON query_audit TO tidewatch_query;

-- GetParty lists a cluster's hops as seller, buyer or carrier; 0006 indexes
-- the first two (a carrier's hops would otherwise be a scan of every hop).
CREATE INDEX prov_hops_carrier ON prov_hops (carrier_party) WHERE carrier_party IS NOT NULL;
