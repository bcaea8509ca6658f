"""The reconciliation assets and checks, materialized in process against real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import AssetKey, materialize

from core.contracts import EXECUTION_REPORTS
from core.settings import Settings
from dagster_project import definitions
from dagster_project.ledger import ledger, ledger_invariants
from dagster_project.recon_checks import RECON_CHECKS
from dagster_project.reconciliation import (
    day_candles,
    internal_executions,
    recon_breaks,
    recon_heals,
    recon_report,
    trade_report,
)
from dagster_project.resources import (
    ExecutionReportsResource,
    LandingResource,
    PostgresResource,
    market_from_settings,
)
from fixbridge.simulator.trade_report import Injection
from tests.integration.recon_support import DAY, injected, settle_all, trade_day, write_report
from tests.integration.worker_support import read_all

pytestmark = pytest.mark.integration

PARTITION = DAY.isoformat()
NIGHTLY = [ledger, ledger_invariants, trade_report, internal_executions, day_candles]
NIGHTLY += [recon_breaks, recon_report, *RECON_CHECKS]
# One 1 s candle per symbol traded, spanning the prices of recon_support.ORDERS.
CANDLES = (
    ("ACME", "49.50", "51.00", "49.00", "50.50"),
    ("ALPHA", "120.00", "121.00", "119.50", "120.75"),
)


def test_definitions_show_the_reconciliation_assets_checks_schedule_and_sensor() -> None:
    repo = definitions.defs.get_repository_def()

    assets = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert assets == {
        "ledger",
        "trade_report",
        "internal_executions",
        "day_candles",
        "recon_breaks",
        "recon_report",
        "recon_heals",
    }
    checks = {k.name for k in repo.asset_graph.asset_check_keys}
    assert {"trade_report_keys", "trade_report_positive", "candles_without_gaps"} <= checks
    assert [s.name for s in repo.schedule_defs] == ["nightly_reconciliation"]
    assert [s.name for s in repo.sensor_defs] == ["trade_report_sensor"]


def _resources(settings: Settings, db_dsn: str, landing: Path) -> dict[str, Any]:
    return {
        "postgres": PostgresResource(dsn=db_dsn),
        "landing": LandingResource(reports_dir=str(landing), output_dir=str(landing / "out")),
        "market": market_from_settings(settings),
    }


def _insert_candles(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        for symbol, open_, high, low, close in CANDLES:
            conn.execute(
                "INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close)"
                " VALUES (%s, interval '1 second', timestamptz '2024-09-16 04:30:00+00',"
                " %s, %s, %s, %s)",
                (symbol, open_, high, low, close),
            )


async def _settled_day(
    settings: Settings, db_dsn: str, landing: Path, injection: Injection
) -> dict[str, set[str]]:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        await settle_all(conn, settings, day.reports)
    _insert_candles(db_dsn)
    return injected(write_report(landing, day.fills, injection))


async def test_materializing_a_day_records_the_injected_breaks_and_writes_the_report(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    expected = await _settled_day(running_stack, db_dsn, tmp_path, Injection(1, 1, 1))

    result = materialize(
        NIGHTLY, partition_key=PARTITION, resources=_resources(running_stack, db_dsn, tmp_path)
    )

    assert result.success
    run = result.output_for_node("recon_breaks")
    found: dict[str, set[str]] = {}
    for kind, exec_id in run.comparison.breaks.select("kind", "exec_id").iter_rows():
        found.setdefault(kind, set()).add(exec_id)
    assert found == expected
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["trade_report_keys"] and checks["trade_report_within_candles"]
    summary = (tmp_path / "out" / f"summary_{PARTITION}.md").read_text()
    assert "| QTY_MISMATCH | 1 |" in summary
    assert (tmp_path / "out" / f"breaks_{PARTITION}.parquet").exists()
    with psycopg.connect(db_dsn) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM reconciliation_breaks WHERE run_id = %s", (run.run_id,)
        ).fetchone()
    assert stored == (3,)


async def test_a_report_with_a_negative_quantity_and_no_exec_id_fails_its_checks_by_line(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    await _settled_day(running_stack, db_dsn, tmp_path, Injection())
    path = tmp_path / f"trade_report_{PARTITION}.csv"
    lines = path.read_text().splitlines()
    lines[2] = "," + lines[2].split(",", 1)[1]  # line 3: no exec id
    fields = lines[4].split(",")
    fields[4] = "-" + fields[4]  # line 5: a negative quantity
    lines[4] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")

    result = materialize(
        NIGHTLY,
        partition_key=PARTITION,
        resources=_resources(running_stack, db_dsn, tmp_path),
        raise_on_error=False,
    )

    failed = {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.asset_key == trade_report.key
    }
    assert set(failed) == {"trade_report_keys", "trade_report_positive"}
    assert '"line": "3"' in str(failed["trade_report_keys"].metadata["failures"].value).replace(
        "'", '"'
    )
    assert '"line": "5"' in str(failed["trade_report_positive"].metadata["failures"].value).replace(
        "'", '"'
    )
    # Blocking checks: nothing downstream of the report was computed.
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert AssetKey("recon_breaks") not in materialized
    assert AssetKey("trade_report") in materialized


async def test_a_broken_ledger_invariant_stops_the_comparison(
    running_stack: Settings, db_dsn: str, tmp_path: Path
) -> None:
    await _settled_day(running_stack, db_dsn, tmp_path, Injection())
    with psycopg.connect(db_dsn) as conn:
        # A holding the fills do not explain.
        conn.execute("UPDATE holdings SET quantity = quantity + 1 WHERE symbol = 'ACME'")

    result = materialize(
        NIGHTLY,
        partition_key=PARTITION,
        resources=_resources(running_stack, db_dsn, tmp_path),
        raise_on_error=False,
    )

    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "holding_matches_fills" in failed
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert AssetKey("recon_breaks") not in materialized


async def test_recon_heals_publishes_the_unsettled_fill_for_the_settle_agent(
    running_stack: Settings, db_dsn: str, tmp_path: Path, new_topic: Callable[[int], str]
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        day = await trade_day(conn, settings)
        lost = day.reports[2]
        await settle_all(conn, settings, [r for r in day.reports if r is not lost])
    _insert_candles(db_dsn)
    write_report(tmp_path, day.fills, Injection())
    topic = new_topic(1)
    resources = _resources(settings, db_dsn, tmp_path)
    resources["execution_reports"] = ExecutionReportsResource(
        bootstrap_servers=settings.kafka_bootstrap,
        topic=topic,
        actor="ops",
    )

    result = materialize([*NIGHTLY, recon_heals], partition_key=PARTITION, resources=resources)

    assert result.success
    published = [EXECUTION_REPORTS.decode(value) for value in read_all(settings, topic)]
    assert [(r.exec_id, r.last_qty) for r in published] == [(lost.exec_id, lost.last_qty)]
    with psycopg.connect(db_dsn) as conn:
        audit = conn.execute("SELECT outcome, actor FROM reconciliation_heal_audit").fetchall()
    assert audit == [("HEALED", "ops")]
