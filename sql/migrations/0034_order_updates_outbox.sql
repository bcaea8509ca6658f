-- depends: 0033_candles_many_symbols
--
-- Order changes reach the order SSE stream through the outbox and Kafka, not NOTIFY.
--
-- A transaction that has queued a NOTIFY takes a database-wide lock at commit and holds it until
-- its commit record is flushed, so every order (each NOTIFYed its insert) committed in single
-- file, one WAL flush each, and the next order of the same user waited for that queue on its
-- wallet row. Measured with pgbench on order_place: the trigger alone took it from 0.51-0.71 to
-- 0.14-0.30 of the lean order at 16 clients (docs/BENCHMARKS.md, "Where an order's time goes").
--
-- Now each insert or visible change of an order adds an outbox row in the same transaction (an
-- insert like any other, committed in groups), and the outbox relay publishes it to the topic
-- named by the trigger's argument, keyed by user id, in commit order. Every API process reads
-- that topic from its end and hands each user's changes to their streams. One order's changes
-- are written by transactions that follow each other (its row lock), so they reach the topic,
-- and a stream, in order. The payload is the order as GET /v1/orders/{id} returns it
-- (api_order_json, the stored answer's definition too), plus user_id.
CREATE OR REPLACE FUNCTION orders_enqueue_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (topic, key, payload, headers)
    VALUES (
        TG_ARGV[0],
        convert_to(NEW.user_id::text, 'UTF8'),
        convert_to((api_order_json(NEW) || jsonb_build_object('user_id', NEW.user_id))::text,
                   'UTF8'),
        '{"record": "order_update.v1"}'::jsonb);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS orders_notify_insert ON orders;
DROP TRIGGER IF EXISTS orders_notify_update ON orders;
DROP FUNCTION IF EXISTS orders_notify_change();

-- The topic is core.contracts.orders.ORDER_UPDATES_TOPIC (a test pins the two equal).
DROP TRIGGER IF EXISTS orders_update_insert ON orders;
CREATE TRIGGER orders_update_insert
    AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_enqueue_update('oms.order-updates');

-- Only changes a client can see: settlement bookkeeping (filled_notional alone) is not news.
DROP TRIGGER IF EXISTS orders_update_update ON orders;
CREATE TRIGGER orders_update_update
    AFTER UPDATE ON orders
    FOR EACH ROW
    WHEN ((OLD.status, OLD.cum_qty, OLD.avg_px, OLD.reserved_amount, OLD.reject_reason,
           OLD.price, OLD.trigger_price, OLD.order_type, OLD.is_amo)
          IS DISTINCT FROM
          (NEW.status, NEW.cum_qty, NEW.avg_px, NEW.reserved_amount, NEW.reject_reason,
           NEW.price, NEW.trigger_price, NEW.order_type, NEW.is_amo))
    EXECUTE FUNCTION orders_enqueue_update('oms.order-updates');
