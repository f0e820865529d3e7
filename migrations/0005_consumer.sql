-- The log consumer's guarded cursor move (lib/db/tw_consumer.c).
--
-- A consumer commits its derived writes and its new cursor in one
-- transaction, and moves the cursor only from where it read the batch:
-- consumer_advance() updates the row only if it still holds (old_tx,
-- old_id), and raises SQLSTATE TWC01 otherwise, which rolls back the whole
-- transaction (derived writes included). Two instances of one consumer
-- therefore never both apply the same batch: the consumer runs this first
-- in its transaction, so it also takes the row lock before any derived
-- write, and a second instance waits on that lock, then finds the cursor
-- moved and fails without having written anything.
--
-- Not SECURITY DEFINER: it runs as the caller, so row-level security
-- (0004) still confines each consumer to its own cursor row; another
-- consumer's row is invisible to the UPDATE and the call raises.
CREATE FUNCTION consumer_advance(p_consumer text, p_old_tx xid8, p_old_id bigint,
                                 p_new_tx xid8, p_new_id bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE consumer_cursors
       SET last_tx = p_new_tx, last_id = p_new_id, updated_at = now()
     WHERE consumer = p_consumer AND last_tx = p_old_tx AND last_id = p_old_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%": the cursor is no longer at (%, %): another instance moved it',
                        p_consumer, p_old_tx, p_old_id
              USING ERRCODE = 'TWC01';
    END IF;
END $$;

REVOKE ALL ON FUNCTION consumer_advance(text, xid8, bigint, xid8, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consumer_advance(text, xid8, bigint, xid8, bigint) TO tidewatch_consumer;
