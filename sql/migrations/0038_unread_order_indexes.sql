-- depends: 0037_outbox_one_pending_index
--
-- Two indexes every order writes and no query reads: orders_open_idx (0003, open orders by
-- creation time) and journal_txns_created_at_idx (0002, journal transactions by time). The API,
-- the stream workers, the bridge and the pipelines find orders by id, by user
-- (orders_user_created_idx) or by pending stop, and journal transactions by id, exec id or
-- account; none filters either table by time alone. Each was a right-edge insert per order:
-- together about 250 bytes of WAL of ~4,860 (docs/BENCHMARKS.md). A reader that needs one
-- brings it back in its own migration.
DROP INDEX IF EXISTS orders_open_idx;
DROP INDEX IF EXISTS journal_txns_created_at_idx;
