-- Runs once when the Compose PostgreSQL volume is created. Each daemon logs
-- in as its own user, a member of the group role to which the migrations
-- grant what that service needs (least privilege). The group roles are
-- created here too so the memberships can be granted before the first
-- migration; the migrations create them only if missing.
-- Passwords are for a local stack: change them for anything else.
DO $$
DECLARE
    g text;
BEGIN
    FOREACH g IN ARRAY ARRAY['tidewatch_ingest', 'tidewatch_consumer', 'tidewatch_query'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = g) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', g);
        END IF;
    END LOOP;
END $$;
CREATE ROLE tw_ingest LOGIN PASSWORD 'tw_ingest' IN ROLE tidewatch_ingest;
CREATE ROLE tw_provenance LOGIN PASSWORD 'tw_provenance' IN ROLE tidewatch_consumer;
CREATE ROLE tw_alerts LOGIN PASSWORD 'tw_alerts' IN ROLE tidewatch_consumer;
CREATE ROLE tw_query LOGIN PASSWORD 'tw_query' IN ROLE tidewatch_query;
