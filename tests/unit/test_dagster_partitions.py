"""The reconciliation's daily partitions: today's exists, so a report landed at the close runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.settings import get_settings
from dagster_project.partitions import TRADING_DAYS


def test_today_is_the_last_partition_in_exchange_time() -> None:
    tz = ZoneInfo(get_settings().market_tz)
    # Just after midnight in the exchange's zone, still the day before in UTC.
    now = datetime(2026, 12, 7, 0, 5, tzinfo=tz)

    keys = TRADING_DAYS.get_partition_keys(current_time=now)

    assert keys[-1] == "2026-12-07"
    assert keys[-2] == "2026-12-06"
    assert "2026-12-08" not in keys


def test_the_current_day_has_a_partition_now() -> None:
    tz = ZoneInfo(get_settings().market_tz)
    today = datetime.now(tz).date()

    assert TRADING_DAYS.get_last_partition_key() == today.isoformat()
    assert TRADING_DAYS.has_partition_key((today - timedelta(days=1)).isoformat())
