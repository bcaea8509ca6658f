-- depends: 0019_settle_batch
--
-- The ledger's balance rule, checked once per statement instead of once per row at commit.
--
-- Before: two deferred constraint triggers ran ledger_check_txn_balanced at COMMIT for every
-- journal transaction row and again for every entry row (five runs for a fill with a fee), and
-- a batch of fills spent most of its commit there. Now:
--   * journal_entry_txn_balanced is a statement trigger: after each INSERT into journal_entries,
--     every journal transaction that statement touched must balance per currency and have at
--     least two entries, counting all its entries (those of earlier statements too). Each
--     transaction is looked up once per statement through journal_entries_txn_id_idx.
--   * journal_txn_balanced stays a deferred constraint trigger per journal transaction: at
--     COMMIT, the transaction must have entries (one written without any is refused).
-- Together they refuse what the old pair refused: entries are append-only (0002), so a
-- transaction that balances after every statement that added to it balances at commit, and one
-- with no entries is caught at commit. The one thing given up is writing a transaction's
-- entries in several statements that are unbalanced in between: every writer (core.ledger.post,
-- order_place, settle_apply) writes a transaction's entries in one statement.

CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_txn_id    uuid;
    v_currency  text;
    v_sum       numeric;
    v_count     bigint;
BEGIN
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
