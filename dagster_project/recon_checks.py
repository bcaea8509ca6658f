"""Asset checks on the reconciliation's inputs, each a Great Expectations suite.

The trade report's checks block: a report with a missing key or a negative quantity stops the
comparison, and the failed check lists the offending report lines. The candle checks warn: a
quiet symbol leaves gaps, which is worth a look but no reason to stop the night's run.
Great Expectations is imported inside the checks: it takes seconds, and the UI loads the
definitions far more often than the checks run.
"""

# No ``from __future__ import annotations``: Dagster reads the annotations at definition time.
import warnings
from typing import TYPE_CHECKING

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from dagster_project.partitions import TRADING_DAYS, partition_day
from dagster_project.reconciliation import day_candles, trade_report
from dagster_project.resources import MarketResource
from pipelines.candles import minute_gaps, price_ranges
from pipelines.trade_report import LoadedReport
from pipelines.trading_day import session_bounds

if TYPE_CHECKING:
    from pipelines.expectations import CheckOutcome

# Checks per partition are a preview feature of Dagster 1.13; they are what a daily check needs.
warnings.filterwarnings("ignore", message="Specifying a partitions_def", category=PreviewWarning)


def _result(outcome: "CheckOutcome", severity: AssetCheckSeverity) -> AssetCheckResult:
    failures = [
        {"expectation": f.expectation, "unexpected": f.unexpected_count, "rows": f.rows}
        for f in outcome.failures
    ]
    return AssetCheckResult(
        passed=outcome.passed,
        severity=severity,
        metadata={
            "expectations": outcome.evaluated,
            "failed": len(outcome.failures),
            "failures": MetadataValue.json(failures),
        },
    )


@asset_check(asset=trade_report, blocking=True, partitions_def=TRADING_DAYS)
def trade_report_schema(trade_report: LoadedReport) -> AssetCheckResult:
    """The contract's columns in order, known sides, and no row set aside as unparseable."""
    from pipelines.expectations import report_schema

    return _result(
        report_schema(trade_report.rows, trade_report.rejected), AssetCheckSeverity.ERROR
    )


@asset_check(asset=trade_report, blocking=True, partitions_def=TRADING_DAYS)
def trade_report_keys(trade_report: LoadedReport) -> AssetCheckResult:
    """Every row has an exec id and a ClOrdID; exec ids are unique."""
    from pipelines.expectations import report_keys

    return _result(report_keys(trade_report.rows), AssetCheckSeverity.ERROR)


@asset_check(asset=trade_report, blocking=True, partitions_def=TRADING_DAYS)
def trade_report_positive(trade_report: LoadedReport) -> AssetCheckResult:
    """Every quantity and price is above zero."""
    from pipelines.expectations import report_positive

    return _result(report_positive(trade_report.rows), AssetCheckSeverity.ERROR)


@asset_check(
    asset=trade_report,
    blocking=True,
    partitions_def=TRADING_DAYS,
    additional_ins={"candles": AssetIn(key=day_candles.key)},
)
def trade_report_within_candles(
    trade_report: LoadedReport, candles: pl.DataFrame
) -> AssetCheckResult:
    """Every price lies within its symbol's low and high of the day."""
    from pipelines.expectations import report_within_candles

    outcome = report_within_candles(trade_report.rows, price_ranges(candles))
    return _result(outcome, AssetCheckSeverity.ERROR)


@asset_check(asset=day_candles, partitions_def=TRADING_DAYS)
def candles_consistent(day_candles: pl.DataFrame) -> AssetCheckResult:
    """high >= max(open, close) and low <= min(open, close) on every candle."""
    from pipelines.expectations import candles_consistent as suite

    return _result(suite(day_candles), AssetCheckSeverity.ERROR)


@asset_check(asset=day_candles, partitions_def=TRADING_DAYS)
def candles_without_gaps(
    context: AssetCheckExecutionContext, day_candles: pl.DataFrame, market: MarketResource
) -> AssetCheckResult:
    """No symbol goes a whole minute of the session without a candle."""
    from pipelines.expectations import candles_without_gaps as suite

    day = partition_day(context.partition_key)
    start, end = session_bounds(day, market.zone(), *market.session())
    return _result(suite(minute_gaps(day_candles, start, end)), AssetCheckSeverity.WARN)


RECON_CHECKS = [
    trade_report_schema,
    trade_report_keys,
    trade_report_positive,
    trade_report_within_candles,
    candles_consistent,
    candles_without_gaps,
]
