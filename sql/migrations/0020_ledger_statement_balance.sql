-- depends: 0019_settle_batch
--
-- The ledger's rules, checked once per statement and journal transaction instead of once per row.
--
-- Before: two deferred constraint triggers ran ledger_check_txn_balanced at COMMIT for every
-- journal transaction row and again for every entry row (five runs for a fill with a fee), and
-- the foreign key journal_entries.txn_id checked every entry row again; a batch of fills spent
-- most of its time there. Now:
--   * journal_entry_txn_balanced is a statement trigger: after each INSERT into journal_entries,
--     every journal transaction that statement touched must exist and balance per currency with
--     at least two entries, counting all its entries (those of earlier statements too). Each
--     transaction is looked up once per statement, through its primary key and
--     journal_entries_txn_id_idx.
--   * The same trigger checks that every account the statement names exists. These two checks
--     replace the foreign keys journal_entries -> journal_txns and -> ledger_accounts, whose row
--     triggers ran once per entry each. The one to ledger_accounts was the dearer: every entry
--     of every fill share-locked the same few system accounts (EXCHANGE_CLEARING, FEES), and
--     concurrent settlements made a new MultiXact for each lock. What else a key did, keep a
--     referenced row from going, is done by append-only triggers: journal_txns refuses UPDATE,
--     DELETE and TRUNCATE (0002), ledger_accounts now refuses DELETE, TRUNCATE and a change of
--     an account's id, owner, kind or currency. The invariant journal_txn_sums_to_zero
--     (sql/invariants.sql) also reports entries without a transaction.
--   * journal_txn_balanced stays a deferred constraint trigger per journal transaction: at
--     COMMIT, the transaction must have entries (one written without any is refused).
-- Together they refuse what the old triggers refused: entries are append-only, so a transaction
-- that balances after every statement that added to it balances at commit, and one with no
-- entries is caught at commit. The one thing given up is writing a transaction's entries in
-- several statements that are unbalanced in between: every writer (core.ledger.post,
-- order_place, settle_apply) writes a transaction's entries in one statement.

CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_txn_id    uuid;
    v_currency  text;
    v_sum       numeric;
    v_count     bigint;
    v_account_id bigint;
BEGIN
    SELECT t.txn_id INTO v_txn_id
    FROM (SELECT DISTINCT txn_id FROM new_entries) AS t
    WHERE NOT EXISTS (SELECT 1 FROM journal_txns j WHERE j.id = t.txn_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entries name journal transaction %, which does not exist', v_txn_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'journal_entries_txn_id_fkey';
    END IF;
    SELECT n.account_id INTO v_account_id
    FROM (SELECT DISTINCT account_id FROM new_entries) AS n
    WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = n.account_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entries name ledger account %, which does not exist', v_account_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'journal_entries_account_id_fkey';
    END IF;
    -- LATERAL per touched transaction, so each is one index lookup whatever the table's size
    -- (the planner knows nothing about a transition table and might otherwise scan it all).
    -- One nonzero entry alone never sums to zero, so "unbalanced" also finds single entries.
    SELECT t.txn_id, s.currency, s.total INTO v_txn_id, v_currency, v_sum
    FROM (SELECT DISTINCT txn_id FROM new_entries) AS t
    CROSS JOIN LATERAL (
        SELECT a.currency, sum(e.amount) AS total
        FROM journal_entries e JOIN ledger_accounts a ON a.id = e.account_id
        WHERE e.txn_id = t.txn_id
        GROUP BY a.currency
        HAVING sum(e.amount) <> 0
    ) AS s
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO v_count FROM journal_entries WHERE txn_id = v_txn_id;
    IF v_count < 2 THEN
        RAISE EXCEPTION 'journal transaction % has % entries; at least 2 are required',
            v_txn_id, v_count
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
    END IF;
    RAISE EXCEPTION 'journal transaction % is unbalanced: % entries sum to %',
        v_txn_id, v_currency, v_sum
        USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
END;
$$;

-- At COMMIT, per journal transaction: it has entries (their balance is checked per statement).
CREATE OR REPLACE FUNCTION ledger_check_txn_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM journal_entries WHERE txn_id = NEW.id) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO v_count FROM journal_entries WHERE txn_id = NEW.id;
    RAISE EXCEPTION 'journal transaction % has % entries; at least 2 are required',
        NEW.id, v_count
        USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
END;
$$;

-- A constraint trigger cannot be replaced in place; drop and create keeps this re-runnable.
DROP TRIGGER IF EXISTS journal_entry_txn_balanced ON journal_entries;
CREATE TRIGGER journal_entry_txn_balanced
    AFTER INSERT ON journal_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_entries_balanced();

ALTER TABLE journal_entries DROP CONSTRAINT IF EXISTS journal_entries_txn_id_fkey;
ALTER TABLE journal_entries DROP CONSTRAINT IF EXISTS journal_entries_account_id_fkey;

-- A ledger account is never removed or turned into another one: its entries keep meaning it.
CREATE OR REPLACE TRIGGER ledger_accounts_no_delete
    BEFORE DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE OR REPLACE TRIGGER ledger_accounts_no_truncate
    BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE OR REPLACE TRIGGER ledger_accounts_identity_fixed
    BEFORE UPDATE OF id, user_id, kind, currency ON ledger_accounts
    FOR EACH ROW
    WHEN ((OLD.id, OLD.user_id, OLD.kind, OLD.currency)
          IS DISTINCT FROM (NEW.id, NEW.user_id, NEW.kind, NEW.currency))
    EXECUTE FUNCTION ledger_refuse_change();
