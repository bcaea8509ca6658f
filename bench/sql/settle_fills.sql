-- One batch of BUY fills settled the way the settle agent settles a lane (pgbench custom-script
-- mode), statement for statement: what streams/settlement_batch.py sends to PostgreSQL for a
-- batch of fills of working orders funded from available cash (the benchmark's orders carry no
-- reserve): lock the orders, the wallets and the holdings, look the exec ids up, and one call of
-- settle_apply (sql/migrations/0019_settle_batch.sql). What the agent computes in Python (cost,
-- fee, average prices, order fields) is computed here in SQL from the locked rows, so the rows
-- written stay valid; the document has the agent's shape.
--
-- Set by bench/streams_fills.py with -D: batch (fills per transaction), per_order (fills per
-- order), run (keeps exec ids unique across runs), qty, px, cost, fee, currency. Client c settles
-- its own orders md5('pgbench-fill-c-k') as uuid, k < batch / per_order, of its own users, as a
-- lane of the agent settles its own users' orders.
\set nonce random(1, 9223372036854775806)
BEGIN;
-- the batch's orders, wallets and holdings, each locked in key order
SELECT id, user_id, symbol, side, quantity, status, cum_qty, filled_notional, reserved_amount,
        final_status_pending, final_cum_qty_pending, reject_reason
    FROM orders WHERE id = ANY(ARRAY(
        SELECT CAST(md5('pgbench-fill-' || CAST(:client_id AS text) || '-' || CAST(k AS text))
            AS uuid)
        FROM generate_series(0, CAST(:batch AS int) / CAST(:per_order AS int) - 1) AS k))
    ORDER BY id FOR UPDATE;
SELECT user_id, balance, locked_balance FROM wallets WHERE user_id = ANY(ARRAY(
    SELECT user_id FROM orders WHERE id = ANY(ARRAY(
            SELECT CAST(md5('pgbench-fill-' || CAST(:client_id AS text) || '-' || CAST(k AS text))
                AS uuid)
            FROM generate_series(0, CAST(:batch AS int) / CAST(:per_order AS int) - 1) AS k))))
    ORDER BY user_id FOR UPDATE;
SELECT h.user_id, h.symbol, h.quantity, h.locked_quantity, h.avg_buy_price, h.realized_pnl
    FROM holdings h JOIN (SELECT DISTINCT user_id, symbol FROM orders WHERE id = ANY(ARRAY(
            SELECT CAST(md5('pgbench-fill-' || CAST(:client_id AS text) || '-' || CAST(k AS text))
                AS uuid)
            FROM generate_series(0, CAST(:batch AS int) / CAST(:per_order AS int) - 1) AS g(k)))) AS k
        ON h.user_id = k.user_id AND h.symbol = k.symbol
    ORDER BY h.user_id, h.symbol FOR UPDATE OF h;
SELECT exec_id, true FROM journal_txns WHERE exec_id = ANY(ARRAY(
        SELECT CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-'
            || CAST(:nonce AS text) || '-' || CAST(i AS text)
        FROM generate_series(0, CAST(:batch AS int) - 1) AS i))
UNION ALL SELECT exec_id, false FROM executions WHERE exec_id = ANY(ARRAY(
        SELECT CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-'
            || CAST(:nonce AS text) || '-' || CAST(i AS text)
        FROM generate_series(0, CAST(:batch AS int) - 1) AS i)) AND settled_at IS NOT NULL;
-- the fills: fill i is step (i % per_order) + 1 of order i / per_order
WITH b AS MATERIALIZED (
    SELECT i, i % CAST(:per_order AS int) + 1 AS step, o.id AS order_id, o.user_id, o.symbol,
        o.cum_qty, o.filled_notional, o.reserved_amount, gen_random_uuid() AS txn_id,
        CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-' || CAST(:nonce AS text)
            || '-' || CAST(i AS text) AS exec_id
    FROM generate_series(0, CAST(:batch AS int) - 1) AS i
    JOIN orders o ON o.id = CAST(md5('pgbench-fill-' || CAST(:client_id AS text) || '-'
        || CAST(i / CAST(:per_order AS int) AS text)) AS uuid)
), u AS (
    SELECT user_id, symbol, count(*) AS n FROM b GROUP BY user_id, symbol
)
SELECT settle_apply(jsonb_build_object(
    'currency', CAST(:currency AS text),
    'txns', (SELECT jsonb_agg(jsonb_build_object('id', txn_id, 'kind', 'FILL',
            'reference', 'BUY ' || CAST(:qty AS text) || ' ' || symbol || ' @ '
                || CAST(:px AS text),
            'order_id', order_id, 'exec_id', exec_id, 'external_ref', NULL) ORDER BY i) FROM b),
    'entries', (SELECT jsonb_agg(jsonb_build_object('txn_id', b.txn_id, 'user_id', e.user_id,
            'kind', e.kind, 'amount', CAST(e.amount AS text)) ORDER BY b.i, e.n)
        FROM b CROSS JOIN LATERAL (VALUES
            (1, b.user_id, 'CASH_AVAILABLE', -CAST(:cost AS numeric)),
            (2, NULL, 'EXCHANGE_CLEARING', CAST(:cost AS numeric)),
            (3, b.user_id, 'CASH_AVAILABLE', -CAST(:fee AS numeric)),
            (4, NULL, 'FEES', CAST(:fee AS numeric))) AS e(n, user_id, kind, amount)),
    'wallets', (SELECT jsonb_agg(jsonb_build_object('user_id', user_id,
            'available', CAST(-(CAST(:cost AS numeric) + CAST(:fee AS numeric)) * n AS text),
            'locked', '0') ORDER BY user_id) FROM u),
    'executions', (SELECT jsonb_agg(jsonb_build_object('exec_id', exec_id,
            'order_id', order_id, 'symbol', symbol, 'side', 'BUY',
            'last_qty', CAST(:qty AS bigint), 'last_px', CAST(:px AS text),
            'fee', CAST(:fee AS text), 'executed_at', now(), 'journal_txn_id', txn_id)
            ORDER BY i) FROM b),
    'holdings', (SELECT jsonb_agg(jsonb_build_object('user_id', u.user_id, 'symbol', u.symbol,
            'quantity', h.quantity + u.n * CAST(:qty AS bigint),
            'locked_quantity', h.locked_quantity,
            'avg_buy_price', CAST(round((h.avg_buy_price * h.quantity
                + CAST(:px AS numeric) * u.n * CAST(:qty AS bigint))
                / (h.quantity + u.n * CAST(:qty AS bigint)), 4) AS text),
            'realized_pnl', CAST(h.realized_pnl AS text), 'new', false) ORDER BY u.user_id)
        FROM u JOIN holdings h ON h.user_id = u.user_id AND h.symbol = u.symbol),
    'orders', (SELECT jsonb_agg(jsonb_build_object('step', step, 'id', order_id,
            'status', 'PARTIALLY_FILLED', 'cum_qty', cum_qty + step * CAST(:qty AS bigint),
            'filled_notional',
                CAST(filled_notional + step * CAST(:cost AS numeric) AS text),
            'avg_px', CAST(round((filled_notional + step * CAST(:cost AS numeric))
                / (cum_qty + step * CAST(:qty AS bigint)), 4) AS text),
            'reserved_amount', CAST(reserved_amount AS text),
            'final_status_pending', NULL, 'final_cum_qty_pending', NULL,
            'reject_reason', NULL) ORDER BY i) FROM b)
));
END;
