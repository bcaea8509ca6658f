-- One LIMIT BUY placed the way the API places it (pgbench custom-script mode), statement for
-- statement and round trip for round trip: what api/services/orders.py, order_reads.py,
-- idempotency.py, fraud.py, outbox.py and core/ledger.py send to PostgreSQL for one accepted
-- order, in order, with the same pipelined batches (\startpipeline ... \endpipeline) where the
-- API uses psycopg's pipeline mode: 7 round trips. Every value the API computes in Python
-- (request hash, order id, reserve, outbox payload, stored response) is computed here in SQL or
-- passed in with -D, so the database does the same work. The KYC check of require_verified is
-- not here: the API answers it from its cache (kyc_verified_cache_s) for a verified user.
--
-- Set by bench/orders_api.py with -D: user_min, user_max (the bench users' ids, contiguous),
-- run (a tag that keeps idempotency keys unique across runs), symbol, price, qty, reserve (the
-- API's buy_reserve for that order), currency, topic.
\set uid random(:user_min, :user_max)
\set nonce random(1, 9223372036854775806)
-- place_order: one transaction from the idempotency key to the stored response.
-- Round trip 1: BEGIN (psycopg sends the BEGIN of a transaction alone, even in pipeline mode).
BEGIN;
-- Round trip 2 (pipelined): idempotency.send_claim, then order_reads.send: the instrument, the
-- wallet locked, the fraud rule's order count.
\startpipeline
INSERT INTO idempotency_keys (user_id, key, request_hash)
    VALUES (:uid, CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-'
        || CAST(:nonce AS text), sha256(convert_to(CAST(:nonce AS text), 'UTF8')))
    ON CONFLICT (user_id, key) DO NOTHING RETURNING true;
SELECT tick_size, lot_size FROM instruments WHERE symbol = :symbol AND is_active;
SELECT balance FROM wallets WHERE user_id = :uid FOR UPDATE;
SELECT count(*) FROM orders WHERE user_id = :uid AND created_at > now() - interval '1 minute';
\endpipeline
-- Round trips 3-6, one statement each: the order, then ledger.post's three statements.
-- _insert_order (the API makes the uuid in Python; client_order_id defaults to it)
INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type, time_in_force,
        quantity, price, trigger_price, status, reserved_amount, is_amo)
    SELECT g.id, CAST(:uid AS bigint), CAST(g.id AS text), CAST(:symbol AS text), 'BUY', 'LIMIT',
        'DAY', CAST(:qty AS bigint), CAST(:price AS numeric), NULL, 'NEW',
        CAST(:reserve AS numeric), false
    FROM (SELECT gen_random_uuid() AS id) AS g
    ON CONFLICT ON CONSTRAINT orders_client_order_id_key DO NOTHING
    RETURNING id, client_order_id, symbol, side, order_type AS type, quantity, price,
        trigger_price, time_in_force, status, cum_qty, avg_px, reserved_amount, is_amo,
        reject_reason, created_at, updated_at \gset o_
-- ledger.post(ORDER_RESERVE): journal transaction, its two entries, the wallet projection
INSERT INTO journal_txns (kind, reference, order_id, exec_id, external_ref)
    VALUES ('ORDER_RESERVE', 'reserve for order ' || CAST(:o_id AS text), CAST(:o_id AS uuid),
        NULL, NULL)
    ON CONFLICT DO NOTHING RETURNING id AS txn_id \gset
INSERT INTO journal_entries (txn_id, account_id, amount)
    SELECT CAST(:txn_id AS uuid), a.id, e.amount
    FROM unnest(CAST(ARRAY[:uid, :uid] AS bigint[]),
        CAST(ARRAY['CASH_AVAILABLE', 'CASH_LOCKED'] AS text[]),
        CAST(ARRAY[-CAST(:reserve AS numeric), CAST(:reserve AS numeric)] AS numeric[]))
        AS e(user_id, kind, amount)
    JOIN ledger_accounts a ON a.kind = e.kind AND a.currency = CAST(:currency AS text)
        AND a.user_id IS NOT DISTINCT FROM e.user_id;
UPDATE wallets SET balance = balance + -CAST(:reserve AS numeric),
        locked_balance = locked_balance + CAST(:reserve AS numeric), updated_at = now()
    WHERE user_id = :uid;
-- Round trip 7 (pipelined): outbox.enqueue (the NewOrder record, JSON as the codec writes it,
-- keyed by the order id), idempotency.send_store (the 201 response, the order as OrderOut),
-- COMMIT.
\startpipeline
INSERT INTO outbox (topic, key, payload, headers, available_at)
    VALUES (:topic, convert_to(CAST(:o_id AS text), 'UTF8'),
        convert_to(json_build_object('type', 'new_order.v1', 'order_id', CAST(:o_id AS text),
            'user_id', CAST(:uid AS bigint), 'symbol', CAST(:symbol AS text), 'side', 'BUY',
            'order_type', 'LIMIT', 'quantity', CAST(:qty AS bigint),
            'price', CAST(:o_price AS text), 'trigger_price', NULL, 'time_in_force', 'DAY',
            'ts_created_ns', CAST(:nonce AS bigint))::text, 'UTF8'),
        CAST('{"record": "new_order.v1"}' AS jsonb), COALESCE(NULL::timestamptz, now()));
UPDATE idempotency_keys SET response_status = 201,
        response_body = jsonb_build_object('id', CAST(:o_id AS text),
            'client_order_id', CAST(:o_client_order_id AS text), 'symbol', CAST(:symbol AS text),
            'side', 'BUY', 'type', 'LIMIT', 'quantity', CAST(:qty AS bigint),
            'price', CAST(:o_price AS text), 'trigger_price', NULL, 'time_in_force', 'DAY',
            'status', 'NEW', 'cum_qty', 0, 'avg_px', NULL,
            'reserved_amount', CAST(:o_reserved_amount AS text), 'is_amo', false,
            'reject_reason', NULL,
            'created_at', CAST(:o_created_at AS text), 'updated_at', CAST(:o_updated_at AS text))
    WHERE user_id = :uid AND key = CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-'
        || CAST(:nonce AS text)
    RETURNING response_status, response_body;
END;
\endpipeline
