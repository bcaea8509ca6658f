-- depends: 0005_market_data
--
-- Nightly reconciliation of the exchange trade report against internal fills.

CREATE TABLE IF NOT EXISTS reconciliation_runs (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trading_day             date        NOT NULL,
    status                  text        NOT NULL DEFAULT 'RUNNING'
        CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    started_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz,
    report_path             text,
    exchange_trade_count    integer     CHECK (exchange_trade_count >= 0),
    internal_fill_count     integer     CHECK (internal_fill_count >= 0),
    matched_count           integer     CHECK (matched_count >= 0),
    break_count             integer     CHECK (break_count >= 0),
    error                   text,
    CONSTRAINT reconciliation_runs_finished_when_done
        CHECK ((status = 'RUNNING') = (finished_at IS NULL))
);

CREATE INDEX IF NOT EXISTS reconciliation_runs_trading_day_idx
    ON reconciliation_runs (trading_day, started_at DESC);

CREATE TABLE IF NOT EXISTS reconciliation_breaks (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id              bigint        NOT NULL REFERENCES reconciliation_runs (id),
    kind                text          NOT NULL CHECK (kind IN (
        'MISSING_INTERNAL', 'MISSING_EXTERNAL', 'QTY_MISMATCH', 'PRICE_MISMATCH',
        'SIDE_MISMATCH', 'SYMBOL_MISMATCH', 'FEE_MISMATCH', 'DUPLICATE'
    )),
    exec_id             text,
    -- ClOrdID as the report spells it: text, since an external file may hold anything.
    cl_ord_id           text,
    details             jsonb         NOT NULL DEFAULT '{}',
    -- What healing would change: cash in the account currency, position in shares.
    cash_impact         numeric(18,4),
    position_impact     bigint,
    is_safe_to_heal     boolean       NOT NULL DEFAULT false,
    healed_at           timestamptz,
    healed_by           text,
    heal_journal_txn_id uuid          REFERENCES journal_txns (id),
    created_at          timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT reconciliation_breaks_healed_by_someone
        CHECK ((healed_at IS NULL) = (healed_by IS NULL))
);

CREATE INDEX IF NOT EXISTS reconciliation_breaks_run_id_idx ON reconciliation_breaks (run_id);
CREATE INDEX IF NOT EXISTS reconciliation_breaks_exec_id_idx ON reconciliation_breaks (exec_id)
    WHERE exec_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS reconciliation_breaks_unhealed_idx ON reconciliation_breaks (run_id)
    WHERE healed_at IS NULL;

-- Append-only audit of every heal attempt, successful or not: who, what, and the outcome.
CREATE TABLE IF NOT EXISTS reconciliation_heal_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    break_id        bigint      NOT NULL REFERENCES reconciliation_breaks (id),
    actor           text        NOT NULL,
    action          text        NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('HEALED', 'REFUSED', 'FAILED')),
    journal_txn_id  uuid        REFERENCES journal_txns (id),
    details         jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS reconciliation_heal_audit_break_id_idx
    ON reconciliation_heal_audit (break_id);
