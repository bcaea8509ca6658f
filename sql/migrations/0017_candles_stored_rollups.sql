-- depends: 0015_client_feeds
--
-- Stored 1 m and 1 d candles, so a day of 1m reads 375 rows and a year of 1d 365 rows instead of
-- rolling up every 1 s row at query time (issue 6).
--
-- The candles agent (streams/candle_store.py) writes each batch's 1 s candles and their 1 m and
-- 1 d rollups in one statement, merged by the same rule (open by earliest (ts, seq), close by
-- latest, high max, low min, volume and trades summed). Buckets are aligned on UTC midnight, as
-- date_bin below. Migrate with the candles agents stopped (the usual deploy): the backfill below
-- recomputes the stored rollups from the 1 s rows, and an older agent would not write them.

-- Recompute the stored 1 m and 1 d candles of the whole UTC days touching [p_start, p_end) from
-- the 1 s rows (a replacement, not a merge: every 1 s row of those days is read). For the
-- backfill below, for benchmarks that write 1 s rows directly, and to repair by hand.
CREATE OR REPLACE FUNCTION candles_rebuild_rollups(p_start timestamptz, p_end timestamptz)
RETURNS void
LANGUAGE plpgsql STRICT AS $$
DECLARE
    origin constant timestamptz := timestamptz '2000-01-01 00:00:00+00';
    lo constant timestamptz := date_bin(interval '1 day', p_start, origin);
    hi constant timestamptz := date_bin(interval '1 day', p_end, origin)
        + CASE WHEN date_bin(interval '1 day', p_end, origin) < p_end
               THEN interval '1 day' ELSE interval '0' END;
    w record;
BEGIN
    -- 1 m from 1 s, then 1 d from the fresh 1 m rows (a sixtieth of the rows to read).
    FOR w IN SELECT * FROM (VALUES (interval '1 minute', interval '1 second'),
                                   (interval '1 day', interval '1 minute')) AS t (width, source)
    LOOP
        INSERT INTO candles AS c (
            symbol, bucket_width, bucket_start, open, high, low, close, volume, trade_count,
            open_ts_ns, open_seq, close_ts_ns, close_seq
        )
        SELECT s.symbol, w.width, date_bin(w.width, s.bucket_start, origin) AS b,
               (array_agg(s.open ORDER BY s.bucket_start))[1],
               max(s.high),
               min(s.low),
               (array_agg(s.close ORDER BY s.bucket_start DESC))[1],
               sum(s.volume)::bigint,
               sum(s.trade_count)::bigint,
               (array_agg(s.open_ts_ns ORDER BY s.bucket_start))[1],
               (array_agg(s.open_seq ORDER BY s.bucket_start))[1],
               (array_agg(s.close_ts_ns ORDER BY s.bucket_start DESC))[1],
               (array_agg(s.close_seq ORDER BY s.bucket_start DESC))[1]
        FROM candles AS s
        WHERE s.bucket_width = w.source AND s.bucket_start >= lo AND s.bucket_start < hi
        GROUP BY s.symbol, b
        ON CONFLICT (symbol, bucket_width, bucket_start) DO UPDATE SET
            open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
            close = EXCLUDED.close, volume = EXCLUDED.volume,
            trade_count = EXCLUDED.trade_count, open_ts_ns = EXCLUDED.open_ts_ns,
            open_seq = EXCLUDED.open_seq, close_ts_ns = EXCLUDED.close_ts_ns,
            close_seq = EXCLUDED.close_seq, updated_at = now();
    END LOOP;
END;
$$;

-- Backfill: the 1 s rows written before this migration get their stored rollups.
DO $$
BEGIN
    PERFORM candles_rebuild_rollups(min(bucket_start), max(bucket_start) + interval '1 second')
    FROM candles WHERE bucket_width = interval '1 second';
END
$$;

-- Plain PostgreSQL: the same answers as 0012's candles_between, from the coarsest stored width
-- dividing p_width: 1s, 1m and 1d are the stored rows, 5m, 15m and 1h roll up the 1 m rows.
-- A 5m, 15m or 1h bucket is whole 1 m buckets, so open (the first by bucket_start), close (the
-- last), high, low and the sums are those of its ticks, as before. On TimescaleDB with
-- candles a hypertable, 0012's function reads the continuous aggregates, which keep filtering
-- bucket_width '1 second' and so ignore the stored rollups: it is left as it is.
DO $do$
BEGIN
    -- Two checks, as in 0012: the view below exists only with the extension.
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'candles') THEN
            RAISE NOTICE 'candles is a hypertable: candles_between reads continuous aggregates';
            RETURN;
        END IF;
    END IF;
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
    LANGUAGE plpgsql STABLE AS $f$
    DECLARE
        lo constant timestamptz := candles_bucket_ceil(p_width, p_start);
        hi constant timestamptz := candles_bucket_ceil(p_width, p_end);
    BEGIN
        -- EXECUTE: planned for each call with the values, never a generic plan. A generic plan
        -- (the API's statements are prepared) cannot see the range is one symbol's and one
        -- width's, and may walk candles_bucket_start_idx through every row of the range.
        IF p_width IN (interval '1 second', interval '1 minute', interval '1 day') THEN
            -- A stored width: its rows as they are (the rollup of one row is that row).
            RETURN QUERY EXECUTE
                'SELECT c.bucket_start, c.open, c.high, c.low, c.close, c.volume, c.trade_count'
                ' FROM candles AS c'
                ' WHERE c.symbol = $1 AND c.bucket_width = $2'
                '   AND c.bucket_start >= $3 AND c.bucket_start < $4'
                ' ORDER BY c.bucket_start'
                USING p_symbol, p_width, lo, hi;
            RETURN;
        END IF;
        RETURN QUERY EXECUTE
            'SELECT date_bin($5, c.bucket_start, timestamptz ''2000-01-01 00:00:00+00'') AS b,'
            '       (array_agg(c.open ORDER BY c.bucket_start))[1], max(c.high), min(c.low),'
            '       (array_agg(c.close ORDER BY c.bucket_start DESC))[1],'
            '       sum(c.volume)::bigint, sum(c.trade_count)::bigint'
            ' FROM candles AS c'
            ' WHERE c.symbol = $1 AND c.bucket_width = $2'
            '   AND c.bucket_start >= $3 AND c.bucket_start < $4'
            ' GROUP BY b ORDER BY b'
            -- Left: 5m, 15m and 1h (candles_bucket_ceil refused the rest), whole 1 m buckets.
            USING p_symbol, interval '1 minute', lo, hi, p_width;
    END;
    $f$;
END;
$do$;
