"""Healing a fill the exchange made but the broker never settled, through the real settle worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from core.contracts import EXECUTION_REPORTS, ExecutionReport
from core.settings import Settings
from fixbridge.simulator.trade_report import Injection
from pipelines.heal import heal_run, kafka_publish
from tests.integration.recon_support import reconcile, settle_all, trade_day, write_report
from tests.integration.settle_support import violations
from tests.integration.worker_support import (
    running_worker,
    wait_consumed,
    worker_topics,
)

pytestmark = pytest.mark.integration

AGENT_MODULE = "streams.settle"


async def test_healing_a_dropped_fill_settles_it_once_and_keeps_every_invariant(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        lost = day.reports[3]  # the first fill of the second order (10 of 40 shares)
        await settle_all(conn, settings, [r for r in day.reports if r is not lost])
    files = write_report(tmp_path, day.fills, Injection())
    recon = reconcile(settings, db_dsn, files.csv_path)
    run_id = recon.run_id
    assert recon.comparison.breaks.height == 1

    with (
        worker_topics(settings, new_topic) as made,
        running_worker(settings, db_dsn, made, tmp_path, AGENT_MODULE) as worker,
    ):
        publish = kafka_publish(
            settings.model_copy(update={"topic_execution_reports": made.execution_reports})
        )
        with psycopg.connect(db_dsn) as conn:
            first = heal_run(conn, run_id, publish, "test-heal")
            again = heal_run(conn, run_id, publish, "test-heal")
        # A crash between the publish and the audit row would publish the report twice.
        publish_twice = lost_report_of(db_dsn, lost.exec_id)
        publish(publish_twice)
        wait_consumed(settings, worker, made.execution_reports, 2)

    assert (first.healed, first.refused) == (1, 0)
    assert (again.healed, again.refused) == (0, 0)
    with psycopg.connect(db_dsn) as conn:
        settled = conn.execute(
            "SELECT count(*) FROM executions WHERE exec_id = %s AND settled_at IS NOT NULL",
            (lost.exec_id,),
        ).fetchone()
        journal = conn.execute(
            "SELECT count(*) FROM journal_txns WHERE exec_id = %s", (lost.exec_id,)
        ).fetchone()
        audit = conn.execute(
            "SELECT a.outcome, a.actor FROM reconciliation_heal_audit a"
            " JOIN reconciliation_breaks b ON b.id = a.break_id WHERE b.run_id = %s",
            (run_id,),
        ).fetchall()
        order = conn.execute(
            "SELECT status, cum_qty FROM orders WHERE id = %s", (lost.order_id,)
        ).fetchone()
    async with await psycopg.AsyncConnection.connect(db_dsn) as aconn:
        broken = await violations(aconn)
    assert settled == (1,) and journal == (1,)
    assert audit == [("HEALED", "test-heal")]
    assert order == ("PARTIALLY_FILLED", 20)
    assert broken == {}
    # The next reconciliation of the day finds nothing left.
    assert reconcile(settings, db_dsn, files.csv_path).comparison.breaks.is_empty()


def lost_report_of(db_dsn: str, exec_id: str) -> ExecutionReport:
    """The report the heal published, read back from its audit row."""
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT a.details->>'published' FROM reconciliation_heal_audit a"
            " JOIN reconciliation_breaks b ON b.id = a.break_id WHERE b.exec_id = %s",
            (exec_id,),
        ).fetchone()
    assert row is not None
    return EXECUTION_REPORTS.decode(str(row[0]).encode())
