-- Foundation: extensions the later migrations rely on.
-- pg_trgm powers partial-serial search (fuzzy matching of engine serials).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
