"""The trading calendar: sessions, weekends, holidays, time zones and the always-open mode."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.calendar import TradingCalendar, calendar_from_settings, is_open, next_open
from core.settings import Settings

IST = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")
# 2024-09-16 is a Monday.
MONDAY = date(2024, 9, 16)


def nse(holidays: frozenset[date] = frozenset(), always_open: bool = False) -> TradingCalendar:
    return TradingCalendar(IST, time(9, 15), time(15, 30), holidays, always_open)


def at(day: date, hh: int, mm: int, tz: ZoneInfo = IST) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=tz)


def test_the_market_is_open_between_open_inclusive_and_close_exclusive() -> None:
    cal = nse()
    assert not is_open(cal, at(MONDAY, 9, 14))
    assert is_open(cal, at(MONDAY, 9, 15))
    assert is_open(cal, at(MONDAY, 15, 29))
    assert not is_open(cal, at(MONDAY, 15, 30))


def test_before_the_open_the_next_open_is_today() -> None:
    assert next_open(nse(), at(MONDAY, 8, 0)) == at(MONDAY, 9, 15)


def test_after_the_close_the_next_open_is_the_next_trading_day() -> None:
    assert next_open(nse(), at(MONDAY, 16, 0)) == at(MONDAY + timedelta(days=1), 9, 15)


def test_during_a_session_the_next_open_is_tomorrows() -> None:
    assert next_open(nse(), at(MONDAY, 11, 0)) == at(MONDAY + timedelta(days=1), 9, 15)


def test_weekends_are_closed_and_friday_evening_opens_on_monday() -> None:
    saturday = MONDAY + timedelta(days=5)
    friday = MONDAY + timedelta(days=4)
    assert not is_open(nse(), at(saturday, 11, 0))
    assert next_open(nse(), at(friday, 16, 0)) == at(MONDAY + timedelta(days=7), 9, 15)


def test_a_holiday_is_closed_and_skipped_by_next_open() -> None:
    tuesday = MONDAY + timedelta(days=1)
    cal = nse(holidays=frozenset({tuesday}))
    assert not is_open(cal, at(tuesday, 11, 0))
    assert next_open(cal, at(MONDAY, 16, 0)) == at(tuesday + timedelta(days=1), 9, 15)


def test_now_in_another_zone_is_judged_in_exchange_time() -> None:
    # 05:00 UTC is 10:30 in India (no DST there): open. 20:00 UTC Monday is 01:30 Tuesday IST.
    assert is_open(nse(), datetime(2024, 9, 16, 5, 0, tzinfo=UTC))
    late = datetime(2024, 9, 16, 20, 0, tzinfo=UTC)
    assert not is_open(nse(), late)
    assert next_open(nse(), late) == at(MONDAY + timedelta(days=1), 9, 15)


def test_a_zone_without_dst_keeps_the_same_utc_open_all_year() -> None:
    january = next_open(nse(), at(date(2024, 1, 15), 8, 0)).astimezone(UTC)
    july = next_open(nse(), at(date(2024, 7, 15), 8, 0)).astimezone(UTC)
    assert (january.hour, january.minute) == (july.hour, july.minute) == (3, 45)


def test_a_zone_with_dst_opens_at_local_time_on_both_sides_of_the_change() -> None:
    cal = TradingCalendar(NEW_YORK, time(9, 30), time(16, 0), frozenset())
    # 2024-03-08 is the Friday before US DST starts; the Monday after is 2024-03-11.
    opens = next_open(cal, at(date(2024, 3, 8), 17, 0, NEW_YORK))
    assert opens == at(date(2024, 3, 11), 9, 30, NEW_YORK)
    assert opens.astimezone(UTC).hour == 13  # 13:30 UTC now; it was 14:30 UTC before


def test_always_open_is_open_at_any_time_and_opens_now() -> None:
    cal = nse(always_open=True)
    sunday_night = at(MONDAY - timedelta(days=1), 23, 0)
    assert is_open(cal, sunday_night)
    assert next_open(cal, sunday_night) == sunday_night


def test_hours_set_alone_override_the_profiles() -> None:
    settings = Settings(market_profile="NSE", market_open="10:00", market_close="11:00")
    cal = calendar_from_settings(settings)
    assert cal.open_at == time(10, 0) and cal.close_at == time(11, 0)
    assert next_open(cal, at(MONDAY, 12, 0)) == at(date(2024, 9, 17), 10, 0)
    # 2024-10-02 (Gandhi Jayanti, a Wednesday) is an NSE holiday in the library.
    assert next_open(cal, at(date(2024, 10, 1), 12, 0)) == at(date(2024, 10, 3), 10, 0)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(nse(), datetime(2024, 9, 16, 10, 0))


def test_a_calendar_with_no_session_in_a_year_is_an_error_not_a_loop() -> None:
    every_day = frozenset(MONDAY + timedelta(days=n) for n in range(400))
    with pytest.raises(ValueError, match="no trading session"):
        next_open(nse(holidays=every_day), at(MONDAY, 8, 0))


def test_open_after_close_is_refused() -> None:
    with pytest.raises(ValueError, match="before close"):
        TradingCalendar(IST, time(15, 30), time(9, 15), frozenset())
