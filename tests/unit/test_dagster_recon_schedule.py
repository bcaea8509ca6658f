"""The nightly schedule reconciles the previous trading day, at night in exchange time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import build_schedule_context

from core.settings import get_settings
from dagster_project.definitions import defs


def test_the_night_run_asks_for_the_day_before() -> None:
    settings = get_settings()
    schedule = defs.get_schedule_def("nightly_reconciliation")
    tz = ZoneInfo(settings.market_tz)
    night = datetime(
        2024, 9, 17, settings.recon_schedule_hour, settings.recon_schedule_minute, tzinfo=tz
    )

    # With the repository, the run request's partition is resolved as the daemon resolves it.
    with build_schedule_context(
        scheduled_execution_time=night, repository_def=defs.get_repository_def()
    ) as context:
        result = schedule.evaluate_tick(context)

    assert [r.partition_key for r in result.run_requests or []] == ["2024-09-16"]
    assert schedule.execution_timezone == settings.market_tz
    assert schedule.cron_schedule == (
        f"{settings.recon_schedule_minute} {settings.recon_schedule_hour} * * *"
    )
