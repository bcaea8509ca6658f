-- depends: 0001_users_security
--
-- Double-entry ledger and the wallet projection.
--
-- SIGN CONVENTION (read before writing any journal entry)
--   journal_entries.amount is signed: positive = credit, negative = debit.
--   An account's balance is SUM(amount) of its entries. Every account is seen from the broker's
--   books, where a positive balance is money the broker owes to the account's holder:
--     CASH_AVAILABLE  (per user)  what the user may spend or withdraw; >= 0.
--     CASH_LOCKED     (per user)  what is reserved for open buy orders or pending withdrawals; >= 0.
--     EXCHANGE_CLEARING (system)  net owed to the exchange: buys credit it, sells debit it.
--     PAYMENT_GATEWAY_CLEARING (system)  cash held at the payment gateway for the broker; it is an
--                                 asset, so its balance is normally NEGATIVE (deposits debit it,
--                                 withdrawal payouts credit it).
--     FEES            (system)    fee income; fees credit it.
--   Every journal transaction sums to zero per currency and has at least two entries.
--   Examples (user U, amounts in the wallet currency):
--     DEPOSIT 100         U.CASH_AVAILABLE +100, PAYMENT_GATEWAY_CLEARING -100
--     ORDER_RESERVE 50    U.CASH_AVAILABLE  -50, U.CASH_LOCKED +50
--     FILL buy 49 fee 1   U.CASH_LOCKED -49, EXCHANGE_CLEARING +49, U.CASH_LOCKED -1, FEES +1
--     ORDER_RELEASE 0     (nothing left) / otherwise U.CASH_LOCKED -x, U.CASH_AVAILABLE +x
--     FILL sell 60 fee 1  EXCHANGE_CLEARING -60, U.CASH_AVAILABLE +60, U.CASH_AVAILABLE -1, FEES +1
--     WITHDRAWAL_RESERVE  U.CASH_AVAILABLE -x, U.CASH_LOCKED +x
--     WITHDRAWAL (payout) U.CASH_LOCKED -x, PAYMENT_GATEWAY_CLEARING +x
--   Hence wallets.balance = SUM of the user's CASH_AVAILABLE entries and
--   wallets.locked_balance = SUM of the user's CASH_LOCKED entries (invariant 2).

CREATE TABLE IF NOT EXISTS ledger_accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint      REFERENCES users (id),
    kind        text        NOT NULL CHECK (kind IN (
        'CASH_AVAILABLE', 'CASH_LOCKED',
        'EXCHANGE_CLEARING', 'PAYMENT_GATEWAY_CLEARING', 'FEES'
    )),
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- User accounts belong to a user; system accounts to nobody.
    CONSTRAINT ledger_accounts_owner_matches_kind CHECK (
        (user_id IS NOT NULL) = (kind IN ('CASH_AVAILABLE', 'CASH_LOCKED'))
    )
);

CREATE UNIQUE INDEX IF NOT EXISTS ledger_accounts_user_kind_currency_key
    ON ledger_accounts (user_id, kind, currency) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS ledger_accounts_system_kind_currency_key
    ON ledger_accounts (kind, currency) WHERE user_id IS NULL;

INSERT INTO ledger_accounts (kind, currency)
VALUES ('EXCHANGE_CLEARING', 'USD'), ('PAYMENT_GATEWAY_CLEARING', 'USD'), ('FEES', 'USD')
ON CONFLICT (kind, currency) WHERE user_id IS NULL DO NOTHING;

CREATE TABLE IF NOT EXISTS journal_txns (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text        NOT NULL CHECK (kind IN (
        'DEPOSIT', 'WITHDRAWAL_RESERVE', 'WITHDRAWAL', 'WITHDRAWAL_RELEASE',
        'ORDER_RESERVE', 'ORDER_RELEASE', 'FILL', 'FEE', 'ADJUSTMENT'
    )),
    -- Free text for people: what caused this transaction.
    reference       text        NOT NULL DEFAULT '',
    -- The order this money movement belongs to (reserve, release, fill); FK added in 0003.
    order_id        uuid,
    -- The exchange execution id a FILL settles: the idempotency key of settlement.
    exec_id         text,
    -- The payment gateway's id for deposits and withdrawals: a webhook credits at most once.
    external_ref    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT journal_txns_fill_has_exec_id CHECK (kind <> 'FILL' OR exec_id IS NOT NULL),
    CONSTRAINT journal_txns_order_kinds_have_order_id
        CHECK (kind NOT IN ('ORDER_RESERVE', 'ORDER_RELEASE', 'FILL') OR order_id IS NOT NULL),
    CONSTRAINT journal_txns_gateway_kinds_have_external_ref
        CHECK (kind NOT IN ('DEPOSIT', 'WITHDRAWAL') OR external_ref IS NOT NULL)
);

