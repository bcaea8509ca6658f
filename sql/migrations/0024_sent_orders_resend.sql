-- depends: 0023_bridge_lease
--
-- An order can be recorded in sent_orders and never reach the exchange: the bridge records it
-- first (so a redelivered command is never sent twice) and may die before the send. The next
-- leader's recovery then hears "unknown order" (OrderID NONE) for it. Such an order is sent
-- again, from the command kept here, rather than being rejected for the bridge's crash.
--
-- new_order: the NewOrder command as recorded (its contract JSON); NULL for older rows.
-- resent_epoch: the lease epoch that last sent the order again; one resend per leader, so two
-- "unknown" answers to two status requests of one session send it once.
ALTER TABLE sent_orders ADD COLUMN IF NOT EXISTS new_order jsonb;
ALTER TABLE sent_orders ADD COLUMN IF NOT EXISTS resent_epoch bigint;
