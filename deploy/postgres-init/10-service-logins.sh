#!/bin/sh
# Runs once, when the Compose PostgreSQL volume is created (the postgres
# image's entrypoint runs /docker-entrypoint-initdb.d/*, as POSTGRES_USER, on
# a temporary server that listens on its unix socket only).
#
# Each daemon logs in as its own user, a member of the group role to which
# the migrations grant what that service needs (least privilege); provenance
# and alerts each have their own role (each may move only its own cursor,
# see migrations/0004_roles_and_horizon.sql). The group roles are created
# here too so the memberships can be granted before the first migration;
# the migrations create them only if missing.
#
# Passwords come from the environment (docker-compose.yml passes the same
# variables to the daemons); the defaults are for a local stack only. psql
# reads them from the environment (\getenv) and quotes them: they appear in
# no command line.
set -eu

: "${TW_INGEST_PASSWORD:=tw_ingest}"
: "${TW_QUERY_PASSWORD:=tw_query}"
: "${TW_PROVENANCE_PASSWORD:=tw_provenance}"
: "${TW_ALERTS_PASSWORD:=tw_alerts}"

export TW_INGEST_PASSWORD TW_QUERY_PASSWORD TW_PROVENANCE_PASSWORD TW_ALERTS_PASSWORD
psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv pw_ingest TW_INGEST_PASSWORD
\getenv pw_query TW_QUERY_PASSWORD
\getenv pw_provenance TW_PROVENANCE_PASSWORD
\getenv pw_alerts TW_ALERTS_PASSWORD
DO $$
DECLARE
    g text;
BEGIN
    FOREACH g IN ARRAY ARRAY['tidewatch_ingest', 'tidewatch_consumer', 'tidewatch_query',
                             'tidewatch_provenance', 'tidewatch_alerts'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = g) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', g);
        END IF;
    END LOOP;
END $$;
GRANT tidewatch_consumer TO tidewatch_provenance, tidewatch_alerts;
CREATE ROLE tw_ingest LOGIN PASSWORD :'pw_ingest' IN ROLE tidewatch_ingest;
CREATE ROLE tw_query LOGIN PASSWORD :'pw_query' IN ROLE tidewatch_query;
CREATE ROLE tw_provenance LOGIN PASSWORD :'pw_provenance' IN ROLE tidewatch_provenance;
CREATE ROLE tw_alerts LOGIN PASSWORD :'pw_alerts' IN ROLE tidewatch_alerts;
-- A session idle inside a transaction holds back the event log for every
-- consumer (tw_pg sets this on the daemons' connections too; this covers
-- anything else that logs in as them).
ALTER ROLE tw_ingest SET idle_in_transaction_session_timeout = '1min';
ALTER ROLE tw_query SET idle_in_transaction_session_timeout = '1min';
ALTER ROLE tw_provenance SET idle_in_transaction_session_timeout = '1min';
ALTER ROLE tw_alerts SET idle_in_transaction_session_timeout = '1min';
SQL
