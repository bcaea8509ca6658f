-- One LIMIT BUY placed the way the API places it (pgbench custom-script mode): the same call
-- of order_place (sql/migrations/0030), alone in autocommit mode (its own transaction, no
-- BEGIN or COMMIT), as api/services/orders.py sends it. What the API computes in Python before
-- the call (request hash, order id, the NewOrder record) is computed here in SQL or passed in
-- with -D, so the database does the same work. The KYC check of require_verified is not here:
-- the API answers it from its cache (kyc_verified_cache_s) for a verified user.
--
-- Set by bench/orders_api.py with -D: user_min, user_max (the bench users' ids, contiguous),
-- run (a tag that keeps idempotency keys unique across runs), symbol, price, qty, band_bps
-- and fee_rate_bps (as the API passes them), value_max, rate_max (the fraud rules' limits),
-- currency, topic.
\set uid random(:user_min, :user_max)
\set nonce random(1, 9223372036854775806)
SELECT p.response_status, p.response_body, p.replayed
    FROM (SELECT uuid_v7() AS id) AS g,
    LATERAL order_place(
        CAST(:uid AS bigint),
        CAST(:run AS text) || '-' || CAST(:client_id AS text) || '-' || CAST(:nonce AS text),
        sha256(convert_to(CAST(:nonce AS text), 'UTF8')),
        g.id, NULL, CAST(:symbol AS text), 'BUY', 'LIMIT', 'DAY', CAST(:qty AS bigint),
        CAST(:price AS numeric), NULL, NULL, false, NULL,
        CAST(:band_bps AS integer), CAST(:fee_rate_bps AS integer),
        CAST(:value_max AS numeric), CAST(:rate_max AS integer),
        CAST(:currency AS text), CAST(:topic AS text), convert_to(CAST(g.id AS text), 'UTF8'),
        -- The NewOrder record as the codec writes it, keyed by the order id.
        convert_to(json_build_object('type', 'new_order.v1', 'order_id', CAST(g.id AS text),
            'user_id', CAST(:uid AS bigint), 'symbol', CAST(:symbol AS text), 'side', 'BUY',
            'order_type', 'LIMIT', 'quantity', CAST(:qty AS bigint),
            'price', CAST(CAST(:price AS numeric(18, 4)) AS text), 'trigger_price', NULL,
            'time_in_force', 'DAY', 'ts_created_ns', CAST(:nonce AS bigint))::text, 'UTF8'),
        CAST('{"record": "new_order.v1"}' AS jsonb)) AS p;