-- One execution is settled by at most one journal transaction (invariant 5).
CREATE UNIQUE INDEX IF NOT EXISTS journal_txns_exec_id_key
    ON journal_txns (exec_id) WHERE exec_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS journal_txns_kind_external_ref_key
    ON journal_txns (kind, external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS journal_txns_order_id_idx
    ON journal_txns (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS journal_txns_created_at_idx ON journal_txns (created_at);

CREATE TABLE IF NOT EXISTS journal_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id      uuid          NOT NULL REFERENCES journal_txns (id),
    account_id  bigint        NOT NULL REFERENCES ledger_accounts (id),
    amount      numeric(18,4) NOT NULL CONSTRAINT journal_entries_amount_nonzero CHECK (amount <> 0),
    created_at  timestamptz   NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS journal_entries_txn_id_idx ON journal_entries (txn_id);
-- Account balances are sums over this index without touching the heap.
CREATE INDEX IF NOT EXISTS journal_entries_account_id_idx
    ON journal_entries (account_id) INCLUDE (amount);

-- Refuse to COMMIT a journal transaction that is unbalanced (per currency) or has fewer than two
-- entries. Deferred to commit so the entries of one transaction can be inserted one by one.
CREATE OR REPLACE FUNCTION ledger_check_txn_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_txn_id        uuid;
    v_entry_count   bigint;
    v_currency      text;
    v_sum           numeric;
BEGIN
    IF TG_TABLE_NAME = 'journal_txns' THEN
        v_txn_id := NEW.id;
    ELSE
        v_txn_id := NEW.txn_id;
    END IF;

    SELECT count(*) INTO v_entry_count FROM journal_entries WHERE txn_id = v_txn_id;
    IF v_entry_count < 2 THEN
        RAISE EXCEPTION 'journal transaction % has % entries; at least 2 are required',
            v_txn_id, v_entry_count
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
    END IF;

    SELECT a.currency, sum(e.amount) INTO v_currency, v_sum
    FROM journal_entries e
    JOIN ledger_accounts a ON a.id = e.account_id
    WHERE e.txn_id = v_txn_id
    GROUP BY a.currency
    HAVING sum(e.amount) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal transaction % is unbalanced: % entries sum to %',
            v_txn_id, v_currency, v_sum
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
    END IF;
    RETURN NULL;
END;
$$;

-- CREATE OR REPLACE is not allowed for constraint triggers; drop and create keeps this re-runnable.
DROP TRIGGER IF EXISTS journal_txn_balanced ON journal_txns;
CREATE CONSTRAINT TRIGGER journal_txn_balanced
    AFTER INSERT ON journal_txns
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_txn_balanced();

DROP TRIGGER IF EXISTS journal_entry_txn_balanced ON journal_entries;
CREATE CONSTRAINT TRIGGER journal_entry_txn_balanced
    AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_txn_balanced();

-- The ledger is append-only: a mistake is corrected by a new ADJUSTMENT transaction.
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE OR REPLACE TRIGGER journal_txns_append_only
    BEFORE UPDATE OR DELETE ON journal_txns
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE OR REPLACE TRIGGER journal_txns_no_truncate
    BEFORE TRUNCATE ON journal_txns
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE OR REPLACE TRIGGER journal_entries_append_only
    BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE OR REPLACE TRIGGER journal_entries_no_truncate
    BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The projection the API reads and locks (SELECT ... FOR UPDATE). Application code updates it in
-- the same database transaction as the journal entries that justify the change.
CREATE TABLE IF NOT EXISTS wallets (
    user_id         bigint        PRIMARY KEY REFERENCES users (id),
    currency        text          NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    balance         numeric(18,4) NOT NULL DEFAULT 0
        CONSTRAINT wallets_balance_nonnegative CHECK (balance >= 0),
    locked_balance  numeric(18,4) NOT NULL DEFAULT 0
        CONSTRAINT wallets_locked_balance_nonnegative CHECK (locked_balance >= 0),
    updated_at      timestamptz   NOT NULL DEFAULT now()
);
