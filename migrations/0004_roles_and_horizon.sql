-- Least privilege on the event log, one role per consumer, and what the
-- daemons need to report the log's horizon in /metrics.
--
-- The consumers' rule (read, then write, in ONE transaction):
--   A consumer reads a batch with events_after(last_tx, last_id, n), then
--   writes its derived rows AND its new cursor (consumer_cursors.last_tx,
--   last_id of the last event it applied) and commits them together, so a
--   crash never loses or doubles an effect. It keeps that transaction short:
--   no waiting for the network or a person inside it.
--   events_after() only returns events of transactions older than every
--   transaction still running ANYWHERE in the cluster (transaction ids are
--   cluster-wide), so any long-open writing transaction, in any database,
--   by any user, holds every consumer back until it ends. The daemons'
--   connections therefore run with idle_in_transaction_session_timeout (set
--   by tw_pg on every connection, and on the service logins by
--   deploy/local.sh and deploy/postgres-init), and /metrics exports
--   tidewatch_log_oldest_xact_seconds and the consumers' lag (below).

-- ---- Roles ---------------------------------------------------------------
-- One group role per consumer, each a member of tidewatch_consumer (which
-- may read the log), so that row-level security can give each consumer its
-- own cursor row and nothing else. Roles are cluster-wide: migrations of two
-- databases of one cluster may run at the same moment (tests do), hence the
-- exception handlers.
DO $$
DECLARE
    g text;
BEGIN
    FOREACH g IN ARRAY ARRAY['tidewatch_provenance', 'tidewatch_alerts'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = g) THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', g);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by another database's migration
        END;
        BEGIN
            IF NOT pg_has_role(g, 'tidewatch_consumer', 'MEMBER') THEN
                EXECUTE format('GRANT tidewatch_consumer TO %I', g);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END $$;

-- ---- The event log: what ingest may write ---------------------------------
-- ingest names the record and what it derived; the database alone fills
-- the columns consumers and auditors trust: id (identity), tx (the
-- inserting transaction: a row with tx = 0 would sort behind every cursor
-- and never be read), received_at (now()) and principal (the database
-- login that appended the row, session_user: it cannot be set by SET ROLE
-- nor by the inserting statement). Column privileges are checked when a
-- statement is parsed: an INSERT that names any other column is refused
-- ("permission denied for table events"), whatever the value.
--
-- Once gRPC authentication exists, the authenticated caller (token subject
-- or certificate name) is recorded in a separate column added then (e.g.
-- submitted_by text, insertable by tidewatch_ingest): it is what ingest
-- attests, per record (a group commit mixes callers), while principal stays
-- what the database itself attests: which service login wrote the row.
REVOKE ALL ON events FROM tidewatch_ingest;
GRANT SELECT ON events TO tidewatch_ingest;
GRANT INSERT (source, source_ref, kind, occurred_at, corrects, corrects_source, corrects_ref,
              digest, serial_keys, hull_keys, derived, payload)
    ON events TO tidewatch_ingest;
ALTER TABLE events ALTER COLUMN principal SET DEFAULT session_user;

-- ---- Consumer cursors: each consumer its own row ---------------------------
-- tidewatch_consumer keeps its table privileges; row-level security limits
-- every member to the rows of its own consumer. alerts may also read
-- provenance's cursor (it never evaluates an event provenance has not yet
-- applied). A member of tidewatch_consumer with no policy of its own sees
-- and writes no row. The table owner (the migration role) and superusers
-- bypass these policies. A new consumer gets its role and policy in a
-- migration of its own.
ALTER TABLE consumer_cursors ENABLE ROW LEVEL SECURITY;
CREATE POLICY provenance_own ON consumer_cursors TO tidewatch_provenance
    USING (consumer = 'provenance') WITH CHECK (consumer = 'provenance');
CREATE POLICY alerts_own ON consumer_cursors TO tidewatch_alerts
    USING (consumer = 'alerts') WITH CHECK (consumer = 'alerts');
CREATE POLICY alerts_reads_provenance ON consumer_cursors FOR SELECT TO tidewatch_alerts
    USING (consumer = 'provenance');

-- ---- Horizon metrics -------------------------------------------------------
-- Cluster-wide transaction ages, in seconds (0 when there is none), leaving
-- out the calling session:
--   xact_seconds      the oldest transaction that holds a transaction id
--                     (it has written, or is a prepared transaction):
--                     events_after() reads nothing past it;
--   snapshot_seconds  the oldest transaction that holds a snapshot (any open
--                     transaction, readers too): it holds back vacuum.
-- SECURITY DEFINER: other users' sessions show in pg_stat_activity only to
-- superusers and members of pg_read_all_stats, so the owner (the role that
-- runs the migrations) must be one of those; the daemons get EXECUTE only.
CREATE FUNCTION log_horizon_ages(OUT xact_seconds double precision,
                                 OUT snapshot_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT (SELECT greatest(0, coalesce(extract(epoch FROM now() - min(t)), 0))::float8
            FROM (SELECT xact_start AS t FROM pg_stat_activity
                  WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
                  UNION ALL
                  SELECT prepared FROM pg_prepared_xacts) w),
           (SELECT greatest(0, coalesce(extract(epoch FROM now() - min(xact_start)), 0))::float8
            FROM pg_stat_activity
            WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
              AND pid <> pg_backend_pid())
$$;

-- Per consumer: how many committed events follow its cursor (counted up to
-- max_events, so a far-behind consumer costs a bounded scan), and how many
-- seconds ago the first of them (in the order consumers read) was received;
-- 0 and 0 for a consumer that is caught up. Events of a transaction still
-- running elsewhere are not committed, so they do not count; committed
-- events held back by such a transaction do, and their age keeps growing.
CREATE FUNCTION consumer_lag(max_events bigint)
RETURNS TABLE (consumer text, lag_events bigint, lag_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT c.consumer,
           (SELECT count(*) FROM (SELECT FROM events e
                                  WHERE (e.tx, e.id) > (c.last_tx, c.last_id)
                                  LIMIT greatest(max_events, 0)) n),
           coalesce((SELECT greatest(0, extract(epoch FROM now() - e.received_at))::float8
                     FROM events e
                     WHERE (e.tx, e.id) > (c.last_tx, c.last_id)
                     ORDER BY e.tx, e.id LIMIT 1), 0)
    FROM consumer_cursors c
    ORDER BY c.consumer
$$;
-- Pin the search path to the schema the log lives in (where these
-- migrations ran), with pg_temp last so no caller's temporary table can
-- stand in for events or consumer_cursors.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION consumer_lag(bigint) SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') THEN
        RAISE WARNING 'log_horizon_ages() runs as %, which cannot see other users'' sessions: '
                      'make it a member of pg_read_all_stats', current_user;
    END IF;
END $$;

REVOKE ALL ON FUNCTION log_horizon_ages() FROM PUBLIC;
REVOKE ALL ON FUNCTION consumer_lag(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_horizon_ages(), consumer_lag(bigint)
    TO tidewatch_ingest, tidewatch_consumer, tidewatch_query;
