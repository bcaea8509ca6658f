-- depends: 0027_watchlists
--
-- Candles on TimescaleDB as its users keep them (on plain PostgreSQL this file changes nothing:
-- 0017's candles_between rolls the stored 1 s, 1 m and 1 d rows up at query time).
--
-- * Hierarchical continuous aggregates over the stored 1 m rows the candles agent writes (0017):
--   5m from 1m, 15m and 1h from 5m, 1d from 1h. Each level reads a few rows of the level below,
--   never the 1 s rows, so a refresh costs a sixtieth of 0012's aggregates over 1 s rows.
--   They stay real-time (materialized_only = false): the newest buckets, not yet refreshed, are
--   rolled up at query time, so answers equal plain PostgreSQL's whatever the refresh state.
-- * Compression of the base candles after 7 days, segmented by (symbol, bucket_width), ordered
--   by bucket_start: a chart reads one symbol's one width by time, which is a segment's order.
--   Late ticks land within candles_grace_ms, so a week-old chunk is never written again.
-- * Retention per width: 1 s rows 30 days (a job deleting them chunk by chunk, below; one
--   hypertable holds every width, so drop_chunks cannot choose), 1 m and 1 d rows kept (years
--   of them compress to little), 5m aggregates 1 year, 15m 2 years, 1h 5 years, 1d kept.
--   Each level's refresh window is shorter than the retention of the level it reads, so a
--   refresh never recomputes a bucket whose source was dropped.
DO $do$
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

    -- 0012's aggregates read the 1 s rows; candles_1m marks them (this file makes none).
    IF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
               WHERE view_name = 'candles_1m') THEN
        -- One by one, each before what it reads.
        DROP MATERIALIZED VIEW IF EXISTS candles_1d;
        DROP MATERIALIZED VIEW IF EXISTS candles_1h;
        DROP MATERIALIZED VIEW IF EXISTS candles_15m;
        DROP MATERIALIZED VIEW IF EXISTS candles_5m;
        DROP MATERIALIZED VIEW candles_1m;
    END IF;

    CREATE MATERIALIZED VIEW IF NOT EXISTS candles_5m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT symbol, time_bucket(interval '5 minutes', bucket_start) AS bucket_start,
           first(open, bucket_start) AS open, max(high) AS high, min(low) AS low,
           last(close, bucket_start) AS close, sum(volume)::bigint AS volume,
           sum(trade_count)::bigint AS trade_count
    FROM candles WHERE bucket_width = interval '1 minute'
    GROUP BY symbol, time_bucket(interval '5 minutes', bucket_start)
    WITH NO DATA;

    FOR w IN SELECT * FROM (VALUES ('candles_15m', interval '15 minutes', 'candles_5m'),
                                   ('candles_1h', interval '1 hour', 'candles_5m'),
                                   ('candles_1d', interval '1 day', 'candles_1h'))
                           AS t (name, width, source)
    LOOP
        EXECUTE format($f$
            CREATE MATERIALIZED VIEW IF NOT EXISTS %I
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT symbol, time_bucket(%L::interval, bucket_start) AS bucket_start,
                   first(open, bucket_start) AS open, max(high) AS high, min(low) AS low,
                   last(close, bucket_start) AS close, sum(volume)::bigint AS volume,
                   sum(trade_count)::bigint AS trade_count
            FROM %I
            GROUP BY symbol, time_bucket(%L::interval, bucket_start)
            WITH NO DATA$f$, w.name, w.width, w.source, w.width);
    END LOOP;

    -- end_offset: a bucket is materialized once closed and past the grace of late ticks (two
    -- widths); younger ones are the real-time part. start_offset: how far back a refresh
    -- looks for changed sources, within the retention of the level read.
    FOR w IN SELECT * FROM (VALUES ('candles_5m', interval '5 minutes', interval '3 days',
                                    interval '1 year'),
                                   ('candles_15m', interval '15 minutes', interval '7 days',
                                    interval '2 years'),
                                   ('candles_1h', interval '1 hour', interval '30 days',
                                    interval '5 years'),
                                   ('candles_1d', interval '1 day', interval '400 days', NULL))
                           AS t (name, width, lookback, keep)
    LOOP
        PERFORM add_continuous_aggregate_policy(w.name::regclass,
            start_offset => w.lookback, end_offset => 2 * w.width,
            schedule_interval => least(w.width, interval '1 hour'), if_not_exists => true);
        IF w.keep IS NOT NULL THEN
            PERFORM add_retention_policy(w.name::regclass, drop_after => w.keep,
                                         if_not_exists => true);
        END IF;
    END LOOP;

    -- The analysts' role (0032) reads every candle view; these replace 0012's.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broker_analyst') THEN
        GRANT SELECT ON candles_5m, candles_15m, candles_1h, candles_1d TO broker_analyst;
    END IF;

    IF NOT (SELECT compression_enabled FROM timescaledb_information.hypertables
            WHERE hypertable_name = 'candles') THEN
        ALTER TABLE candles SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'symbol, bucket_width',
            timescaledb.compress_orderby = 'bucket_start DESC'
        );
    END IF;
    PERFORM add_compression_policy('candles', compress_after => interval '7 days',
                                   if_not_exists => true);
