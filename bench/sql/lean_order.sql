-- The lean order (pgbench custom-script mode, prepared statements): the ceiling order_place is
-- measured against. One transaction of eight statements with the design's guarantees: the
-- idempotency key claimed and its answer stored, the wallet locked, checked by its CHECKs and
-- updated, the order row, a balanced two-leg journal, the outbox row. What order_place does
-- beyond this is listed in docs/BENCHMARKS.md ("The lean order").
--
-- Set by bench/orders_lean.py with -D: user_min, user_max (the benchmark users' ids), run (a tag
-- that keeps keys unique across runs), symbol, price, qty and reserve (what order_place
-- reserves for that order), topic.
\set uid random(:user_min, :user_max)
\set nonce random(1, 9223372036854775806)
BEGIN;
INSERT INTO lean_keys (user_id, key, request_hash)
    VALUES (:uid, CAST(:run AS text) || '-' || CAST(:nonce AS text),
        sha256(convert_to(CAST(:nonce AS text), 'UTF8')));
SELECT balance FROM lean_wallets WHERE user_id = :uid FOR UPDATE;
UPDATE lean_wallets SET balance = balance - CAST(:reserve AS numeric),
        locked = locked + CAST(:reserve AS numeric), updated_at = now()
    WHERE user_id = :uid;
INSERT INTO lean_orders (id, user_id, client_order_id, symbol, side, type, quantity, price,
        status, reserved)
    VALUES (md5(CAST(:nonce AS text))::uuid, :uid, md5(CAST(:nonce AS text)),
        CAST(:symbol AS text), 'BUY', 'LIMIT', :qty, CAST(:price AS numeric), 'NEW',
        CAST(:reserve AS numeric));
INSERT INTO lean_entries (txn_id, user_id, account, amount, order_id)
    VALUES (md5(CAST(:nonce AS text) || 't')::uuid, :uid, 'AVAILABLE', -CAST(:reserve AS numeric),
            md5(CAST(:nonce AS text))::uuid),
        (md5(CAST(:nonce AS text) || 't')::uuid, :uid, 'LOCKED', CAST(:reserve AS numeric),
            md5(CAST(:nonce AS text))::uuid);
INSERT INTO lean_outbox (topic, key, payload)
    VALUES (CAST(:topic AS text), convert_to(md5(CAST(:nonce AS text)), 'UTF8'),
        convert_to(json_build_object('type', 'new_order.v1',
            'order_id', md5(CAST(:nonce AS text))::uuid, 'user_id', CAST(:uid AS bigint),
            'symbol', CAST(:symbol AS text), 'side', 'BUY', 'order_type', 'LIMIT',
            'quantity', CAST(:qty AS bigint), 'price', CAST(:price AS text))::text, 'UTF8'));
UPDATE lean_keys SET status = 201,
        body = jsonb_build_object('id', md5(CAST(:nonce AS text))::uuid, 'status', 'NEW',
            'reserved_amount', CAST(:reserve AS text))
    WHERE user_id = :uid AND key = CAST(:run AS text) || '-' || CAST(:nonce AS text);
END;
