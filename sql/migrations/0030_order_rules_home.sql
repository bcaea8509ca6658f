-- depends: 0027_watchlists
--
-- One home for the order rules and the reserve's legs: here, where they run.
--
-- order_place (0018) decides every rule the API cannot decide without the database: the
-- instrument, lot, tick, session, the price an order is valued at, its value, its reserve, the
-- fraud rules, funds and shares. Its refusals and sums are pinned by the case table in
-- tests/integration/test_order_place_cases.py; no Python copy of them is kept.
--
-- Changes to 0018's function:
--   * The reserve is computed by order_buy_reserve from the basis points the settings name, so
--     the API no longer turns them into factors to match a Python copy of the rule.
--   * The reserve's ledger posting is written by ledger_post_order_reserve, the one definition
--     of its legs; the test helpers that need a reserved order call it too.

-- Cash to lock for a buy: the value, times the protection band for orders that trade at the
-- market's price (MARKET, STOP_LOSS), times the fee a fill may take, rounded up to the money
-- scale so the reserve always covers what fills can take. Multiplications by 0.0001, never a
-- division, so NUMERIC keeps every digit before the rounding.
CREATE OR REPLACE FUNCTION order_buy_reserve(
    p_order_type text, p_value numeric, p_fee_rate_bps integer, p_band_bps integer
) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ceil(p_value
        * ((10000 + CASE WHEN p_order_type IN ('MARKET', 'STOP_LOSS') THEN p_band_bps ELSE 0 END)
            * 0.0001)
        * ((10000 + p_fee_rate_bps) * 0.0001)
        * 10000) * 0.0001
$$;

