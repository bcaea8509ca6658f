-- A money-like transaction for pgbench (custom-script mode): move an amount between two wallets.
-- Rows are locked in id order so that concurrent transfers never deadlock; the two ledger entries
-- sum to zero. Tables bench_wallets and bench_entries are created by bench/pg_ceiling.py;
-- :wallets is passed with -D wallets=N.
\set from_id random(1, :wallets)
\set to_id random(1, :wallets)
\set cents random(1, 100000)
BEGIN;
SELECT id FROM bench_wallets WHERE id IN (:from_id, :to_id) ORDER BY id FOR UPDATE;
UPDATE bench_wallets SET balance = balance - CAST(:cents AS numeric) / 100 WHERE id = :from_id;
UPDATE bench_wallets SET balance = balance + CAST(:cents AS numeric) / 100 WHERE id = :to_id;
INSERT INTO bench_entries (wallet_id, amount)
    VALUES (:from_id, -CAST(:cents AS numeric) / 100), (:to_id, CAST(:cents AS numeric) / 100);
END;
