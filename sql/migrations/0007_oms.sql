-- depends: 0006_reconciliation
-- What the OMS needs beyond the core schema: the latest price per symbol, payment intents,
-- and an outbox that publishes in transaction order and can hold a message until a set time.

-- Latest traded price per symbol, written by the conflate agent; market buys reserve against it.
CREATE TABLE IF NOT EXISTS last_prices (
    symbol      text          PRIMARY KEY REFERENCES instruments (symbol),
    price       numeric(18,4) NOT NULL CHECK (price > 0),
    ts_event    timestamptz   NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now()
);

-- A deposit or withdrawal the payment gateway is working on; the journal moves money,
-- this row tracks the conversation with the gateway.
CREATE TABLE IF NOT EXISTS payment_intents (
    id              uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         bigint        NOT NULL REFERENCES users (id),
    kind            text          NOT NULL CHECK (kind IN ('DEPOSIT', 'WITHDRAWAL')),
    amount          numeric(18,4) NOT NULL CHECK (amount > 0),
    currency        text          NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    status          text          NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    -- The gateway's own id for this payment, known once the gateway accepted it.
    external_ref    text          UNIQUE,
    failure_reason  text,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS payment_intents_user_created_idx
    ON payment_intents (user_id, created_at DESC);

-- The relay publishes rows of finished transactions only, in transaction-id order: a row whose
-- transaction is still open cannot be overtaken by a later one (ids alone would allow that).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS txid xid8 NOT NULL DEFAULT pg_current_xact_id();
-- After-market orders wait here until the next open.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS available_at timestamptz NOT NULL DEFAULT now();
-- A held message (an AMO) canceled before release is never published.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS canceled_at timestamptz;
CREATE INDEX IF NOT EXISTS outbox_pending_txid_idx ON outbox (txid, id)
    WHERE published_at IS NULL AND canceled_at IS NULL;
