"""The reconciliation functions against the real PostgreSQL and the simulator's trade report."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from core.contracts import ExecutionReport
from core.settings import Settings
from fixbridge.simulator.trade_report import Injection
from pipelines.compare import compare
from pipelines.heal import HealPublishError, heal_run
from pipelines.internal import load_internal_executions
from pipelines.store import breaks_of_run, record_breaks, start_run
from pipelines.trade_report import load_trade_report
from tests.integration.recon_support import DAY, injected, settle_all, trade_day, write_report

pytestmark = pytest.mark.integration


async def test_finds_exactly_the_injected_breaks_and_records_them(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        await settle_all(conn, settings, day.reports)
    files = write_report(tmp_path, day.fills, Injection(drop_fills=2, change_qty=1, extra_trades=2))

    report = load_trade_report(files.csv_path)
    with psycopg.connect(db_dsn) as conn:
        internal = load_internal_executions(conn, DAY, ZoneInfo(settings.market_tz))
        comparison = compare(report.rows, internal)
        run_id = start_run(conn, DAY)
        safe = record_breaks(conn, run_id, comparison, report.rows.height, internal.height)
        stored = breaks_of_run(conn, run_id)
        run = conn.execute(
            "SELECT status, matched_count, break_count FROM reconciliation_runs WHERE id = %s",
            (run_id,),
        ).fetchone()

    found: dict[str, set[str]] = {}
    for kind, exec_id in comparison.breaks.select("kind", "exec_id").iter_rows():
        found.setdefault(kind, set()).add(exec_id)
    assert found == injected(files)
    assert comparison.matched == len(day.fills) - 3
    assert sorted(stored["exec_id"].to_list()) == sorted(comparison.breaks["exec_id"].to_list())
    # Extra trades carry ClOrdIDs the broker never sent: nothing there is safe to heal.
    assert safe == 0
    assert run == ("SUCCEEDED", len(day.fills) - 3, 5)


async def test_a_clean_day_has_no_breaks(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        await settle_all(conn, settings, day.reports)
    files = write_report(tmp_path, day.fills, Injection())

    report = load_trade_report(files.csv_path)
    with psycopg.connect(db_dsn) as conn:
        internal = load_internal_executions(conn, DAY, ZoneInfo(settings.market_tz))
    comparison = compare(report.rows, internal)

    assert comparison.breaks.is_empty()
    assert comparison.matched == len(day.fills) == internal.height


async def test_a_fill_never_settled_is_a_break_safe_to_heal(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        lost = day.reports[1]
        await settle_all(conn, settings, [r for r in day.reports if r is not lost])
    files = write_report(tmp_path, day.fills, Injection())

    report = load_trade_report(files.csv_path)
    with psycopg.connect(db_dsn) as conn:
        internal = load_internal_executions(conn, DAY, ZoneInfo(settings.market_tz))
        comparison = compare(report.rows, internal)
        run_id = start_run(conn, DAY)
        safe = record_breaks(conn, run_id, comparison, report.rows.height, internal.height)

    assert comparison.breaks.select("kind", "exec_id").rows() == [
        ("MISSING_INTERNAL", lost.exec_id)
    ]
    assert safe == 1


async def test_a_heal_kafka_refuses_is_audited_as_failed_and_left_unhealed(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as aconn:
        day = await trade_day(aconn, settings)
        await settle_all(aconn, settings, day.reports[1:])
    files = write_report(tmp_path, day.fills, Injection())
    report = load_trade_report(files.csv_path)

    def refuse(report: ExecutionReport) -> None:
        raise HealPublishError(f"{report.exec_id}: broker down")

    with psycopg.connect(db_dsn) as conn:
        internal = load_internal_executions(conn, DAY, ZoneInfo(settings.market_tz))
        run_id = start_run(conn, DAY)
        record_breaks(conn, run_id, compare(report.rows, internal), report.rows.height, 0)
        with pytest.raises(HealPublishError):
            heal_run(conn, run_id, refuse, "test-heal")
        audit = conn.execute(
            "SELECT a.outcome, b.healed_at FROM reconciliation_heal_audit a"
            " JOIN reconciliation_breaks b ON b.id = a.break_id WHERE b.run_id = %s",
            (run_id,),
        ).fetchall()

    assert audit == [("FAILED", None)]