END;
$do$;

-- Retention of the 1 s candles: delete them from every chunk wholly older than drop_after
-- (config), one chunk per transaction. The filter is on a segmentby column, so a compressed
-- chunk loses whole batches without being decompressed. Plain PostgreSQL keeps them (no job
-- scheduler); the function is there on both so the schema is one.
CREATE OR REPLACE PROCEDURE candles_drop_second_rows(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    keep constant interval := coalesce((config ->> 'drop_after')::interval, interval '30 days');
    c record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    FOR c IN EXECUTE
        'SELECT chunk_schema, chunk_name FROM timescaledb_information.chunks'
        ' WHERE hypertable_name = ''candles'' AND range_end <= now() - $1'
        ' ORDER BY range_start' USING keep
    LOOP
        EXECUTE format('DELETE FROM %I.%I WHERE bucket_width = interval ''1 second''',
                       c.chunk_schema, c.chunk_name);
        COMMIT;
    END LOOP;
END;
$$;

DO $do$
BEGIN
    -- Two checks, as in 0012: the view exists only with the extension.
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'candles') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs
                   WHERE proc_name = 'candles_drop_second_rows') THEN
        PERFORM add_job('candles_drop_second_rows', interval '1 day',
                        config => '{"drop_after": "30 days"}');
    END IF;

    -- 1 s and 1 m: the stored rows (one index range scan); 5m to 1d: the aggregates. EXECUTE
    -- plans each call with its values, as 0017's function does and for the same reason.
    CREATE OR REPLACE FUNCTION candles_between(
        p_symbol text, p_width interval, p_start timestamptz, p_end timestamptz
    )
    RETURNS TABLE (
        bucket_start timestamptz, open numeric(18,4), high numeric(18,4), low numeric(18,4),
        close numeric(18,4), volume bigint, trade_count bigint
    )
    LANGUAGE plpgsql STABLE AS $f$
    DECLARE
        lo constant timestamptz := candles_bucket_ceil(p_width, p_start);
        hi constant timestamptz := candles_bucket_ceil(p_width, p_end);
        view_name constant text := CASE p_width
            WHEN interval '5 minutes' THEN 'candles_5m'
            WHEN interval '15 minutes' THEN 'candles_15m'
            WHEN interval '1 hour' THEN 'candles_1h'
            WHEN interval '1 day' THEN 'candles_1d' END;
    BEGIN
        IF view_name IS NULL THEN  -- 1 s or 1 m (candles_bucket_ceil refused the rest)
            RETURN QUERY EXECUTE
                'SELECT c.bucket_start, c.open, c.high, c.low, c.close, c.volume, c.trade_count'
                ' FROM candles AS c'
                ' WHERE c.symbol = $1 AND c.bucket_width = $2'
                '   AND c.bucket_start >= $3 AND c.bucket_start < $4'
                ' ORDER BY c.bucket_start'
                USING p_symbol, p_width, lo, hi;
            RETURN;
        END IF;
        RETURN QUERY EXECUTE format(
            'SELECT bucket_start, open, high, low, close, volume, trade_count FROM %I'
            ' WHERE symbol = $1 AND bucket_start >= $2 AND bucket_start < $3'
            ' ORDER BY bucket_start', view_name)
            USING p_symbol, lo, hi;
    END;
    $f$;
END;
$do$;
