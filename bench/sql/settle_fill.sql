-- One BUY fill settled the way the settle agent settles it (pgbench custom-script mode),
-- statement for statement: what streams/settlement.py and core/ledger.py send to PostgreSQL
-- for one fill of a working order funded from available cash (the benchmark's orders carry no
-- reserve), in order. Values the agent computes in Python (cost, fee, new average price, order
-- fields) are passed with -D or taken from the locked order row, so the rows stay valid.
--
-- Set by bench/streams_fills.py with -D: orders (how many pgbench orders; their ids are
-- md5('pgbench-fill-' || n) as uuid), run (keeps exec ids unique across runs), qty, px, cost,
-- fee, currency.
\set n random(1, :orders)
\set nonce random(1, 9223372036854775806)
BEGIN;
-- _lock_order
SELECT id, user_id, symbol, side, quantity, status, cum_qty, filled_notional, reserved_amount,
        final_status_pending, final_cum_qty_pending, reject_reason
    FROM orders WHERE id = CAST(md5('pgbench-fill-' || CAST(:n AS text)) AS uuid) FOR UPDATE
    \gset o_
-- ledger.post(FILL): journal transaction (exec id unique), its entries, the wallet projection
INSERT INTO journal_txns (kind, reference, order_id, exec_id, external_ref)
    VALUES ('FILL', 'BUY ' || CAST(:qty AS text) || ' ' || CAST(:o_symbol AS text) || ' @ '
        || CAST(:px AS text), CAST(:o_id AS uuid),
        CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-' || CAST(:nonce AS text),
        NULL)
    ON CONFLICT DO NOTHING RETURNING id AS txn_id \gset
INSERT INTO journal_entries (txn_id, account_id, amount)
    SELECT CAST(:txn_id AS uuid), a.id, e.amount
    FROM unnest(CAST(ARRAY[:o_user_id, NULL, :o_user_id, NULL] AS bigint[]),
        CAST(ARRAY['CASH_AVAILABLE', 'EXCHANGE_CLEARING', 'CASH_AVAILABLE', 'FEES'] AS text[]),
        CAST(ARRAY[-CAST(:cost AS numeric), CAST(:cost AS numeric), -CAST(:fee AS numeric),
            CAST(:fee AS numeric)] AS numeric[]))
        AS e(user_id, kind, amount)
    JOIN ledger_accounts a ON a.kind = e.kind AND a.currency = :currency
        AND a.user_id IS NOT DISTINCT FROM e.user_id;
UPDATE wallets SET balance = balance + (-CAST(:cost AS numeric) - CAST(:fee AS numeric)),
        locked_balance = locked_balance + 0, updated_at = now()
    WHERE user_id = CAST(:o_user_id AS bigint);
-- _record_execution
INSERT INTO executions (exec_id, order_id, symbol, side, last_qty, last_px, fee, executed_at,
        journal_txn_id, settled_at)
    VALUES (CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-' || CAST(:nonce AS text),
        CAST(:o_id AS uuid), :o_symbol, 'BUY', CAST(:qty AS bigint), CAST(:px AS numeric),
        CAST(:fee AS numeric), now(), CAST(:txn_id AS uuid), now())
    ON CONFLICT (exec_id) DO UPDATE SET journal_txn_id = EXCLUDED.journal_txn_id,
        settled_at = EXCLUDED.settled_at WHERE executions.settled_at IS NULL RETURNING id;
-- _buy_holding (the bench creates the holding rows, so it is the UPDATE branch)
SELECT quantity, avg_buy_price FROM holdings
    WHERE user_id = CAST(:o_user_id AS bigint) AND symbol = :o_symbol FOR UPDATE;
UPDATE holdings SET quantity = quantity + CAST(:qty AS bigint),
        avg_buy_price = CAST(:px AS numeric), updated_at = now()
    WHERE user_id = CAST(:o_user_id AS bigint) AND symbol = :o_symbol;
-- _update_order (the order's own values back: the bench's orders never fill up)
UPDATE orders SET status = 'PARTIALLY_FILLED', cum_qty = CAST(:o_cum_qty AS bigint),
        filled_notional = CAST(:o_filled_notional AS numeric), avg_px = COALESCE(NULL, avg_px),
        reserved_amount = CAST(:o_reserved_amount AS numeric), final_status_pending = NULL,
        final_cum_qty_pending = NULL, reject_reason = NULL, updated_at = now()
    WHERE id = CAST(:o_id AS uuid);
END;
