"""The analyst role reads candles and reference data, and nothing about customers or money."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The same on TimescaleDB and on plain PostgreSQL.
pytestmark = [pytest.mark.integration, pytest.mark.both_backends]

ANALYST_GROUP = "broker_analyst"
READABLE = ("candles", "instruments", "last_prices")
CLOSED = (
    "users",
    "user_totp",
    "kyc_records",
    "wallets",
    "holdings",
    "ledger_accounts",
    "journal_txns",
    "journal_entries",
    "orders",
    "executions",
    "payment_intents",
    "api_keys",
    "auth_sessions",
    "outbox",
)


@pytest.fixture
def analyst_dsn(db_dsn: str) -> Iterator[str]:
    """A login role of one analyst, a member of the analyst group, on a migrated database."""
    name = f"analyst_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(name), sql.Literal(password), sql.Identifier(ANALYST_GROUP)
            )
        )
    params = conninfo_to_dict(db_dsn)
    params.update(user=name, password=password)
    try:
        yield make_conninfo(**{k: str(v) for k, v in params.items()})
    finally:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_an_analyst_reads_candles_reference_data_and_every_candle_view(analyst_dsn: str) -> None:
    with psycopg.connect(analyst_dsn) as conn:
        for table in READABLE:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        views = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm') AND c.relname LIKE %s",
            ("candles\\_%",),
        ).fetchall()
        for (view,) in views:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(view)))
        for width in ("1 minute", "1 hour", "1 day"):
            conn.execute(
                "SELECT count(*) FROM candles_between('ACME', %s::interval,"
                " now() - interval '30 days', now())",
                (width,),
            )
            conn.execute(
                "SELECT count(*) FROM candles_between(ARRAY['ACME', 'ALPHA'], %s::interval,"
                " now() - interval '30 days', now())",
                (width,),
            )


@pytest.mark.parametrize("table", CLOSED)
def test_an_analyst_cannot_read_customers_money_or_orders(analyst_dsn: str, table: str) -> None:
    with (
        psycopg.connect(analyst_dsn) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table)))


def test_an_analyst_cannot_write_candles(analyst_dsn: str) -> None:
    with (
        psycopg.connect(analyst_dsn) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM candles")
