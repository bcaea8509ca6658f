"""The orders benchmark run tiny against the real stack: structure, no failures, sound ledger.

No timing is asserted: speed is measured by ``python -m bench``, never in tests.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from bench import orders_api, orders_lean
from bench.exceptions import BenchError
from bench.orders_history import History
from bench.orders_setup import api_server, bench_database, free_port, invariant_violations
from bench.pg_ceiling import PgbenchLoad
from bench.report import HostInfo
from core.settings import Settings

pytestmark = pytest.mark.integration

TINY = orders_api.OrdersPlan(
    concurrency_levels=(1, 4), duration_s=2, users=10, warmup_s=0.5, pool_size_max=8
)


@pytest.fixture(scope="module")
def host() -> HostInfo:
    return HostInfo(nproc=2, cpu_model="test")


def test_a_tiny_run_reports_each_level_as_lean_order_place_and_api_with_both_ratios(
    running_stack: Settings, host: HostInfo, tmp_path: Path
) -> None:
    rows = orders_api.measure(running_stack, host, TINY, tmp_path / "api.log")

    assert [row.result.name for row in rows] == [
        "pgbench.lean_order",
        "pgbench.place_order",
        "api.orders",
        "pgbench.lean_order",
        "pgbench.place_order",
        "api.orders",
        "api.orders.half_peak",
    ]
    for lean_row, place_row, api_row, clients in (
        (rows[0], rows[1], rows[2], 1),
        (rows[3], rows[4], rows[5], 4),
    ):
        assert lean_row.ceiling is None
        for ceiling_row in (lean_row, place_row):
            assert ceiling_row.result.conditions["clients"] == clients
            assert ceiling_row.result.details["failed"] == 0
            assert ceiling_row.result.details["transactions"] > 0
        assert place_row.ceiling is lean_row.result
        assert api_row.ceiling is lean_row.result
        assert api_row.result.conditions["concurrency"] == clients
        assert api_row.result.details["non_2xx"] == 0
        assert api_row.result.details["errors"] == 0
        assert api_row.result.details["orders"] > 0
        assert place_row.ratio is not None and place_row.ratio > 0
        assert api_row.ratio is not None and api_row.ratio > 0
        assert api_row.result.details["p50_ms"] <= api_row.result.details["p99_ms"]
    half = rows[6]
    assert half.ceiling is not None and half.ceiling.name == "api.orders"
    assert half.ceiling.value == max(rows[2].result.value, rows[5].result.value)
    assert half.result.details["non_2xx"] == 0
    assert half.result.details["errors"] == 0
    assert all(row.result.unit == "orders/s" for row in rows)
    lines = orders_api.goals(rows)
    assert [line.split(" ")[1] for line in lines] == ["pgbench", "API", "at"]


def _counts(dsn: str) -> dict[str, int]:
    queries = {
        "orders": "SELECT count(*) FROM orders WHERE status = 'NEW' AND side = 'BUY'",
        "reserves": "SELECT count(*) FROM journal_txns WHERE kind = 'ORDER_RESERVE'",
        "outbox": "SELECT count(*) FROM outbox WHERE published_at IS NULL AND topic = 'oms.orders'",
        "keys_201": "SELECT count(*) FROM idempotency_keys WHERE response_status = 201",
        "keys": "SELECT count(*) FROM idempotency_keys",
    }
    counts: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        for name, query in queries.items():
            row = conn.execute(query).fetchone()
            assert row is not None
            counts[name] = int(row[0])
    return counts


def test_api_and_pgbench_place_orders_that_keep_every_invariant(
    running_stack: Settings, host: HostInfo, tmp_path: Path
) -> None:
    with bench_database(running_stack, users=10, pool_size_max=8) as db:
        served = db.settings.model_copy(update={"api_port": free_port()})
        with api_server(served, tmp_path / "api.log") as url:
            api = orders_api.run(orders_api.closed_loop(url, db.users, 4, 2, 0))
        ceiling = orders_api.pgbench_place_order(db, host, PgbenchLoad(4, 2, 2))

        counts = _counts(db.dsn)
        violations = invariant_violations(db.dsn)

    assert (api.non_2xx, api.errors) == (0, 0)
    assert api.orders > 0
    assert ceiling.details["failed"] == 0
    assert ceiling.details["transactions"] > 0
    # Each order, from either path, has its reserve, its outbox row and its stored 201.
    assert counts["orders"] >= api.orders + ceiling.details["transactions"]
    assert counts["orders"] == counts["reserves"] == counts["outbox"] == counts["keys_201"]
    assert counts["keys"] == counts["keys_201"]
    assert violations == dict.fromkeys(violations, 0)
    assert len(violations) >= 5


def test_the_lean_order_keeps_its_ledger_and_takes_order_place_s_reserve(
    running_stack: Settings, host: HostInfo
) -> None:
    with bench_database(running_stack, users=10, pool_size_max=8) as db:
        variables = orders_lean.pgbench_variables(db, "ACME", 1, Decimal("100.00"))
        with orders_lean.lean_tables(db):
            ceiling = orders_lean.pgbench_lean_order(db, host, PgbenchLoad(4, 2, 2), variables)
            with psycopg.connect(db.dsn) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM lean_orders), sum(locked) FROM lean_wallets"
                ).fetchone()
            with psycopg.connect(db.dsn, autocommit=True) as conn:
                # Locked cash that no leg accounts for must fail the check.
                conn.execute(
                    "UPDATE lean_wallets SET locked = locked + 1 WHERE user_id = %s",
                    (db.users[0].id,),
                )
            with pytest.raises(BenchError, match="locked cash differs"):
                orders_lean.check_lean_ledger(db.dsn)
            with psycopg.connect(db.dsn, autocommit=True) as conn:
                conn.execute(
                    "UPDATE lean_wallets SET locked = locked - 1 WHERE user_id = %s",
                    (db.users[0].id,),
                )

    # 100.00 at the default 3 bps fee, as order_place reserves it (its case table).
    assert variables["reserve"] == "100.0300"
    assert ceiling.name == "pgbench.lean_order"
    assert ceiling.details["failed"] == 0
    assert row is not None
    assert ceiling.details["transactions"] == row[0] > 0
    assert row[1] == row[0] * Decimal("100.0300")


def test_history_loads_users_and_orders_that_keep_every_invariant(
    running_stack: Settings,
) -> None:
    history = History(users=50, orders=500)
    with bench_database(
        running_stack, users=3, pool_size_max=4, name="bench_orders_history", history=history
    ) as db:
        assert not any(invariant_violations(db.dsn).values())
        with psycopg.connect(db.dsn) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders),"
                " (SELECT count(*) FROM idempotency_keys),"
                " (SELECT count(*) FROM journal_txns WHERE kind = 'ORDER_RESERVE'),"
                " (SELECT count(*) FROM outbox),"
                " (SELECT max(created_at) < now() - interval '1 minute' FROM orders)"
            ).fetchone()
        assert counts == (53, 500, 500, 500, 500, True)
        # A history order is where an order of its user is looked for.
        with psycopg.connect(db.dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM orders o JOIN journal_txns t ON t.order_id = o.id"
                " JOIN journal_entries e ON e.txn_id = t.id"
                " JOIN ledger_accounts a ON a.id = e.account_id AND a.user_id = o.user_id"
            ).fetchone()
        assert row == (1000,)
