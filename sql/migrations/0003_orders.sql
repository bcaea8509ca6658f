-- depends: 0002_ledger
--
-- Instruments, orders, executions (fills) and holdings.
-- Quantities are whole shares (bigint); prices and money are numeric(18,4).

CREATE TABLE IF NOT EXISTS instruments (
    symbol      text          PRIMARY KEY CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.\-]{0,15}$'),
    name        text          NOT NULL DEFAULT '',
    currency    text          NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    tick_size   numeric(18,4) NOT NULL DEFAULT 0.01 CHECK (tick_size > 0),
    lot_size    bigint        NOT NULL DEFAULT 1 CHECK (lot_size > 0),
    is_active   boolean       NOT NULL DEFAULT true,
    created_at  timestamptz   NOT NULL DEFAULT now()
);

-- orders.id is the FIX ClOrdID sent to the exchange.
CREATE TABLE IF NOT EXISTS orders (
    id                  uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             bigint        NOT NULL REFERENCES users (id),
    client_order_id     text          NOT NULL CHECK (length(client_order_id) BETWEEN 1 AND 64),
    symbol              text          NOT NULL REFERENCES instruments (symbol),
    side                text          NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type          text          NOT NULL
        CHECK (order_type IN ('MARKET', 'LIMIT', 'STOP_LOSS', 'STOP_LIMIT')),
    time_in_force       text          NOT NULL DEFAULT 'DAY'
        CHECK (time_in_force IN ('DAY', 'IOC', 'GTC')),
    quantity            bigint        NOT NULL CHECK (quantity > 0),
    price               numeric(18,4) CHECK (price > 0),
    trigger_price       numeric(18,4) CHECK (trigger_price > 0),
    status              text          NOT NULL DEFAULT 'NEW' CHECK (status IN (
        'PENDING_TRIGGER', 'NEW', 'SENT', 'ACCEPTED', 'PARTIALLY_FILLED', 'PENDING_CANCEL',
        'FILLED', 'CANCELED', 'REJECTED', 'EXPIRED'
    )),
    cum_qty             bigint        NOT NULL DEFAULT 0,
    avg_px              numeric(18,4) CHECK (avg_px > 0),
    -- Cash still locked for this order (buys): reserved at placement, consumed by fills,
    -- the rest released when the order is final.
    reserved_amount     numeric(18,4) NOT NULL DEFAULT 0 CHECK (reserved_amount >= 0),
    is_amo              boolean       NOT NULL DEFAULT false,
    exchange_order_id   text,
    reject_reason       text,
    triggered_at        timestamptz,
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT orders_client_order_id_key UNIQUE (user_id, client_order_id),
    -- Lets executions carry symbol and side with a guarantee that they match the order.
    CONSTRAINT orders_id_symbol_side_key UNIQUE (id, symbol, side),
    CONSTRAINT orders_cum_qty_range CHECK (cum_qty >= 0 AND cum_qty <= quantity),
    CONSTRAINT orders_price_matches_type CHECK (
        (order_type IN ('LIMIT', 'STOP_LIMIT')) = (price IS NOT NULL)
    ),
    CONSTRAINT orders_trigger_price_matches_type CHECK (
        (order_type IN ('STOP_LOSS', 'STOP_LIMIT')) = (trigger_price IS NOT NULL)
    ),
    CONSTRAINT orders_pending_trigger_is_stop_unfilled CHECK (
        status <> 'PENDING_TRIGGER'
        OR (order_type IN ('STOP_LOSS', 'STOP_LIMIT') AND cum_qty = 0)
    ),
    CONSTRAINT orders_filled_means_all_filled CHECK (status <> 'FILLED' OR cum_qty = quantity),
    CONSTRAINT orders_avg_px_with_fills CHECK (cum_qty = 0 OR avg_px IS NOT NULL)
);

CREATE INDEX IF NOT EXISTS orders_user_created_idx ON orders (user_id, created_at DESC);
-- The stops agent scans pending stop orders per symbol.
CREATE INDEX IF NOT EXISTS orders_pending_trigger_idx ON orders (symbol)
    WHERE status = 'PENDING_TRIGGER';
-- Orders that may still receive reports; recovery and end-of-day expiry read these.
CREATE INDEX IF NOT EXISTS orders_open_idx ON orders (created_at)
    WHERE status IN ('NEW', 'SENT', 'ACCEPTED', 'PARTIALLY_FILLED', 'PENDING_CANCEL');

-- The ledger may point at orders now that they exist (added idempotently: ADD CONSTRAINT has no
-- IF NOT EXISTS).
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'journal_txns_order_id_fkey' AND conrelid = 'journal_txns'::regclass
    ) THEN
        ALTER TABLE journal_txns
            ADD CONSTRAINT journal_txns_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id);
    END IF;
END;
$$;

-- One row per exchange fill. exec_id is the idempotency key of settlement: the settle agent
-- inserts the execution, its FILL journal transaction and the holding change in one transaction.
CREATE TABLE IF NOT EXISTS executions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exec_id         text          NOT NULL CONSTRAINT executions_exec_id_key UNIQUE,
    order_id        uuid          NOT NULL,
    symbol          text          NOT NULL,
    side            text          NOT NULL CHECK (side IN ('BUY', 'SELL')),
    last_qty        bigint        NOT NULL CHECK (last_qty > 0),
    last_px         numeric(18,4) NOT NULL CHECK (last_px > 0),
    fee             numeric(18,4) NOT NULL DEFAULT 0 CHECK (fee >= 0),
    executed_at     timestamptz   NOT NULL,
    journal_txn_id  uuid          CONSTRAINT executions_journal_txn_id_key UNIQUE
        REFERENCES journal_txns (id),
    settled_at      timestamptz,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT executions_order_fkey FOREIGN KEY (order_id, symbol, side)
        REFERENCES orders (id, symbol, side),
    CONSTRAINT executions_settled_with_txn CHECK ((journal_txn_id IS NULL) = (settled_at IS NULL))
);

CREATE INDEX IF NOT EXISTS executions_order_id_idx ON executions (order_id);
-- Nightly reconciliation reads one trading day of fills.
CREATE INDEX IF NOT EXISTS executions_executed_at_idx ON executions (executed_at);
CREATE INDEX IF NOT EXISTS executions_unsettled_idx ON executions (created_at)
    WHERE settled_at IS NULL;

-- quantity is every share held, locked_quantity the part reserved by open sell orders.
CREATE TABLE IF NOT EXISTS holdings (
    user_id         bigint        NOT NULL REFERENCES users (id),
    symbol          text          NOT NULL REFERENCES instruments (symbol),
    quantity        bigint        NOT NULL DEFAULT 0
        CONSTRAINT holdings_quantity_nonnegative CHECK (quantity >= 0),
    locked_quantity bigint        NOT NULL DEFAULT 0
        CONSTRAINT holdings_locked_quantity_nonnegative CHECK (locked_quantity >= 0),
    avg_buy_price   numeric(18,4) NOT NULL DEFAULT 0 CHECK (avg_buy_price >= 0),
    realized_pnl    numeric(18,4) NOT NULL DEFAULT 0,
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, symbol),
    CONSTRAINT holdings_locked_within_quantity CHECK (locked_quantity <= quantity)
);
