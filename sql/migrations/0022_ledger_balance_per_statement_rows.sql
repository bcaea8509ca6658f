-- depends: 0021_ledger_account_lookup_index
--
-- The ledger's statement check (0020) reads only the rows of its statement, never the journal.
--
-- 0020 checked, after each INSERT into journal_entries, that every journal transaction the
-- statement touched balances counting all its entries, earlier statements' included: a lookup
-- into journal_entries per transaction. That query's plan depends on the table's statistics and
-- is cached for the session. Planned before journal_entries had ever been analyzed (a fresh
-- database, or a bulk load with autovacuum behind), it probed journal_entries by account (the
-- system accounts are on every fill) and became quadratic: 22 s per 500-fill statement was
-- measured, the settle agent fell to 842 fills/s and stayed there.
--
-- Entries are append-only and non-zero, and every earlier statement was checked the same way,
-- so a transaction that balanced before a statement balances after it exactly when the rows
-- the statement adds to it balance per currency, and a balanced non-empty set of non-zero
-- amounts has at least two entries. The check therefore needs the transition table and the
-- accounts' currencies only: same refusals, same SQLSTATEs and messages (the journal is read
-- on the error path alone, to report the transaction's whole sum and count). The account
-- existence check is folded into the same query.
CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_txn_id     uuid;
    v_currency   text;
    v_sum        numeric;
    v_count      bigint;
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
    -- One row per (transaction, currency) that does not sum to zero; a missing account has no
    -- currency and sorts first, so it is reported before any imbalance it would cause.
    SELECT s.txn_id, s.currency, s.missing_account INTO v_txn_id, v_currency, v_account_id
    FROM (
        SELECT n.txn_id, a.currency, min(n.account_id) FILTER (WHERE a.id IS NULL) AS missing_account
        FROM new_entries n LEFT JOIN ledger_accounts a ON a.id = n.account_id
        GROUP BY n.txn_id, a.currency
        HAVING sum(n.amount) <> 0 OR bool_or(a.id IS NULL)
    ) AS s
    ORDER BY s.currency NULLS FIRST
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_currency IS NULL THEN
        RAISE EXCEPTION 'journal entries name ledger account %, which does not exist', v_account_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'journal_entries_account_id_fkey';
    END IF;
    SELECT count(*) INTO v_count FROM journal_entries WHERE txn_id = v_txn_id;
    IF v_count < 2 THEN
        RAISE EXCEPTION 'journal transaction % has % entries; at least 2 are required',
            v_txn_id, v_count
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
    END IF;
    SELECT sum(e.amount) INTO v_sum
    FROM journal_entries e JOIN ledger_accounts a ON a.id = e.account_id
    WHERE e.txn_id = v_txn_id AND a.currency = v_currency;
    RAISE EXCEPTION 'journal transaction % is unbalanced: % entries sum to %',
        v_txn_id, v_currency, v_sum
        USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
END;
$$;
