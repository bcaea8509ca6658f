-- The lean order's tables (bench/sql/lean_order.sql), beside the project's in the orders
-- benchmark's database: the fewest columns, constraints and indexes that keep the design's
-- guarantees (docs/BENCHMARKS.md, "The lean order"). bench/orders_lean.py creates them and one
-- wallet per benchmark user, and drops them after the run.
DROP TABLE IF EXISTS lean_wallets, lean_orders, lean_entries, lean_outbox, lean_keys;
-- No double spend: the wallet row is locked, and neither balance may go below zero.
CREATE TABLE lean_wallets (
    user_id bigint PRIMARY KEY,
    balance numeric(18,4) NOT NULL CHECK (balance >= 0),
    locked numeric(18,4) NOT NULL DEFAULT 0 CHECK (locked >= 0),
    updated_at timestamptz NOT NULL DEFAULT now());
-- A client order id is never used twice by a user; a user's recent orders are found by index.
CREATE TABLE lean_orders (
    id uuid PRIMARY KEY, user_id bigint NOT NULL, client_order_id text NOT NULL,
    symbol text NOT NULL, side text NOT NULL, type text NOT NULL, quantity bigint NOT NULL,
    price numeric(18,4), status text NOT NULL, reserved numeric(18,4) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, client_order_id));
CREATE INDEX ON lean_orders (user_id, created_at);
-- A balanced journal transaction of two legs, found by its id.
CREATE TABLE lean_entries (
    id bigserial PRIMARY KEY, txn_id uuid NOT NULL, user_id bigint, account text NOT NULL,
    amount numeric(18,4) NOT NULL CHECK (amount <> 0), order_id uuid NOT NULL);
CREATE INDEX ON lean_entries (txn_id);
-- The order's record, committed with it, for the relay to publish.
CREATE TABLE lean_outbox (
    id bigserial PRIMARY KEY, topic text NOT NULL, key bytea NOT NULL, payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);
CREATE INDEX ON lean_outbox (id) WHERE published_at IS NULL;
-- Idempotency: the key is claimed first (a concurrent retry waits on it) and keeps the answer.
CREATE TABLE lean_keys (
    user_id bigint NOT NULL, key text NOT NULL, request_hash bytea NOT NULL, status int,
    body jsonb, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (user_id, key));
CREATE INDEX ON lean_keys (created_at);
