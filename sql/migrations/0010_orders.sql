-- depends: 0007_oms
-- Canceling an order finds its NewOrder row while it is still in the outbox (an after-market
-- order held for the open, or one the relay has not sent yet); this keeps that lookup off a scan
-- of every pending row.
CREATE INDEX IF NOT EXISTS outbox_pending_key_idx ON outbox (key)
    WHERE published_at IS NULL AND canceled_at IS NULL;
