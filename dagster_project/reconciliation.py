"""The nightly reconciliation as daily-partitioned assets over the plain functions of pipelines/.

trade_report and internal_executions load the two sides of a day, day_candles the day's prices;
recon_breaks compares them (after the ledger's blocking invariant checks) and records the breaks
in PostgreSQL; recon_report writes the Parquet and the summary; recon_heals, run on demand,
heals the safe breaks through the settle agent.
"""

# No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation at
# definition time and refuses a string.
from dataclasses import dataclass

import polars as pl
from dagster import (
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from core.settings import get_settings
from dagster_project.ledger import ledger
from dagster_project.partitions import TRADING_DAYS, partition_day
from dagster_project.resources import (
    ExecutionReportsResource,
    LandingResource,
    MarketResource,
    PostgresResource,
)
from fixbridge.simulator.trade_report import report_path
from pipelines.candles import load_minute_candles
from pipelines.compare import Comparison, compare
from pipelines.exceptions import ReportFormatError
from pipelines.heal import heal_run
from pipelines.internal import load_internal_executions
from pipelines.report import counts_by_kind, value_at_risk, write_report
from pipelines.store import fail_run, record_breaks, set_report_path, start_run
from pipelines.trade_report import LoadedReport, load_trade_report
from pipelines.trading_day import day_bounds

GROUP = "reconciliation"


@dataclass(frozen=True)
class RunBreaks:
    """The breaks of one recorded reconciliation run."""

    run_id: int
    comparison: Comparison
    rejected_rows: int


@asset(partitions_def=TRADING_DAYS, group_name=GROUP, compute_kind="polars")
def trade_report(context: AssetExecutionContext, landing: LandingResource) -> Output[LoadedReport]:
    """The exchange's trade report of the day, typed; unparseable rows set aside with reasons."""
    day = partition_day(context.partition_key)
    path = report_path(landing.reports(), day)
    if not path.exists():
        raise Failure(f"no trade report for {day} in {landing.reports()}")
    try:
        loaded = load_trade_report(path)
    except ReportFormatError as exc:
        raise Failure(str(exc)) from exc
    return Output(
        loaded,
        metadata={
            "path": MetadataValue.path(str(path)),
            "rows": loaded.rows.height,
            "rejected_rows": loaded.rejected.height,
            "rejected": MetadataValue.md(_markdown(loaded.rejected.head(20))),
        },
    )


@asset(partitions_def=TRADING_DAYS, group_name=GROUP, compute_kind="postgres")
def internal_executions(
    context: AssetExecutionContext, postgres: PostgresResource, market: MarketResource
) -> Output[pl.DataFrame]:
    """The broker's settled fills of the day."""
    day = partition_day(context.partition_key)
    with postgres.connect_read() as conn:
        frame = load_internal_executions(conn, day, market.zone())
    return Output(frame, metadata={"rows": frame.height})


@asset(partitions_def=TRADING_DAYS, group_name=GROUP, compute_kind="postgres")
def day_candles(
    context: AssetExecutionContext, postgres: PostgresResource, market: MarketResource
) -> Output[pl.DataFrame]:
    """One-minute candles of every symbol for the day."""
    start, end = day_bounds(partition_day(context.partition_key), market.zone())
    with postgres.connect_read() as conn:
        frame = load_minute_candles(conn, start, end)
    return Output(frame, metadata={"rows": frame.height, "symbols": frame["symbol"].n_unique()})


@asset(
    partitions_def=TRADING_DAYS,
    group_name=GROUP,
    compute_kind="polars",
    deps=[ledger],
)
def recon_breaks(
    context: AssetExecutionContext,
    postgres: PostgresResource,
    trade_report: LoadedReport,
    internal_executions: pl.DataFrame,
) -> Output[RunBreaks]:
    """Every break of the day, recorded as a run in the reconciliation tables."""
    day = partition_day(context.partition_key)
    with postgres.connect() as conn:
        run_id = start_run(conn, day)
        try:
            comparison = compare(trade_report.rows, internal_executions)
            safe = record_breaks(
                conn, run_id, comparison, trade_report.rows.height, internal_executions.height
            )
        except Exception as exc:
            fail_run(conn, run_id, str(exc))
            raise
    counts = counts_by_kind(comparison.breaks)
    context.log.info("run %d: %d matched, breaks %s", run_id, comparison.matched, counts)
    return Output(
        RunBreaks(run_id, comparison, trade_report.rejected.height),
        metadata={
            "run_id": run_id,
            "matched": comparison.matched,
            "breaks": comparison.breaks.height,
            "safe_to_heal": safe,
            "value_at_risk": str(value_at_risk(comparison.breaks)),
            **{f"breaks.{kind}": count for kind, count in counts.items()},
        },
    )


@asset(partitions_def=TRADING_DAYS, group_name=GROUP, compute_kind="parquet")
def recon_report(
    context: AssetExecutionContext,
    postgres: PostgresResource,
    landing: LandingResource,
    recon_breaks: RunBreaks,
) -> MaterializeResult[None]:
    """The Parquet of every break and the Markdown summary for ops."""
    day = partition_day(context.partition_key)
    files = write_report(
        landing.output(),
        day,
        recon_breaks.comparison,
        recon_breaks.rejected_rows,
        get_settings().recon_top_breaks,
    )
    with postgres.connect() as conn:
        set_report_path(conn, recon_breaks.run_id, str(files.summary_path))
    return MaterializeResult(
        metadata={
            "breaks_parquet": MetadataValue.path(str(files.breaks_path)),
            "summary_path": MetadataValue.path(str(files.summary_path)),
            "summary": MetadataValue.md(files.summary_path.read_text(encoding="utf-8")),
        }
    )


@asset(partitions_def=TRADING_DAYS, group_name=GROUP, compute_kind="kafka")
def recon_heals(
    postgres: PostgresResource,
    execution_reports: ExecutionReportsResource,
    recon_breaks: RunBreaks,
) -> MaterializeResult[None]:
    """Heal the safe breaks of the run: publish each missing fill for the settle agent."""
    with postgres.connect() as conn:
        summary = heal_run(
            conn, recon_breaks.run_id, execution_reports.publisher(), execution_reports.actor
        )
    return MaterializeResult(metadata={"healed": summary.healed, "refused": summary.refused})


def _markdown(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "none"
    header = "| " + " | ".join(frame.columns) + " |\n|" + " --- |" * frame.width + "\n"
    body = "".join("| " + " | ".join(map(str, row)) + " |\n" for row in frame.iter_rows())
    return header + body
