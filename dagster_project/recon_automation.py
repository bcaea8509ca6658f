"""When the reconciliation runs: nightly for the previous trading day, and when a report lands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetSelection,
    DagsterInvariantViolationError,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from core.settings import get_settings
from dagster_project.ledger import ledger
from dagster_project.reconciliation import (
    day_candles,
    internal_executions,
    recon_breaks,
    recon_report,
    trade_report,
)
from dagster_project.resources import LandingResource

REPORT_NAME = re.compile(r"^trade_report_(\d{4}-\d{2}-\d{2})\.csv$")

# The ledger comes along so its blocking invariant checks guard the comparison.
reconciliation_job = define_asset_job(
    "reconciliation",
    selection=AssetSelection.assets(
        ledger, trade_report, internal_executions, day_candles, recon_breaks, recon_report
    ),
    description="Compare the day's exchange trade report with the broker's fills.",
)

_settings = get_settings()


# Written out rather than built from the partitioned job: that schedule runs the newest partition,
# which is today's now that today's partition exists (partitions.py), not the day before.
@schedule(
    job=reconciliation_job,
    cron_schedule=f"{_settings.recon_schedule_minute} {_settings.recon_schedule_hour} * * *",
    execution_timezone=_settings.market_tz,
    default_status=DefaultScheduleStatus.RUNNING,
)
def nightly_reconciliation(context: ScheduleEvaluationContext) -> RunRequest:
    """A run for the trading day before the night the schedule fires on (exchange time)."""
    fired = context.scheduled_execution_time
    if fired is None:
        raise DagsterInvariantViolationError("the nightly schedule ran without a scheduled time")
    day = previous_day(fired, ZoneInfo(_settings.market_tz)).isoformat()
    return RunRequest(run_key=day, partition_key=day)


def previous_day(fired: datetime, tz: ZoneInfo) -> date:
    """The exchange-time calendar day before the instant ``fired``."""
    return fired.astimezone(tz).date() - timedelta(days=1)


def report_days(folder_names: list[str], today: date, first: date) -> Iterator[date]:
    """The trading days of the report files among ``folder_names`` that are partitions."""
    for name in folder_names:
        match = REPORT_NAME.match(name)
        if match is None:
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            continue
        if first <= day <= today:
            yield day


@sensor(
    job=reconciliation_job,
    minimum_interval_seconds=_settings.recon_sensor_interval_s,
    default_status=DefaultSensorStatus.RUNNING,
)
def trade_report_sensor(
    context: SensorEvaluationContext, landing: LandingResource
) -> Iterator[RunRequest | SkipReason]:
    """A run for each report file that is new or was rewritten since the last run."""
    folder = landing.reports()
    if not folder.is_dir():
        yield SkipReason(f"no landing folder {folder}")
        return
    names = sorted(p.name for p in folder.iterdir())
    settings = get_settings()
    first = date.fromisoformat(settings.recon_start_date)
    today = datetime.now(ZoneInfo(settings.market_tz)).date()
    found = False
    for day in report_days(names, today, first):
        path = folder / f"trade_report_{day.isoformat()}.csv"
        found = True
        # The run key changes when the file is rewritten, so a corrected report runs again.
        yield RunRequest(
            run_key=f"{path.name}:{path.stat().st_mtime_ns}", partition_key=day.isoformat()
        )
    if not found:
        yield SkipReason(f"no trade report in {folder}")
