-- The five data invariants of ARCHITECTURE.md section 4, one query each.
-- Each query returns the violating rows: an empty result means the invariant holds.
-- Format (parsed by infra.migrate.load_invariants): a line `-- name: <invariant_name>`, then the
-- query, terminated by `;`. Put an invariant's comments after its name line, not after the `;`.
-- Sign convention of the ledger: see the top of sql/migrations/0002_ledger.sql.

-- name: journal_txn_sums_to_zero
-- 1. Every journal transaction has at least two entries and sums to zero in each currency, and
--    every entry belongs to a journal transaction (kind NULL: entries whose transaction is gone).
SELECT v.txn_id, v.kind, v.currency, v.entry_count, v.total
FROM (
    SELECT t.id AS txn_id,
           t.kind,
           s.currency,
           coalesce(s.entry_count, 0) AS entry_count,
           coalesce(s.total, 0) AS total,
           t.created_at
    FROM journal_txns t
    LEFT JOIN (
        SELECT e.txn_id, a.currency, count(*) AS entry_count, sum(e.amount) AS total
        FROM journal_entries e
        JOIN ledger_accounts a ON a.id = e.account_id
        GROUP BY e.txn_id, a.currency
    ) s ON s.txn_id = t.id
    WHERE s.txn_id IS NULL
       OR s.total <> 0
       OR (SELECT count(*) FROM journal_entries e2 WHERE e2.txn_id = t.id) < 2
    UNION ALL
    SELECT e.txn_id, NULL, a.currency, count(*), sum(e.amount), NULL
    FROM journal_entries e
    JOIN ledger_accounts a ON a.id = e.account_id
    WHERE NOT EXISTS (SELECT 1 FROM journal_txns t WHERE t.id = e.txn_id)
    GROUP BY e.txn_id, a.currency
) v
ORDER BY v.created_at NULLS LAST, v.txn_id;

-- name: wallet_matches_ledger
-- 2. wallets.balance = sum of the user's CASH_AVAILABLE entries and wallets.locked_balance = sum
--    of the user's CASH_LOCKED entries, in the wallet's currency. Money on a user's accounts in a
--    currency with no wallet row is a violation too.
WITH ledger AS (
    SELECT a.user_id,
           a.currency,
           coalesce(sum(e.amount) FILTER (WHERE a.kind = 'CASH_AVAILABLE'), 0) AS available,
           coalesce(sum(e.amount) FILTER (WHERE a.kind = 'CASH_LOCKED'), 0) AS locked
    FROM ledger_accounts a
    LEFT JOIN journal_entries e ON e.account_id = a.id
    WHERE a.user_id IS NOT NULL
    GROUP BY a.user_id, a.currency
)
SELECT coalesce(w.user_id, l.user_id) AS user_id,
       coalesce(w.currency, l.currency) AS currency,
       w.balance AS wallet_balance,
       coalesce(l.available, 0) AS ledger_available,
       w.locked_balance AS wallet_locked_balance,
       coalesce(l.locked, 0) AS ledger_locked
FROM wallets w
FULL JOIN ledger l ON l.user_id = w.user_id AND l.currency = w.currency
WHERE coalesce(w.balance, 0) <> coalesce(l.available, 0)
   OR coalesce(w.locked_balance, 0) <> coalesce(l.locked, 0)
ORDER BY 1, 2;

-- name: no_negative_balances
-- 3. No available or locked balance is negative (wallet projections and the user ledger accounts
--    behind them); no holding quantity, locked quantity or unlocked quantity is negative.
SELECT 'wallet' AS source,
       user_id,
       currency AS asset,
       balance AS available,
       locked_balance AS locked
FROM wallets
WHERE balance < 0 OR locked_balance < 0
UNION ALL
SELECT 'ledger_account', a.user_id, a.currency || ':' || a.kind, sum(e.amount), NULL
FROM ledger_accounts a
JOIN journal_entries e ON e.account_id = a.id
WHERE a.user_id IS NOT NULL
GROUP BY a.id, a.user_id, a.currency, a.kind
HAVING sum(e.amount) < 0
UNION ALL
SELECT 'holding', user_id, symbol, quantity - locked_quantity, locked_quantity
FROM holdings
WHERE quantity < 0 OR locked_quantity < 0 OR locked_quantity > quantity
ORDER BY 1, 2, 3;

-- name: holding_matches_fills
-- 4. Each holding's quantity equals its user's settled BUY fills minus SELL fills in that symbol;
--    net fills with no holding row are a violation too.
WITH fills AS (
    SELECT o.user_id,
           x.symbol,
           sum(CASE x.side WHEN 'BUY' THEN x.last_qty ELSE -x.last_qty END) AS net_quantity
    FROM executions x
    JOIN orders o ON o.id = x.order_id
    WHERE x.settled_at IS NOT NULL
    GROUP BY o.user_id, x.symbol
)
SELECT coalesce(h.user_id, f.user_id) AS user_id,
       coalesce(h.symbol, f.symbol) AS symbol,
       h.quantity AS holding_quantity,
       coalesce(f.net_quantity, 0) AS fills_quantity
FROM holdings h
FULL JOIN fills f ON f.user_id = h.user_id AND f.symbol = h.symbol
WHERE coalesce(h.quantity, 0) <> coalesce(f.net_quantity, 0)
ORDER BY 1, 2;

-- name: fill_settled_once
-- 5. Each fill is settled exactly once: every execution is settled by exactly one FILL journal
--    transaction carrying its exec id, no exec id is recorded or settled twice, and every FILL
--    transaction is the settlement its execution points at.
SELECT 'unsettled' AS problem, x.exec_id, x.journal_txn_id AS txn_id
FROM executions x
WHERE x.settled_at IS NULL OR x.journal_txn_id IS NULL
UNION ALL
SELECT 'settled_by_wrong_txn', x.exec_id, x.journal_txn_id
FROM executions x
LEFT JOIN journal_txns t ON t.id = x.journal_txn_id
WHERE x.journal_txn_id IS NOT NULL
  AND (t.id IS NULL OR t.kind <> 'FILL' OR t.exec_id IS DISTINCT FROM x.exec_id)
UNION ALL
SELECT 'exec_id_in_several_txns', t.exec_id, NULL::uuid
FROM journal_txns t
WHERE t.exec_id IS NOT NULL
GROUP BY t.exec_id
HAVING count(*) > 1
UNION ALL
SELECT 'duplicate_execution', x.exec_id, NULL::uuid
FROM executions x
GROUP BY x.exec_id
HAVING count(*) > 1
UNION ALL
SELECT 'fill_txn_without_its_execution', t.exec_id, t.id
FROM journal_txns t
WHERE t.kind = 'FILL'
  AND NOT EXISTS (
      SELECT 1 FROM executions x WHERE x.exec_id = t.exec_id AND x.journal_txn_id = t.id
  )
ORDER BY 1, 2;
