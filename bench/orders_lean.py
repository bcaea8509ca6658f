"""The lean order: the ceiling ``order_place`` and the API are measured against.

pgbench runs ``bench/sql/lean_order.sql`` on tables of its own (``bench/sql/lean_order_schema.sql``)
in the orders benchmark's database, one wallet per benchmark user: the fewest statements that
keep the design's guarantees, for the same order as ``place_order.sql`` with the reserve
``order_place`` takes for it. After the run the lean ledger must hold: every journal transaction
balances, the wallets' locked cash equals the locked legs, no cash was made or lost, and each
order has its two legs, its outbox row and its stored answer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg

from bench.exceptions import BenchError
from bench.orders_setup import USER_CASH, BenchDatabase
from bench.pg_ceiling import RUN_MARGIN_S, PgbenchLoad, _run_pgbench, parse_pgbench_output
from bench.report import Ceiling, HostInfo, Result

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent / "sql"
LEAN_SCHEMA = SQL_DIR / "lean_order_schema.sql"
LEAN_SCRIPT = SQL_DIR / "lean_order.sql"
LEAN_TABLES = ("lean_wallets", "lean_orders", "lean_entries", "lean_outbox", "lean_keys")
NAME = "pgbench.lean_order"

# Each line returns the rows that break one rule of the lean ledger.
_CHECKS = {
    "journal transaction unbalanced or not two legs": (
        "SELECT txn_id FROM lean_entries GROUP BY txn_id HAVING sum(amount) <> 0 OR count(*) <> 2"
    ),
    "locked cash differs from the locked legs": (
        "SELECT w.user_id FROM lean_wallets w LEFT JOIN (SELECT user_id, sum(amount) AS s"
        " FROM lean_entries WHERE account = 'LOCKED' GROUP BY user_id) e USING (user_id)"
        " WHERE w.locked <> coalesce(e.s, 0)"
    ),
    "cash made or lost": ("SELECT user_id FROM lean_wallets WHERE balance + locked <> %(cash)s"),
    "order without its legs, outbox row or stored answer": (
        "SELECT 1 WHERE (SELECT count(*) FROM lean_orders) <> ANY (ARRAY["
        " (SELECT count(DISTINCT txn_id) FROM lean_entries), (SELECT count(*) FROM lean_outbox),"
        " (SELECT count(*) FROM lean_keys WHERE status = 201), (SELECT count(*) FROM lean_keys)])"
    ),
}


@contextmanager
def lean_tables(db: BenchDatabase) -> Iterator[None]:
    """Create the lean tables with a funded wallet per benchmark user; check and drop them after."""
    user_min, user_max = db.user_id_range
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(LEAN_SCHEMA.read_text(encoding="utf-8").encode())
        conn.execute(
            "INSERT INTO lean_wallets (user_id, balance)"
            " SELECT g, %s FROM generate_series(%s::bigint, %s::bigint) AS g",
            (USER_CASH, user_min, user_max),
        )
        conn.execute("VACUUM ANALYZE lean_wallets")
    try:
        yield
        check_lean_ledger(db.dsn)
    finally:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS " + ", ".join(LEAN_TABLES))


def check_lean_ledger(dsn: str) -> None:
    """Raise ``BenchError`` naming each rule of the lean ledger the run broke."""
    with psycopg.connect(dsn) as conn:
        broken = [
            name
            for name, query in _CHECKS.items()
            if conn.execute(query.encode(), {"cash": USER_CASH}).fetchone() is not None
        ]
    if broken:
        raise BenchError(f"the lean order broke its guarantees: {broken}")


def reserve(db: BenchDatabase, quantity: int, price: Decimal) -> Decimal:
    """What order_place reserves for a LIMIT BUY of ``quantity`` at ``price``, from its rule."""
    settings = db.settings
    with psycopg.connect(db.dsn) as conn:
        row = conn.execute(
            "SELECT order_buy_reserve('LIMIT', %s * %s, %s, %s)",
            (quantity, price, settings.fee_rate_bps, settings.market_protection_band_bps),
        ).fetchone()
    if row is None:
        raise BenchError("order_buy_reserve returned no row")
    return Decimal(row[0])


def pgbench_variables(
    db: BenchDatabase, symbol: str, quantity: int, price: Decimal
) -> dict[str, str]:
    """The ``-D`` variables of lean_order.sql: users, a run tag, the order and its reserve."""
    user_min, user_max = db.user_id_range
    return {
        "user_min": str(user_min),
        "user_max": str(user_max),
        "run": uuid.uuid4().hex[:12],
        "symbol": symbol,
        "price": str(price),
        "qty": str(quantity),
        "reserve": str(reserve(db, quantity, price)),
        "topic": db.settings.topic_orders,
    }


def pgbench_orders(
    db: BenchDatabase,
    host: HostInfo,
    load: PgbenchLoad,
    script: Path,
    variables: dict[str, str],
    name: str,
) -> Ceiling:
    """pgbench running an order script (prepared, ``load``'s clients and time), in orders/s."""
    defines = [arg for key, value in variables.items() for arg in ("-D", f"{key}={value}")]
    output = _run_pgbench(
        db.settings,
        [
            *("-c", str(load.clients), "-j", str(load.threads), "-T", str(load.duration_s)),
            *("-M", "prepared", "-n", "-f", str(script), *defines, db.name),
        ],
        load.duration_s + RUN_MARGIN_S,
    )
    figures = parse_pgbench_output(output)
    if figures.failed:
        raise BenchError(f"pgbench {script.name}: {figures.failed} transactions failed")
    conditions: dict[str, str | int] = {
        "mode": f"custom script bench/sql/{script.name}",
        "query_mode": "prepared",
        "users": len(db.users),
        "clients": load.clients,
        "threads": load.threads,
        "duration_s": load.duration_s,
    }
    details = {
        "latency_ms_avg": figures.latency_ms_avg,
        "transactions": figures.transactions,
        "failed": figures.failed,
    }
    return Result.now(name, figures.tps, "orders/s", conditions, host, details)


def pgbench_lean_order(
    db: BenchDatabase, host: HostInfo, load: PgbenchLoad, variables: dict[str, str]
) -> Ceiling:
    """pgbench running lean_order.sql on the lean tables: the ceiling, in orders/s."""
    return pgbench_orders(db, host, load, LEAN_SCRIPT, variables, NAME)
