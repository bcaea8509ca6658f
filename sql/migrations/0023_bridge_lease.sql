-- depends: 0022_ledger_balance_per_statement_rows
--
-- The FIX bridge's leader lease: one row per FIX session (the bridge's SenderCompID).
--
-- Several bridge processes run; the one holding an unexpired lease is the only one allowed to
-- hold the FIX session. Every takeover increments epoch, the fencing token: the leader renews
-- with "WHERE holder = me AND epoch = my epoch", and every write that precedes a message to the
-- exchange (sent_orders) is made conditional on that epoch and an unexpired lease in the same
-- statement, so a leader that was paused and lost the lease cannot record (nor send) an order.
-- expires_at is set by the database clock (clock_timestamp() + ttl), never a process's clock.
CREATE TABLE IF NOT EXISTS bridge_lease (
    session_id  text        PRIMARY KEY,
    holder      text,
    epoch       bigint      NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL DEFAULT '-infinity',
    acquired_at timestamptz
);

-- Which leader (lease epoch) recorded the order as sent; NULL for rows older than the lease.
ALTER TABLE sent_orders ADD COLUMN IF NOT EXISTS lease_epoch bigint;
