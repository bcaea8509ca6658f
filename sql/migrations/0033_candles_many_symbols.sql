-- depends: 0028_candles_timescaledb_hierarchy 0032_analyst_role
--
-- Candles of many symbols in one query, and 1 d candles on TimescaleDB without planning a view.
--
-- candles_between(p_symbols text[], p_width, p_start, p_end) returns the candles of every
-- symbol listed (symbol = ANY), ordered by symbol then bucket_start: one statement planned once,
-- where one call per symbol plans a query per symbol. The one-symbol candles_between
-- becomes a call of it, so each back end says once where a width's candles come from:
--   * plain PostgreSQL: 1 s, 1 m and 1 d are the stored rows (0017); 5m, 15m and 1h roll up
--     the stored 1 m rows at query time;
--   * TimescaleDB, candles a hypertable: 1 s and 1 m are the stored rows too; 5m, 15m and 1h
--     are read from the continuous aggregates (0028); 1 d is read as candles_1d splits it,
--     without planning that view: its materialized rows below the aggregate's watermark and,
--     from the watermark on, the stored 1 d rows where the view would roll up candles_1h,
--     which rolls up candles_5m in turn. The stored 1 d rows are the same candles (the
--     agent and candles_rebuild_rollups write them by 0017's rule, from the 1 m rows the
--     hierarchy reads); planning the view at each call, with its nested real-time views and
--     their chunks, costs more than reading both parts (docs/TIMESCALEDB.md has the figures).
--     This reads two TimescaleDB internals the view's own definition uses (the watermark
--     function, the catalog naming the materialization hypertable).
-- Both functions EXECUTE their query, planned for each call with its values, for the reason
-- 0017 gives: a generic plan cannot see the range is a few symbols' and one width's.

