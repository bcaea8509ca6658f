-- Analysts: a read-only role that sees candles and reference data, nothing about customers.
--
-- `broker_analyst` cannot log in; each analyst gets a login role of their own that is a member
-- (docs/ANALYSTS.md: CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE broker_analyst), so access
-- is granted and taken back per person. Tables grant nothing to PUBLIC, so what is not granted
-- here (users, KYC, wallets, the ledger, orders) stays closed. A later migration that adds a
-- candle view grants it to broker_analyst too.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broker_analyst') THEN
        CREATE ROLE broker_analyst NOLOGIN;
    END IF;
END;
$$;

DO $$
DECLARE
    relation record;
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO broker_analyst', current_database());
    GRANT USAGE ON SCHEMA public TO broker_analyst;
    GRANT SELECT ON candles, instruments, last_prices TO broker_analyst;
    -- The wider candles: continuous aggregates on TimescaleDB, views on plain PostgreSQL.
    FOR relation IN
        SELECT c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm') AND c.relname LIKE 'candles\_%'
    LOOP
        EXECUTE format('GRANT SELECT ON %I TO broker_analyst', relation.relname);
    END LOOP;
    -- TimescaleDB's information views (jobs, chunks, compression) are readable by anyone.
END;
$$;
