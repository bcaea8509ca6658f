"""The reconciliation functions against the real PostgreSQL and the simulator's trade report."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from core.contracts import ExecutionReport
from core.settings import Settings
from fixbridge.simulator.trade_report import Injection
from pipelines.heal import HealPublishError, heal_run
from tests.integration.recon_support import (
    injected,
    reconcile,
    settle_all,
    stored_exec_ids,
    trade_day,
    write_report,
)

pytestmark = pytest.mark.integration


async def test_finds_exactly_the_injected_breaks_and_records_them(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        await settle_all(conn, settings, day.reports)
    files = write_report(tmp_path, day.fills, Injection(drop_fills=2, change_qty=1, extra_trades=2))

    recon = reconcile(settings, db_dsn, files.csv_path)
    run_id, comparison = recon.run_id, recon.comparison
    with psycopg.connect(db_dsn) as conn:
        run = conn.execute(
            "SELECT status, matched_count, break_count FROM reconciliation_runs WHERE id = %s",
            (run_id,),
        ).fetchone()

    found: dict[str, set[str]] = {}
    for kind, exec_id in comparison.breaks.select("kind", "exec_id").iter_rows():
        found.setdefault(kind, set()).add(exec_id)
    assert found == injected(files)
    assert comparison.matched == len(day.fills) - 3
    assert stored_exec_ids(db_dsn, run_id) == sorted(comparison.breaks["exec_id"].to_list())
    # Extra trades carry ClOrdIDs the broker never sent: nothing there is safe to heal.
    assert recon.safe == 0
    assert run == ("SUCCEEDED", len(day.fills) - 3, 5)


async def test_a_clean_day_has_no_breaks(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        await settle_all(conn, settings, day.reports)
    files = write_report(tmp_path, day.fills, Injection())

    recon = reconcile(settings, db_dsn, files.csv_path)

    assert recon.comparison.breaks.is_empty()
    assert recon.comparison.matched == len(day.fills) == recon.internal_rows


async def test_a_fill_never_settled_is_a_break_safe_to_heal(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        lost = day.reports[1]
        await settle_all(conn, settings, [r for r in day.reports if r is not lost])
    files = write_report(tmp_path, day.fills, Injection())

    recon = reconcile(settings, db_dsn, files.csv_path)

    assert recon.comparison.breaks.select("kind", "exec_id").rows() == [
        ("MISSING_INTERNAL", lost.exec_id)
    ]
    assert recon.safe == 1


async def test_a_heal_kafka_refuses_is_audited_as_failed_and_left_unhealed(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as aconn:
        day = await trade_day(aconn, settings)
        await settle_all(aconn, settings, day.reports[1:])
    files = write_report(tmp_path, day.fills, Injection())
    run_id = reconcile(settings, db_dsn, files.csv_path).run_id

    def refuse(report: ExecutionReport) -> None:
        raise HealPublishError(f"{report.exec_id}: broker down")

    with psycopg.connect(db_dsn) as conn:
        with pytest.raises(HealPublishError):
            heal_run(conn, run_id, refuse, "test-heal")
        audit = conn.execute(
            "SELECT a.outcome, b.healed_at FROM reconciliation_heal_audit a"
            " JOIN reconciliation_breaks b ON b.id = a.break_id WHERE b.run_id = %s",
            (run_id,),
        ).fetchall()

    assert audit == [("FAILED", None)]
