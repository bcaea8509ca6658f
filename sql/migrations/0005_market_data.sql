-- depends: 0004_idempotency_outbox
--
-- OHLCV candles. The candles agent writes the base interval; larger intervals are a later
-- migration. On TimescaleDB (extension available and preloaded) the table becomes a hypertable;
-- on plain PostgreSQL it stays an ordinary table with the same columns and indexes.

CREATE TABLE IF NOT EXISTS candles (
    symbol          text          NOT NULL,
    bucket_width    interval      NOT NULL CHECK (bucket_width > interval '0'),
    bucket_start    timestamptz   NOT NULL,
    open            numeric(18,4) NOT NULL CHECK (open > 0),
    high            numeric(18,4) NOT NULL,
    low             numeric(18,4) NOT NULL CHECK (low > 0),
    close           numeric(18,4) NOT NULL CHECK (close > 0),
    volume          bigint        NOT NULL DEFAULT 0 CHECK (volume >= 0),
    trade_count     bigint        NOT NULL DEFAULT 0 CHECK (trade_count >= 0),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    -- A hypertable's unique indexes must contain the time column; this one does.
    PRIMARY KEY (symbol, bucket_width, bucket_start),
    CONSTRAINT candles_high_low_bound_prices
        CHECK (high >= low AND high >= open AND high >= close AND low <= open AND low <= close)
);

-- Cross-symbol scans by time (retention, "what traded in the last minute").
CREATE INDEX IF NOT EXISTS candles_bucket_start_idx ON candles (bucket_start DESC);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb is not available: candles stays a plain table';
        RETURN;
    END IF;
    -- Installed but not preloaded: CREATE EXTENSION would end the session (a FATAL, which no
    -- handler below catches), so ask the server's setting first.
    IF NOT 'timescaledb' = ANY (
        string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')
    ) THEN
        RAISE NOTICE 'timescaledb is installed but not preloaded: candles stays a plain table';
        RETURN;
    END IF;
    -- Available is not enough: the library must be preloaded and we must be allowed to create
    -- the extension. If not, stay plain and say why, rather than fail the whole migration.
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'timescaledb cannot be created (%); candles stays a plain table', SQLERRM;
        RETURN;
    END;
    -- Our own indexes above are the ones we want; skip TimescaleDB's defaults. A failure here is
    -- a real error and fails the migration.
    PERFORM create_hypertable(
        'candles', 'bucket_start',
        chunk_time_interval => interval '7 days',
        create_default_indexes => false,
        if_not_exists => true
    );
END;
$$;
