-- depends: 0010_orders
--
-- Candles beyond the base interval, and what the candles agent needs to count each tick once.
--
-- The agent writes 1 s candles (bucket_width '1 second'). 1m, 5m, 15m, 1h and 1d are rolled up
-- from them: open = the first 1 s open by time, close = the last close, high = max, low = min,
-- volume and trade_count = sums. Buckets are aligned on UTC midnight (every width divides a day,
-- so the 1d candle of the Asia/Kolkata session, 09:15-15:30 IST = 03:45-10:00 UTC, is whole).
-- One query answers every width on both databases:
--     SELECT * FROM candles_between('ACME', interval '5 minutes', '2024-09-16', '2024-09-17');
-- returns the candles whose bucket starts in [start, end).

-- Open and close must merge correctly when a bucket is written by several batches or workers
-- or corrected by a late tick: keep the exchange time and sequence number of each.
ALTER TABLE candles
    ADD COLUMN IF NOT EXISTS open_ts_ns  bigint,
    ADD COLUMN IF NOT EXISTS open_seq    bigint,
    ADD COLUMN IF NOT EXISTS close_ts_ns bigint,
    ADD COLUMN IF NOT EXISTS close_seq   bigint;

-- Per source partition of md.ticks: the last offset counted into candles and the partition's
-- stream time (newest exchange time counted; decides which ticks are too late). Updated in the
-- same transaction as the candle upserts, so a replayed offset is skipped.
CREATE TABLE IF NOT EXISTS candles_applied_offsets (
    topic           text        NOT NULL,
    partition       integer     NOT NULL CHECK (partition >= 0),
    last_offset     bigint      NOT NULL CHECK (last_offset >= -1),
    stream_time_ns  bigint      NOT NULL DEFAULT 0 CHECK (stream_time_ns >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- The widths served, and the first bucket start at or after ts for one of them.
CREATE OR REPLACE FUNCTION candles_bucket_ceil(p_width interval, p_ts timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    b timestamptz;
BEGIN
    IF p_width NOT IN (interval '1 second', interval '1 minute', interval '5 minutes',
                       interval '15 minutes', interval '1 hour', interval '1 day') THEN
        RAISE EXCEPTION 'no candles of width %', p_width USING ERRCODE = 'invalid_parameter_value';
    END IF;
    b := date_bin(p_width, p_ts, timestamptz '2000-01-01 00:00:00+00');
    RETURN CASE WHEN b < p_ts THEN b + p_width ELSE b END;
END;
$$;

-- Plain PostgreSQL: roll the 1 s rows up at query time (one index range scan on the primary key).
CREATE OR REPLACE FUNCTION candles_between(
    p_symbol text, p_width interval, p_start timestamptz, p_end timestamptz
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
    SELECT date_bin(p_width, c.bucket_start, timestamptz '2000-01-01 00:00:00+00') AS b,
           (array_agg(c.open ORDER BY c.bucket_start))[1],
           max(c.high),
           min(c.low),
           (array_agg(c.close ORDER BY c.bucket_start DESC))[1],
           sum(c.volume)::bigint,
           sum(c.trade_count)::bigint
    FROM candles AS c
    WHERE c.symbol = p_symbol
      AND c.bucket_width = interval '1 second'
      AND c.bucket_start >= candles_bucket_ceil(p_width, p_start)
      AND c.bucket_start < candles_bucket_ceil(p_width, p_end)
    GROUP BY b
    ORDER BY b
$$;

-- TimescaleDB (candles is a hypertable, see 0005): one continuous aggregate per width, refreshed
-- by a policy, read with real-time aggregation so the newest buckets are included; the function
-- keeps its signature and reads them. time_bucket aligns these widths on UTC midnight as
-- date_bin does above, and first/last by bucket_start equal the array_agg picks, so both
-- paths return the same numbers. A late tick only lands within candles_grace_ms, and the
-- policies never materialize a bucket younger than two widths, so no correction is missed.
DO $$
DECLARE
    w record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb is not installed: candles roll up by SQL (candles_between)';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'candles') THEN
        RAISE NOTICE 'candles is not a hypertable: candles roll up by SQL (candles_between)';
        RETURN;
    END IF;
    FOR w IN SELECT * FROM (VALUES ('1m', interval '1 minute', interval '1 day'),
                                   ('5m', interval '5 minutes', interval '3 days'),
                                   ('15m', interval '15 minutes', interval '7 days'),
                                   ('1h', interval '1 hour', interval '30 days'),
                                   ('1d', interval '1 day', interval '400 days'))
                           AS t (name, width, lookback)
    LOOP
        EXECUTE format($f$
            CREATE MATERIALIZED VIEW IF NOT EXISTS %I
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT symbol, time_bucket(%L::interval, bucket_start) AS bucket_start,
                   first(open, bucket_start) AS open, max(high) AS high, min(low) AS low,
                   last(close, bucket_start) AS close, sum(volume)::bigint AS volume,
                   sum(trade_count)::bigint AS trade_count
            FROM candles WHERE bucket_width = interval '1 second'
            GROUP BY symbol, time_bucket(%L::interval, bucket_start)
            WITH NO DATA$f$, 'candles_' || w.name, w.width, w.width);
        PERFORM add_continuous_aggregate_policy('candles_' || w.name,
            start_offset => w.lookback, end_offset => 2 * w.width,
            schedule_interval => least(w.width, interval '1 hour'), if_not_exists => true);
    END LOOP;
    CREATE OR REPLACE FUNCTION candles_between(
        p_symbol text, p_width interval, p_start timestamptz, p_end timestamptz
    )
    RETURNS TABLE (
        bucket_start timestamptz, open numeric(18,4), high numeric(18,4), low numeric(18,4),
        close numeric(18,4), volume bigint, trade_count bigint
    )
    LANGUAGE plpgsql STABLE AS $f$
    DECLARE
        view_name text := CASE p_width WHEN interval '1 minute' THEN 'candles_1m'
            WHEN interval '5 minutes' THEN 'candles_5m' WHEN interval '15 minutes' THEN 'candles_15m'
            WHEN interval '1 hour' THEN 'candles_1h' WHEN interval '1 day' THEN 'candles_1d' END;
    BEGIN
        IF view_name IS NULL THEN  -- 1 s, or a width candles_bucket_ceil refuses
            RETURN QUERY SELECT c.bucket_start, c.open, c.high, c.low, c.close, c.volume,
                                c.trade_count
                FROM candles AS c
                WHERE c.symbol = p_symbol AND c.bucket_width = p_width
                  AND c.bucket_start >= candles_bucket_ceil(p_width, p_start)
                  AND c.bucket_start < candles_bucket_ceil(p_width, p_end)
                ORDER BY c.bucket_start;
            RETURN;
        END IF;
        RETURN QUERY EXECUTE format(
            'SELECT bucket_start, open, high, low, close, volume, trade_count FROM %I'
            ' WHERE symbol = $1 AND bucket_start >= $2 AND bucket_start < $3'
            ' ORDER BY bucket_start', view_name)
            USING p_symbol, candles_bucket_ceil(p_width, p_start),
                  candles_bucket_ceil(p_width, p_end);
    END;
    $f$;
END;
$$;
