-- depends: 0036_time_ordered_ids
--
-- The relay finds due rows through outbox_pending_txid_idx (0007): pending rows in transaction
-- order. outbox_unpublished_idx (0004), the ids of unpublished rows, predates it and no query
-- reads it any more, yet every outbox row (two per order) was written into it and out of it again
-- when published: 128 bytes of WAL per order of ~4,900 (pg_waldump, docs/BENCHMARKS.md).
DROP INDEX IF EXISTS outbox_unpublished_idx;