DO $do$
BEGIN
    -- Two checks, as in 0012: the views read below exist only with the extension.
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'candles') THEN
            RETURN;
        END IF;
    END IF;
    CREATE OR REPLACE FUNCTION candles_between(
        p_symbols text[], p_width interval, p_start timestamptz, p_end timestamptz
    )
    RETURNS TABLE (
        symbol       text,
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
        IF p_width IN (interval '1 second', interval '1 minute', interval '1 day') THEN
            -- A stored width: its rows as they are (the rollup of one row is that row).
            RETURN QUERY EXECUTE
                'SELECT c.symbol, c.bucket_start, c.open, c.high, c.low, c.close, c.volume,'
                '       c.trade_count'
                ' FROM candles AS c'
                ' WHERE c.symbol = ANY ($1) AND c.bucket_width = $2'
                '   AND c.bucket_start >= $3 AND c.bucket_start < $4'
                ' ORDER BY c.symbol, c.bucket_start'
                USING p_symbols, p_width, lo, hi;
            RETURN;
        END IF;
        -- Left: 5m, 15m and 1h (candles_bucket_ceil refused the rest), whole 1 m buckets, so
        -- open (the first by bucket_start), close (the last), high, low and the sums are
        -- those of the bucket's ticks.
        RETURN QUERY EXECUTE
            'SELECT c.symbol,'
            '       date_bin($5, c.bucket_start, timestamptz ''2000-01-01 00:00:00+00'') AS b,'
            '       (array_agg(c.open ORDER BY c.bucket_start))[1], max(c.high), min(c.low),'
            '       (array_agg(c.close ORDER BY c.bucket_start DESC))[1],'
            '       sum(c.volume)::bigint, sum(c.trade_count)::bigint'
            ' FROM candles AS c'
            ' WHERE c.symbol = ANY ($1) AND c.bucket_width = $2'
            '   AND c.bucket_start >= $3 AND c.bucket_start < $4'
            ' GROUP BY c.symbol, b ORDER BY c.symbol, b'
            USING p_symbols, interval '1 minute', lo, hi, p_width;
    END;
    $f$;
END;
$do$;

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'candles') THEN
        RETURN;
    END IF;
    CREATE OR REPLACE FUNCTION candles_between(
        p_symbols text[], p_width interval, p_start timestamptz, p_end timestamptz
    )
    RETURNS TABLE (
        symbol text, bucket_start timestamptz, open numeric(18,4), high numeric(18,4),
        low numeric(18,4), close numeric(18,4), volume bigint, trade_count bigint
    )
    LANGUAGE plpgsql STABLE AS $f$
    DECLARE
        lo constant timestamptz := candles_bucket_ceil(p_width, p_start);
        hi constant timestamptz := candles_bucket_ceil(p_width, p_end);
        view_name constant text := CASE p_width
            WHEN interval '5 minutes' THEN 'candles_5m'
            WHEN interval '15 minutes' THEN 'candles_15m'
            WHEN interval '1 hour' THEN 'candles_1h' END;
        day_id integer;
        day_schema name;
        day_table name;
        day_mark timestamptz;
    BEGIN
        IF p_width = interval '1 day' THEN
            -- candles_1d's own split, without its view: the materialized days below the
            -- watermark (a few uncompressed chunks, one per 70 days), the stored 1 d rows from
            -- it on (the recent chunks). The stored rows alone are a compressed chunk per week:
            -- planning 53 of them for a year costs more than the view; planning the view plans
            -- its nested real-time views too.
            SELECT h.id, h.schema_name, h.table_name INTO day_id, day_schema, day_table
            FROM _timescaledb_catalog.continuous_agg AS a
            JOIN _timescaledb_catalog.hypertable AS h ON h.id = a.mat_hypertable_id
            WHERE a.user_view_schema = current_schema() AND a.user_view_name = 'candles_1d';
            day_mark := coalesce(_timescaledb_functions.to_timestamp(
                _timescaledb_functions.cagg_watermark(day_id)), '-infinity');
            RETURN QUERY EXECUTE format(
                'SELECT u.* FROM ('
                ' SELECT v.symbol, v.bucket_start, v.open, v.high, v.low, v.close, v.volume,'
                '        v.trade_count'
                ' FROM %I.%I AS v'
                ' WHERE v.symbol = ANY ($1) AND v.bucket_start >= $2'
                '   AND v.bucket_start < least($3, $4)'
                ' UNION ALL'
                ' SELECT c.symbol, c.bucket_start, c.open, c.high, c.low, c.close, c.volume,'
                '        c.trade_count'
                ' FROM candles AS c'
                ' WHERE c.symbol = ANY ($1) AND c.bucket_width = interval ''1 day'''
                '   AND c.bucket_start >= greatest($2, $4) AND c.bucket_start < $3'
                ') AS u ORDER BY u.symbol, u.bucket_start', day_schema, day_table)
                USING p_symbols, lo, hi, day_mark;
            RETURN;
        END IF;
        IF view_name IS NULL THEN  -- 1 s or 1 m (candles_bucket_ceil refused the rest)
            RETURN QUERY EXECUTE
                'SELECT c.symbol, c.bucket_start, c.open, c.high, c.low, c.close, c.volume,'
                '       c.trade_count'
                ' FROM candles AS c'
                ' WHERE c.symbol = ANY ($1) AND c.bucket_width = $2'
                '   AND c.bucket_start >= $3 AND c.bucket_start < $4'
                ' ORDER BY c.symbol, c.bucket_start'
                USING p_symbols, p_width, lo, hi;
            RETURN;
        END IF;
        RETURN QUERY EXECUTE format(
            'SELECT v.symbol, v.bucket_start, v.open, v.high, v.low, v.close, v.volume,'
            '       v.trade_count'
            ' FROM %I AS v'
            ' WHERE v.symbol = ANY ($1) AND v.bucket_start >= $2 AND v.bucket_start < $3'
            ' ORDER BY v.symbol, v.bucket_start', view_name)
            USING p_symbols, lo, hi;
    END;
    $f$;
    -- The function runs with its caller's rights, and the analysts' role (0032) calls it: it
    -- may read the rows of candles_1d it reads from the materialization hypertable.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broker_analyst') THEN
        EXECUTE (SELECT format('GRANT SELECT ON %I.%I TO broker_analyst',
                               materialization_hypertable_schema, materialization_hypertable_name)
                 FROM timescaledb_information.continuous_aggregates
                 WHERE view_name = 'candles_1d');
    END IF;
END;
$do$;

-- One symbol: the candles of a one-symbol list, on either back end.
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
    SELECT c.bucket_start, c.open, c.high, c.low, c.close, c.volume, c.trade_count
    FROM candles_between(ARRAY[p_symbol], p_width, p_start, p_end) AS c
    ORDER BY c.bucket_start
$$;
