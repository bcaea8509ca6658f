-- depends: 0017_candles_stored_rollups
--
-- settle_apply: the writes of a whole batch of execution reports in one call (issue 5).
--
-- The settle agent (streams/settlement_batch.py) locks the batch's orders, wallets and holdings
-- (in that order, each sorted by key), applies the reports one after another in memory with the
-- rules of streams/settlement_rules.py, and sends the outcome here as one document:
--   currency    the ledger currency of the postings
--   txns        [{id, kind, reference, order_id, exec_id, external_ref}]   journal transactions
--   entries     [{txn_id, user_id, kind, amount}]   their legs (user_id null: a system account)
--   wallets     [{user_id, available, locked}]      deltas of the wallet projections
--   executions  [{exec_id, order_id, symbol, side, last_qty, last_px, fee, executed_at,
--                 journal_txn_id}]                 executions settled by this batch
--   holdings    [{user_id, symbol, quantity, locked_quantity, avg_buy_price, realized_pnl, new}]
--               the holdings' new values: rows the caller holds locked, or new rows (new: true)
--   orders      [{step, id, status, cum_qty, filled_notional, avg_px, reserved_amount,
--                 final_status_pending, final_cum_qty_pending, reject_reason}]
--               each order's successive states, step 1, 2, ...: one UPDATE per step, so the
--               order feed's NOTIFY trigger (0015) still sees every change of an order, in order.
-- Money travels as JSON strings and is cast to numeric: exact, never float.
--
-- Guards, so a wrong document cannot write half a batch: the unique exec id of journal_txns
-- and the (kind, external_ref) key refuse a fill or a release settled before; every entry must
-- name an account, every wallet and every execution must be written, or the call raises; the
-- ledger's deferred balance triggers check every journal transaction at commit. Any error rolls
-- the caller's transaction back, and the agent settles those reports one by one instead.
CREATE OR REPLACE FUNCTION settle_apply(p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
    updated bigint;
    steps   int;
BEGIN
    INSERT INTO journal_txns (id, kind, reference, order_id, exec_id, external_ref)
    SELECT t.id, t.kind, t.reference, t.order_id, t.exec_id, t.external_ref
    FROM jsonb_to_recordset(p -> 'txns')
        AS t(id uuid, kind text, reference text, order_id uuid, exec_id text, external_ref text);

    INSERT INTO journal_entries (txn_id, account_id, amount)
    SELECT e.txn_id, a.id, e.amount
    FROM jsonb_to_recordset(p -> 'entries')
        AS e(txn_id uuid, user_id bigint, kind text, amount numeric)
    -- coalesce, not IS NOT DISTINCT FROM: an equality, so the join can hash (user ids are > 0).
    JOIN ledger_accounts a ON a.kind = e.kind AND a.currency = p ->> 'currency'
        AND coalesce(a.user_id, 0) = coalesce(e.user_id, 0);
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written <> jsonb_array_length(p -> 'entries') THEN
        RAISE EXCEPTION 'settle_apply: % of % entries name no % account',
            jsonb_array_length(p -> 'entries') - written, jsonb_array_length(p -> 'entries'),
            p ->> 'currency'
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    UPDATE wallets w
    SET balance = w.balance + d.available, locked_balance = w.locked_balance + d.locked,
        updated_at = now()
    FROM jsonb_to_recordset(p -> 'wallets') AS d(user_id bigint, available numeric, locked numeric)
    WHERE w.user_id = d.user_id;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written <> jsonb_array_length(p -> 'wallets') THEN
        RAISE EXCEPTION 'settle_apply: % of % users have no wallet',
            jsonb_array_length(p -> 'wallets') - written, jsonb_array_length(p -> 'wallets')
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    -- A row recorded unsettled (e.g. by reconciliation) is settled by this batch.
    INSERT INTO executions (exec_id, order_id, symbol, side, last_qty, last_px, fee, executed_at,
        journal_txn_id, settled_at)
    SELECT x.exec_id, x.order_id, x.symbol, x.side, x.last_qty, x.last_px, x.fee, x.executed_at,
        x.journal_txn_id, now()
    FROM jsonb_to_recordset(p -> 'executions')
        AS x(exec_id text, order_id uuid, symbol text, side text, last_qty bigint,
             last_px numeric, fee numeric, executed_at timestamptz, journal_txn_id uuid)
    ON CONFLICT (exec_id) DO UPDATE SET journal_txn_id = EXCLUDED.journal_txn_id,
        settled_at = EXCLUDED.settled_at
        WHERE executions.settled_at IS NULL;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written <> jsonb_array_length(p -> 'executions') THEN
        RAISE EXCEPTION 'settle_apply: % of % executions were settled before',
            jsonb_array_length(p -> 'executions') - written, jsonb_array_length(p -> 'executions')
            USING ERRCODE = 'unique_violation';
    END IF;

    -- A holding new to this batch is inserted, never upserted: had anyone else created it since
    -- the caller looked, the unique key refuses the batch rather than overwrite that row.
    INSERT INTO holdings (user_id, symbol, quantity, locked_quantity, avg_buy_price, realized_pnl)
    SELECT v.user_id, v.symbol, v.quantity, v.locked_quantity, v.avg_buy_price, v.realized_pnl
    FROM jsonb_to_recordset(p -> 'holdings')
        AS v(user_id bigint, symbol text, quantity bigint, locked_quantity bigint,
             avg_buy_price numeric, realized_pnl numeric, new boolean)
    WHERE v.new IS TRUE;
    GET DIAGNOSTICS written = ROW_COUNT;
    UPDATE holdings h
    SET quantity = v.quantity, locked_quantity = v.locked_quantity,
        avg_buy_price = v.avg_buy_price, realized_pnl = v.realized_pnl, updated_at = now()
    FROM jsonb_to_recordset(p -> 'holdings')
        AS v(user_id bigint, symbol text, quantity bigint, locked_quantity bigint,
             avg_buy_price numeric, realized_pnl numeric, new boolean)
    WHERE v.new IS FALSE AND h.user_id = v.user_id AND h.symbol = v.symbol;
    GET DIAGNOSTICS updated = ROW_COUNT;
    -- A holding to update that is gone, or an entry that does not say whether it is new.
    IF written + updated <> jsonb_array_length(p -> 'holdings') THEN
        RAISE EXCEPTION 'settle_apply: % of % holdings were not written',
            jsonb_array_length(p -> 'holdings') - written - updated,
            jsonb_array_length(p -> 'holdings')
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    SELECT coalesce(max((o ->> 'step')::int), 0) INTO steps
    FROM jsonb_array_elements(p -> 'orders') AS o;
    FOR k IN 1 .. steps LOOP
        UPDATE orders o
        SET status = r.status, cum_qty = r.cum_qty, filled_notional = r.filled_notional,
            avg_px = coalesce(r.avg_px, o.avg_px), reserved_amount = r.reserved_amount,
            final_status_pending = r.final_status_pending,
            final_cum_qty_pending = r.final_cum_qty_pending, reject_reason = r.reject_reason,
            updated_at = now()
        FROM jsonb_to_recordset(p -> 'orders')
            AS r(step int, id uuid, status text, cum_qty bigint, filled_notional numeric,
                 avg_px numeric, reserved_amount numeric, final_status_pending text,
                 final_cum_qty_pending bigint, reject_reason text)
        WHERE r.step = k AND o.id = r.id;
    END LOOP;
END;
$$;

-- The ledger's balance check (0002), the same rule in one query instead of two: it runs at
-- commit for every journal transaction and every entry, five times per fill, so a batch of fills
-- spends most of its commit here. Same refusals, same error codes and messages.
CREATE OR REPLACE FUNCTION ledger_check_txn_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_txn_id        uuid;
    v_entry_count   bigint;
    v_currency      text;
    v_sum           numeric;
BEGIN
    IF TG_TABLE_NAME = 'journal_txns' THEN
        v_txn_id := NEW.id;
    ELSE
        v_txn_id := NEW.txn_id;
    END IF;
    SELECT coalesce(sum(s.n), 0), min(s.currency) FILTER (WHERE s.total <> 0)
    INTO v_entry_count, v_currency
    FROM (
        SELECT a.currency, count(*) AS n, sum(e.amount) AS total
        FROM journal_entries e
        JOIN ledger_accounts a ON a.id = e.account_id
        WHERE e.txn_id = v_txn_id
        GROUP BY a.currency
    ) s;
    IF v_entry_count < 2 THEN
        RAISE EXCEPTION 'journal transaction % has % entries; at least 2 are required',
            v_txn_id, v_entry_count
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
    END IF;
    IF v_currency IS NOT NULL THEN
        SELECT sum(e.amount) INTO v_sum FROM journal_entries e
        JOIN ledger_accounts a ON a.id = e.account_id
        WHERE e.txn_id = v_txn_id AND a.currency = v_currency;
        RAISE EXCEPTION 'journal transaction % is unbalanced: % entries sum to %',
            v_txn_id, v_currency, v_sum
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_txn_balanced';
    END IF;
    RETURN NULL;
END;
$$;