-- The ORDER_RESERVE posting: the user's available cash down, locked cash up, by the same amount,
-- and the wallet projection moved with them (core/ledger.py's sign convention). The ledger's
-- statement trigger checks the transaction balances and names existing accounts; the wallet's
-- CHECKs refuse a negative balance. Returns the journal transaction's id.
CREATE OR REPLACE FUNCTION ledger_post_order_reserve(
    p_user_id bigint, p_order_id uuid, p_amount numeric, p_currency text
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_txn_id uuid;
    v_rows bigint;
BEGIN
    INSERT INTO journal_txns (kind, reference, order_id)
        VALUES ('ORDER_RESERVE', 'reserve for order ' || p_order_id::text, p_order_id)
        RETURNING id INTO v_txn_id;
    INSERT INTO journal_entries (txn_id, account_id, amount)
        SELECT v_txn_id, a.id, e.amount
        FROM (VALUES ('CASH_AVAILABLE', -p_amount), ('CASH_LOCKED', p_amount)) AS e(kind, amount)
        JOIN ledger_accounts a ON a.kind = e.kind AND a.currency = p_currency
            AND a.user_id = p_user_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows <> 2 THEN
        RAISE EXCEPTION '% entries name no % account', 2 - v_rows, p_currency;
    END IF;
    UPDATE wallets SET balance = balance - p_amount, locked_balance = locked_balance + p_amount,
            updated_at = now()
        WHERE user_id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % has no wallet', p_user_id;
    END IF;
    RETURN v_txn_id;
END;
$$;

-- The signature changes (basis points instead of factors): the old function goes.
DROP FUNCTION IF EXISTS order_place(bigint, text, bytea, uuid, text, text, text, text, text,
    bigint, numeric, numeric, text, boolean, timestamptz, numeric, numeric, numeric, integer,
    text, text, bytea, bytea, jsonb);

CREATE OR REPLACE FUNCTION order_place(
    p_user_id bigint,
    p_key text,
    p_request_hash bytea,
    p_order_id uuid,
    p_client_order_id text,       -- NULL: the order id
    p_symbol text,
    p_side text,
    p_order_type text,
    p_time_in_force text,
    p_quantity bigint,
    p_price numeric,
    p_trigger_price numeric,
    p_closed_detail text,         -- NULL while the order may go (market open, or an AMO)
    p_is_amo boolean,
    p_available_at timestamptz,   -- when the outbox row may be published; NULL = now
    p_band_bps integer,           -- the market protection band, for marketable buys
    p_fee_rate_bps integer,       -- the fee a fill may take, reserved with a buy
    p_value_max numeric,          -- fraud rule order_value_limit
    p_orders_per_minute_max integer,  -- fraud rule order_rate_limit
    p_currency text,
    p_topic text,
    p_outbox_key bytea,
    p_outbox_payload bytea,       -- the NewOrder record, encoded by the API's codec
    p_outbox_headers jsonb
) RETURNS TABLE (response_status integer, response_body jsonb, replayed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_claimed boolean;
    v_stored_hash bytea;
    v_stored_status integer;
    v_stored_body jsonb;
    v_tick numeric;
    v_lot bigint;
    v_unit_price numeric;
    v_value numeric;
    v_reserve numeric := 0;
    v_available numeric;
    v_recent bigint;
    v_refusal_code text;
    v_refusal_detail text;
    v_refusal_status integer := 422;
    v_status text;
    v_order orders;
BEGIN
    -- 1. The key: a concurrent request with the same key waits here until the first ends.
    INSERT INTO idempotency_keys (user_id, key, request_hash)
        VALUES (p_user_id, p_key, p_request_hash)
        ON CONFLICT (user_id, key) DO NOTHING RETURNING true INTO v_claimed;
    IF v_claimed IS NULL THEN
        SELECT k.request_hash, k.response_status, k.response_body
            INTO v_stored_hash, v_stored_status, v_stored_body
            FROM idempotency_keys k WHERE k.user_id = p_user_id AND k.key = p_key;
        IF NOT FOUND THEN
            -- Deleted by expiry between the two statements: the client may simply retry.
            RAISE EXCEPTION USING ERRCODE = 'BR409', HINT = 'idempotency_race',
                MESSAGE = 'the idempotency key expired meanwhile; retry';
        END IF;
        IF v_stored_hash <> p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'idempotency_key_reused',
                MESSAGE = 'this X-Idempotency-Key was used for a different request; use a new'
                    || ' key for a new request';
        END IF;
        IF v_stored_status IS NULL OR jsonb_typeof(v_stored_body) IS DISTINCT FROM 'object' THEN
            -- Every claim commits together with its response; a bare key is a bug elsewhere.
            RAISE EXCEPTION 'idempotency key % of user % has no stored response', p_key, p_user_id;
        END IF;
        RETURN QUERY SELECT v_stored_status, v_stored_body, true;
        RETURN;
    END IF;

    -- 2. Validation against reference data, the calendar and the last price.
    SELECT i.tick_size, i.lot_size INTO v_tick, v_lot
        FROM instruments i WHERE i.symbol = p_symbol AND i.is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'unknown_symbol',
            MESSAGE = format('unknown or inactive symbol %s', p_symbol);
    END IF;
    IF p_quantity % v_lot <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'invalid_lot_size',
            MESSAGE = format('quantity %s is not a multiple of the lot size %s', p_quantity, v_lot);
    END IF;
    IF p_price IS NOT NULL AND p_price % v_tick <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'invalid_tick',
            MESSAGE = format('price %s is not a multiple of the tick size %s', p_price, v_tick);
    END IF;
    IF p_trigger_price IS NOT NULL AND p_trigger_price % v_tick <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'invalid_tick',
            MESSAGE = format('trigger_price %s is not a multiple of the tick size %s',
                p_trigger_price, v_tick);
    END IF;
    IF p_closed_detail IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'market_closed',
            MESSAGE = p_closed_detail;
    END IF;
    -- The price the order is valued and reserved at: limit, else trigger, else the last trade.
    IF p_order_type IN ('LIMIT', 'STOP_LIMIT') THEN
        v_unit_price := p_price;
    ELSIF p_order_type = 'STOP_LOSS' THEN
        v_unit_price := p_trigger_price;
    ELSE
        SELECT lp.price INTO v_unit_price FROM last_prices lp WHERE lp.symbol = p_symbol;
        IF v_unit_price IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'no_price',
                MESSAGE = format('no price yet for %s: place a LIMIT order until it trades',
                    p_symbol);
        END IF;
    END IF;
    v_value := p_quantity * v_unit_price;
    IF abs(v_value) >= 1e14 THEN
        RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'order_value_too_large',
            MESSAGE = format('%s x %s is too large to be a money amount (below 10**14)',
                p_quantity, v_unit_price);
    END IF;
    v_value := round(v_value, 4);
    IF p_side = 'BUY' THEN
        v_reserve := order_buy_reserve(p_order_type, v_value, p_fee_rate_bps, p_band_bps);
        IF v_reserve >= 1e14 THEN
            RAISE EXCEPTION USING ERRCODE = 'BR422', HINT = 'order_value_too_large',
                MESSAGE = format('the reserve of %s does not fit a money amount', v_reserve);
        END IF;
    END IF;

    -- 3. Lock the wallet or holding this order uses, then count the user's recent orders: the
    -- lock serializes one user's concurrent orders, so each count sees the others' orders.
    IF p_side = 'BUY' THEN
        -- wallets.balance is the AVAILABLE cash (locked cash is locked_balance).
        SELECT w.balance INTO v_available FROM wallets w WHERE w.user_id = p_user_id FOR UPDATE;
    ELSE
        SELECT h.quantity - h.locked_quantity INTO v_available
            FROM holdings h WHERE h.user_id = p_user_id AND h.symbol = p_symbol FOR UPDATE;
    END IF;
    v_available := coalesce(v_available, 0);
    SELECT count(*) INTO v_recent FROM orders o
        WHERE o.user_id = p_user_id AND o.created_at > now() - interval '1 minute';

    -- 4. Refusals that depend on the account: stored as the key's response.
    IF v_value > p_value_max THEN
        v_refusal_code := 'order_value_limit';
        v_refusal_detail := format('fraud rule order_value_limit: the order is worth %s, above'
            ' the limit of %s per order', v_value, p_value_max);
    ELSIF v_recent >= p_orders_per_minute_max THEN
        v_refusal_code := 'order_rate_limit';
        v_refusal_detail := format('fraud rule order_rate_limit: %s orders in the last minute;'
            ' at most %s are allowed', v_recent, p_orders_per_minute_max);
    ELSIF p_side = 'BUY' AND v_available < v_reserve THEN
        v_refusal_code := 'insufficient_funds';
        v_refusal_detail := format('insufficient funds: the order needs %s (fees and any market'
            ' protection band included), %s is available', v_reserve, v_available);
    ELSIF p_side = 'SELL' AND v_available < p_quantity THEN
        v_refusal_code := 'insufficient_shares';
        v_refusal_detail := format('insufficient shares: selling %s %s, %s available',
            p_quantity, p_symbol, v_available);
    END IF;

    -- 5. The writes.
    IF v_refusal_code IS NULL THEN
        v_status := CASE WHEN p_order_type IN ('STOP_LOSS', 'STOP_LIMIT')
            THEN 'PENDING_TRIGGER' ELSE 'NEW' END;
        INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type,
                time_in_force, quantity, price, trigger_price, status, reserved_amount, is_amo)
            VALUES (p_order_id, p_user_id, coalesce(p_client_order_id, p_order_id::text),
                p_symbol, p_side, p_order_type, p_time_in_force, p_quantity, p_price,
                p_trigger_price, v_status, v_reserve, p_is_amo)
            ON CONFLICT ON CONSTRAINT orders_client_order_id_key DO NOTHING
            RETURNING * INTO v_order;
        IF v_order.id IS NULL THEN
            v_refusal_status := 409;
            v_refusal_code := 'client_order_id_reused';
            v_refusal_detail := format('client_order_id %s was used before; a client order id'
                ' can never be reused', quote_literal(p_client_order_id));
        END IF;
    END IF;
    IF v_refusal_code IS NOT NULL THEN
        UPDATE idempotency_keys k
            SET response_status = v_refusal_status,
                response_body = jsonb_build_object('error', v_refusal_code,
                    'detail', v_refusal_detail)
            WHERE k.user_id = p_user_id AND k.key = p_key
            RETURNING k.response_status, k.response_body INTO v_stored_status, v_stored_body;
        RETURN QUERY SELECT v_stored_status, v_stored_body, false;
        RETURN;
    END IF;
    IF p_side = 'BUY' THEN
        PERFORM ledger_post_order_reserve(p_user_id, p_order_id, v_reserve, p_currency);
    ELSE
        UPDATE holdings SET locked_quantity = locked_quantity + p_quantity, updated_at = now()
            WHERE user_id = p_user_id AND symbol = p_symbol;
    END IF;
    IF v_status = 'NEW' THEN
        INSERT INTO outbox (topic, key, payload, headers, available_at)
            VALUES (p_topic, p_outbox_key, p_outbox_payload, p_outbox_headers,
                coalesce(p_available_at, now()));
    END IF;
    UPDATE idempotency_keys k
        SET response_status = 201, response_body = api_order_json(v_order)
        WHERE k.user_id = p_user_id AND k.key = p_key
        RETURNING k.response_status, k.response_body INTO v_stored_status, v_stored_body;
    RETURN QUERY SELECT v_stored_status, v_stored_body, false;
END;
$$;
