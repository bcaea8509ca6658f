"""Exchange times as integer nanoseconds since the Unix epoch, and back to UTC datetimes.

Exact integer arithmetic on timedelta (microsecond precision, as PostgreSQL stores), never a
float ``datetime.timestamp()``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def ns_of(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (microsecond precision)."""
    return (moment - EPOCH) // _MICROSECOND * 1_000


def utc_of_ns(ts_ns: int) -> datetime:
    """The UTC datetime of nanoseconds since the epoch, truncated to microseconds."""
    return EPOCH + timedelta(microseconds=ts_ns // 1_000)
