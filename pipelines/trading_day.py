"""The UTC bounds of a trading day: the exchange-local calendar date in the market's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of ``day`` in exchange time, as aware UTC datetimes."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def session_bounds(
    day: date, tz: ZoneInfo, open_at: time, close_at: time
) -> tuple[datetime, datetime]:
    """[open, close) of the session of ``day``, as aware UTC datetimes."""
    start = datetime.combine(day, open_at, tzinfo=tz)
    end = datetime.combine(day, close_at, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)
