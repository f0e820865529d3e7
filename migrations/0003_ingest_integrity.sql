-- THROWAWAY STUB (branch db): only the three columns 0004_roles_and_horizon.sql
-- grants to the ingest role. The real 0003_ingest_integrity.sql (ingest
-- branch) replaces this file at merge.
ALTER TABLE events ADD COLUMN IF NOT EXISTS corrects_source text;
ALTER TABLE events ADD COLUMN IF NOT EXISTS corrects_ref text;
ALTER TABLE events ADD COLUMN IF NOT EXISTS digest bytea;
