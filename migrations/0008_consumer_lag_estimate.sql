-- consumer_lag() (0004) counted the events after each cursor one by one, up
-- to max_events (1,000,000 by default in lib/db/tw_consumer). A consumer far
-- behind is exactly when that hurts: on a 5,000,000-event replay the count
-- took about a second of CPU at every poll, on the consumer's own connection,
-- and halved its apply rate. Now the count is exact up to 10,000 events
-- (milliseconds), and above that an estimate from the ids: the newest id
-- minus the cursor's (ids are assigned in insertion order; transactions that
-- commit out of order make it approximate, never below the 10,000 counted),
-- still capped at max_events. lag_seconds is unchanged (one index probe).
CREATE OR REPLACE FUNCTION consumer_lag(max_events bigint)
RETURNS TABLE (consumer text, lag_events bigint, lag_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT c.consumer,
           CASE WHEN n.counted < least(greatest(max_events, 0), 10000) THEN n.counted
                ELSE least(greatest(max_events, 0),
                           greatest(n.counted, (SELECT max(e.id) FROM events e) - c.last_id))
           END,
           coalesce((SELECT greatest(0, extract(epoch FROM now() - e.received_at))::float8
                     FROM events e
                     WHERE (e.tx, e.id) > (c.last_tx, c.last_id)
                     ORDER BY e.tx, e.id LIMIT 1), 0)
    FROM consumer_cursors c
    CROSS JOIN LATERAL (SELECT count(*) AS counted
                        FROM (SELECT FROM events e
                              WHERE (e.tx, e.id) > (c.last_tx, c.last_id)
                              LIMIT least(greatest(max_events, 0), 10000)) x) n
    ORDER BY c.consumer
$$;
-- CREATE OR REPLACE drops the function's settings: pin the search path again
-- (as 0004 did); its owner and grants stay.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION consumer_lag(bigint) SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
END $$;
