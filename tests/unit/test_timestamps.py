"""Nanosecond exchange times and UTC datetimes convert exactly, both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.timestamps import ns_of, utc_of_ns


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 25, 2, 50, 59, 999_999, tzinfo=UTC),
        datetime(2286, 11, 20, 17, 46, 39, 999_999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2026, 3, 1, 9, 15, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_a_datetime_round_trips_through_nanoseconds(moment: datetime) -> None:
    assert utc_of_ns(ns_of(moment)) == moment
    assert ns_of(moment) % 1_000 == 0


def test_the_latest_int64_nanosecond_time_converts_exactly() -> None:
    # Integer arithmetic: no float rounding at the far end of the contracts' int64 range.
    moment = datetime(2262, 4, 11, 23, 47, 16, 854_775, tzinfo=UTC)
    assert ns_of(moment) == 9_223_372_036_854_775_000
    assert utc_of_ns(2**63 - 1) == moment


def test_nanoseconds_below_a_microsecond_are_truncated() -> None:
    assert utc_of_ns(1_764_000_000_123_456_789) == datetime(
        2025, 11, 24, 16, 0, 0, 123_456, tzinfo=UTC
    )
