-- depends: 0034_order_updates_outbox
--
-- The ledger's statement check (0022) looks up each account and journal transaction its
-- statement names through their primary keys, whatever the sizes of the tables.
--
-- The planner knows nothing of a transition table's size, so the plan of the check's join
-- followed the size and statistics of ledger_accounts: with a few hundred accounts (the orders
-- benchmark's 200 users) it was a hash join over a sequential scan, so every order's reserve
-- posting read every account (0.20 of the 0.27 ms its insert took, auto_explain). The same could
-- happen with journal_txns in "every named transaction exists". A scalar subquery is never
-- turned into a join: it runs once per entry or transaction, one primary key lookup each, which
-- is what a statement of two to a few hundred entries needs, at any size of the tables. Same
-- refusals, SQLSTATEs and messages as 0022; still only the statement's rows are summed.
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
    WHERE (SELECT j.id FROM journal_txns j WHERE j.id = t.txn_id) IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entries name journal transaction %, which does not exist', v_txn_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'journal_entries_txn_id_fkey';
    END IF;
    -- One row per (transaction, currency) that does not sum to zero; an entry whose account is
    -- missing has no currency (the column is NOT NULL) and sorts first, so it is reported
    -- before any imbalance it would cause.
    SELECT s.txn_id, s.currency, s.missing_account INTO v_txn_id, v_currency, v_account_id
    FROM (
        SELECT c.txn_id, c.currency,
               min(c.account_id) FILTER (WHERE c.currency IS NULL) AS missing_account
        FROM (
            SELECT n.txn_id, n.account_id, n.amount,
                   (SELECT a.currency FROM ledger_accounts a WHERE a.id = n.account_id)
                       AS currency
            FROM new_entries n
        ) AS c
        GROUP BY c.txn_id, c.currency
        HAVING sum(c.amount) <> 0 OR bool_or(c.currency IS NULL)
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
