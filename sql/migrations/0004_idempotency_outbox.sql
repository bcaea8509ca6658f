-- depends: 0003_orders
--
-- Request idempotency, the transactional outbox, and the FIX bridge's record of sent orders.

-- One row per (user, X-Idempotency-Key). Inserted in the same transaction as the order it guards,
-- so a retried request finds the stored response instead of placing a second order.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id         bigint      NOT NULL REFERENCES users (id),
    key             text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- A hash of method, path and body: the same key with a different request is refused.
    request_hash    bytea       NOT NULL,
    response_status integer     CHECK (response_status BETWEEN 100 AND 599),
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Expired keys are deleted by age.
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Messages written in the same transaction as the state change they announce; the relay publishes
-- unpublished rows to Kafka and sets published_at. id follows allocation order, which can differ
-- from commit order under concurrency, so the relay must not assume ids commit without gaps.
CREATE TABLE IF NOT EXISTS outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic           text        NOT NULL,
    key             bytea,
    payload         bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);

CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- What the FIX bridge has sent as NewOrderSingle. A ClOrdID is never sent twice as a new order;
-- on start the bridge asks the exchange for the status of every row without a final report.
CREATE TABLE IF NOT EXISTS sent_orders (
    order_id            uuid        PRIMARY KEY REFERENCES orders (id),
    sent_at             timestamptz NOT NULL DEFAULT now(),
    last_status         text,
    last_report_at      timestamptz,
    status_requested_at timestamptz,
    final_at            timestamptz
);

CREATE INDEX IF NOT EXISTS sent_orders_awaiting_final_idx ON sent_orders (sent_at)
    WHERE final_at IS NULL;
