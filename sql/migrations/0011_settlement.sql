-- depends: 0010_orders
-- What the settle agent remembers on an order between execution reports.
--
-- filled_notional: the sum of last_qty * last_px of the settled fills, so avg_px is always
--   filled_notional / cum_qty exactly (a running average of rounded averages would drift).
-- final_status_pending / final_cum_qty_pending: a final report (CANCELED, EXPIRED, REJECTED, or
--   FILLED) that arrived before some of the fills it counts. The exchange's cum_qty on that report
--   says how many shares were filled when the order ended; the order becomes final, and its
--   unused reserve is released, only once the settled cum_qty reaches it. Until then the order
--   keeps its working status, so a late fill still finds its reserve and its locked shares.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS filled_notional numeric(18,4) NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS final_status_pending text;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS final_cum_qty_pending bigint;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'orders_final_pending_valid' AND conrelid = 'orders'::regclass
    ) THEN
        ALTER TABLE orders ADD CONSTRAINT orders_final_pending_valid CHECK (
            (final_status_pending IS NULL) = (final_cum_qty_pending IS NULL)
            AND (final_status_pending IS NULL
                 OR final_status_pending IN ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED'))
            AND (final_cum_qty_pending IS NULL
                 OR final_cum_qty_pending BETWEEN 0 AND quantity)
        );
    END IF;
END;
$$;
