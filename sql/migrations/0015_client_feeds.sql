-- depends: 0012_candles
--
-- What the client feeds need: a notification per order change (the order SSE stream), and
-- weekly and monthly candles.

-- Every insert or visible change of an order NOTIFYs the API's order feed with the order as
-- GET /v1/orders/{id} returns it (plus user_id). PostgreSQL delivers notifications in commit
-- order, and two transactions changing one order commit one after the other (the row lock),
-- so a listener sees each order's changes in order, each one. A payload near the 8000-byte
-- limit (a very long reject reason) is replaced by the ids alone; the feed then reads the row.
CREATE OR REPLACE FUNCTION orders_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    payload := json_build_object(
        'user_id', NEW.user_id, 'id', NEW.id, 'client_order_id', NEW.client_order_id,
        'symbol', NEW.symbol, 'side', NEW.side, 'type', NEW.order_type,
        'quantity', NEW.quantity, 'price', NEW.price, 'trigger_price', NEW.trigger_price,
        'time_in_force', NEW.time_in_force, 'status', NEW.status, 'cum_qty', NEW.cum_qty,
        'avg_px', NEW.avg_px, 'reserved_amount', NEW.reserved_amount, 'is_amo', NEW.is_amo,
        'reject_reason', NEW.reject_reason, 'created_at', NEW.created_at,
        'updated_at', NEW.updated_at)::text;
    IF octet_length(payload) > 7900 THEN
        payload := json_build_object('user_id', NEW.user_id, 'id', NEW.id, 'partial', true)::text;
    END IF;
    PERFORM pg_notify('orders_changed', payload);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS orders_notify_insert ON orders;
CREATE TRIGGER orders_notify_insert
    AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_notify_change();

-- Only changes a client can see: settlement bookkeeping (filled_notional alone) is not news.
DROP TRIGGER IF EXISTS orders_notify_update ON orders;
CREATE TRIGGER orders_notify_update
    AFTER UPDATE ON orders
    FOR EACH ROW
    WHEN ((OLD.status, OLD.cum_qty, OLD.avg_px, OLD.reserved_amount, OLD.reject_reason,
           OLD.price, OLD.trigger_price, OLD.order_type, OLD.is_amo)
          IS DISTINCT FROM
          (NEW.status, NEW.cum_qty, NEW.avg_px, NEW.reserved_amount, NEW.reject_reason,
           NEW.price, NEW.trigger_price, NEW.order_type, NEW.is_amo))
    EXECUTE FUNCTION orders_notify_change();

-- Weeks (Monday 00:00 UTC) and calendar months (the 1st, 00:00 UTC) do not have a fixed width
-- date_bin could use, so they are rolled up from the 1d candles (candles_between: SQL on plain
-- PostgreSQL, the candles_1d continuous aggregate on TimescaleDB). p_unit is 'week' or 'month';
-- the candles returned start in [p_start, p_end), as with candles_between.
CREATE OR REPLACE FUNCTION candles_calendar_ceil(p_unit text, p_ts timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    b timestamptz;
BEGIN
    IF p_unit NOT IN ('week', 'month') THEN
        RAISE EXCEPTION 'no calendar candles of unit %', p_unit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    b := date_trunc(p_unit, p_ts, 'UTC');
    RETURN CASE WHEN b < p_ts THEN b + ('1 ' || p_unit)::interval ELSE b END;
END;
$$;

CREATE OR REPLACE FUNCTION candles_calendar_between(
    p_symbol text, p_unit text, p_start timestamptz, p_end timestamptz
)
RETURNS TABLE (
    bucket_start timestamptz,
    open         numeric(18,4),
    high         numeric(18,4),
    low          numeric(18,4),
    close        numeric(18,4),
    volume       bigint,
    trade_count  bigint
)
LANGUAGE sql STABLE AS $$
    SELECT date_trunc(p_unit, d.bucket_start, 'UTC') AS b,
           (array_agg(d.open ORDER BY d.bucket_start))[1],
           max(d.high),
           min(d.low),
           (array_agg(d.close ORDER BY d.bucket_start DESC))[1],
           sum(d.volume)::bigint,
           sum(d.trade_count)::bigint
    FROM candles_between(p_symbol, interval '1 day', candles_calendar_ceil(p_unit, p_start),
                         candles_calendar_ceil(p_unit, p_end)) AS d
    GROUP BY b
    ORDER BY b
$$;
