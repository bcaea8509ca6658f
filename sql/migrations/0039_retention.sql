-- depends: 0038_unread_order_indexes
--
-- Rows whose work is done, deleted after a grace period so the two tables every order writes
-- stop growing without end (streams/retention.py calls these on a timer):
--   * outbox rows the relay published (Kafka holds the record now) or a cancel withdrew; a
--     pending row is never deleted, however old (an after-market order waits for the open);
--   * idempotency keys older than the window in which a client may retry with the same key.
--     A retry after that is a new request. order_place answers a key deleted between its claim
--     and its read with BR409 idempotency_race ("retry").
-- Each call deletes at most p_limit rows, oldest first, so it holds its locks briefly however
-- far behind it is; the caller calls again while calls come back full.

-- The outbox has no index on time, and adding one would cost every order an index entry. Ids
-- grow with insertion and created_at with them (up to the length of one transaction), so a
-- binary search over the primary key finds the first row younger than the cut-off in a few
-- dozen index probes; the done rows are then read in id order below it.
CREATE OR REPLACE FUNCTION outbox_purge(p_age interval, p_limit integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_cutoff timestamptz := now() - p_age;
    v_low bigint;
    v_high bigint;
    v_mid bigint;
    v_id bigint;
    v_created timestamptz;
    v_deleted bigint;
BEGIN
    SELECT min(id), max(id) + 1 INTO v_low, v_high FROM outbox;
    IF v_low IS NULL THEN
        RETURN 0;
    END IF;
    -- Rows below v_low are older than the cut-off; rows from v_high on are not.
    WHILE v_low < v_high LOOP
        v_mid := v_low + (v_high - v_low) / 2;
        SELECT o.id, o.created_at INTO v_id, v_created
            FROM outbox o WHERE o.id >= v_mid ORDER BY o.id LIMIT 1;
        IF v_id IS NOT NULL AND v_created < v_cutoff THEN
            v_low := v_id + 1;
        ELSE
            v_high := v_mid;
        END IF;
    END LOOP;
    DELETE FROM outbox WHERE id IN (
        SELECT o.id FROM outbox o
        WHERE o.id < v_low AND (o.published_at IS NOT NULL OR o.canceled_at IS NOT NULL)
        ORDER BY o.id LIMIT p_limit);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

CREATE OR REPLACE FUNCTION idempotency_keys_purge(p_age interval, p_limit integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM idempotency_keys k
        USING (SELECT o.user_id, o.key FROM idempotency_keys o
               WHERE o.created_at < now() - p_age ORDER BY o.created_at LIMIT p_limit) AS old
        WHERE k.user_id = old.user_id AND k.key = old.key;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;
