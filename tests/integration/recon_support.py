"""A small trading day for the reconciliation tests: fills settled by the real settle code,
the exchange's trade report of them written by the exchange simulator's own report writer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import psycopg

from core.contracts import ExecutionReport, Side
from core.settings import Settings
from fixbridge.simulator.matching import Fill
from fixbridge.simulator.trade_report import Injection, ReportFiles, write_trade_report
from pipelines.compare import Comparison, compare
from pipelines.internal import load_internal_executions
from pipelines.store import record_breaks, start_run
from pipelines.trade_report import load_trade_report
from streams.settlement import settle_report
from tests.integration.settle_support import Exchange, place_order, setup_user

DAY = date(2024, 9, 16)
_PROFILE = Settings()
# Half an hour into the session of DAY, in the market profile's hours.
T0_NS = (
    int(
        (
            datetime.combine(
                DAY,
                time.fromisoformat(_PROFILE.market_open),
                tzinfo=ZoneInfo(_PROFILE.market_tz),
            )
            + timedelta(minutes=30)
        ).timestamp()
    )
    * 1_000_000_000
)
SEED = 11
# (symbol, side, order quantity, fills as (qty, price)).
ORDERS = (
    ("ACME", Side.BUY, 100, ((30, "49.95"), (20, "50.00"), (50, "50.05"))),
    ("ACME", Side.BUY, 40, ((10, "50.10"), (10, "50.00"))),
    ("ALPHA", Side.BUY, 60, ((25, "120.50"), (35, "120.25"))),
)


@dataclass(frozen=True)
class TradingDay:
    """The fills of the day as the exchange made them, and the reports for the settle agent."""

    fills: list[Fill]
    reports: list[ExecutionReport]


async def trade_day(
    conn: psycopg.AsyncConnection[tuple[object, ...]], settings: Settings
) -> TradingDay:
    """Place the (buy) orders of ``ORDERS`` for one user and make their fills (not settled yet)."""
    user_id = await setup_user(conn, "100000")
    fills: list[Fill] = []
    reports: list[ExecutionReport] = []
    for symbol, side, quantity, executions in ORDERS:
        order_id = await place_order(conn, settings, user_id, side, symbol, quantity, "200.00")
        exchange = Exchange(order_id, symbol, side, quantity)
        for qty, price in executions:
            ts = T0_NS + len(reports) * 1_000_000_000
            report = msgspec.structs.replace(exchange.fill(qty, price), ts_transact_ns=ts)
            reports.append(report)
            fills.append(Fill(report.exec_id, str(order_id), symbol, side, qty, Decimal(price), ts))
    return TradingDay(fills, reports)


async def settle_all(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    settings: Settings,
    reports: list[ExecutionReport],
) -> None:
    """Settle ``reports`` with the settle agent's own function, one transaction each."""
    for report in reports:
        await settle_report(conn, report, settings)


@dataclass(frozen=True)
class Reconciled:
    """One recorded reconciliation run of ``DAY``: the comparison and what was stored."""

    comparison: Comparison
    run_id: int
    safe: int
    internal_rows: int


def reconcile(settings: Settings, db_dsn: str, report_csv: Path) -> Reconciled:
    """Compare the trade report at ``report_csv`` with the settled fills of ``DAY``; record it."""
    report = load_trade_report(report_csv)
    with psycopg.connect(db_dsn) as conn:
        internal = load_internal_executions(conn, DAY, ZoneInfo(settings.market_tz))
        comparison = compare(report.rows, internal)
        run_id = start_run(conn, DAY)
        safe = record_breaks(conn, run_id, comparison, report.rows.height, internal.height)
    return Reconciled(comparison, run_id, safe, internal.height)


def stored_exec_ids(db_dsn: str, run_id: int) -> list[str]:
    """The exec ids of the breaks stored for ``run_id``, sorted."""
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT exec_id FROM reconciliation_breaks WHERE run_id = %s", (run_id,)
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


def write_report(folder: Path, fills: list[Fill], injection: Injection) -> ReportFiles:
    """The exchange simulator's trade report of ``fills``, with ``injection`` applied."""
    return write_trade_report(fills, DAY, folder, injection, seed=SEED)


def injected(files: ReportFiles) -> dict[str, set[str]]:
    """The injected breaks of a report, as the break kinds the reconciliation must find."""
    kinds = {
        "dropped_fill": "MISSING_EXTERNAL",
        "changed_qty": "QTY_MISMATCH",
        "extra_trade": "MISSING_INTERNAL",
    }
    found: dict[str, set[str]] = {}
    for item in json.loads(files.breaks_path.read_text())["breaks"]:
        found.setdefault(kinds[item["kind"]], set()).add(item["exec_id"])
    return found
