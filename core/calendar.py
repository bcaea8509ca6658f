"""The exchange's trading calendar: sessions on weekdays between open and close, minus holidays.

Pure functions over a ``TradingCalendar`` built from the settings; times are aware datetimes and
every comparison happens in the exchange's time zone (``market_tz``), so DST in the zone is
handled by zoneinfo, and callers may pass ``now`` in any zone. Holidays come from the market
profile's calendar in ``exchange_calendars``, which its maintainers keep year by year.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from core.settings import Settings

log = logging.getLogger(__name__)

# Saturday and Sunday (date.weekday() numbering) never trade.
WEEKEND_DAYS = frozenset({5, 6})
# next_open looks this many days ahead at most: a calendar closed for longer is a configuration
# error, not a reason to loop for ever.
SEARCH_DAYS_MAX = 366
# Warn when the library knows an exchange's holidays for fewer days ahead than this: past its
# last known day every weekday counts as a session until the library is upgraded.
HOLIDAYS_KNOWN_DAYS_MIN = 60


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    """When the exchange trades: one session a day from ``open_at`` to ``close_at``."""

    tz: ZoneInfo
    open_at: time
    close_at: time
    holidays: frozenset[date]
    always_open: bool = False

    def __post_init__(self) -> None:
        if self.open_at >= self.close_at:
            raise ValueError(f"market open {self.open_at} must be before close {self.close_at}")


def calendar_from_settings(settings: Settings) -> TradingCalendar:
    """Build the calendar from the ``market_*`` settings; raise ValueError on a malformed one."""
    always_open = settings.market_always_open
    return TradingCalendar(
        tz=ZoneInfo(settings.market_tz),
        open_at=time.fromisoformat(settings.market_open),
        close_at=time.fromisoformat(settings.market_close),
        # An always-open market never asks about holidays, so it skips loading the library.
        holidays=frozenset()
        if always_open
        else exchange_holidays(settings.profile.calendar_code, date.today()),
        always_open=always_open,
    )


@lru_cache(maxsize=8)
def exchange_holidays(code: str, today: date) -> frozenset[date]:
    """Weekdays without a session in ``exchange_calendars``' calendar ``code``, to next year's end.

    Cached per calendar and day: building one takes tens of milliseconds.
    """
    # Imported here: it brings pandas in (about a second), which an always-open market never needs.
    import exchange_calendars

    kind = type(exchange_calendars.get_calendar(code))
    bound = kind.bound_max()
    end = date(today.year + 1, 12, 31)
    if bound is not None:
        end = min(end, bound.date())
    # Built from the class, not get_calendar(code, end=...): the library caches those for ever.
    calendar = kind(end=end)
    sessions = {session.date() for session in calendar.sessions}
    first, last = calendar.first_session.date(), calendar.last_session.date()
    if (last - today).days < HOLIDAYS_KNOWN_DAYS_MIN:
        log.warning(
            "exchange_calendars knows %s holidays only through %s; later weekdays count as"
            " sessions until the package is upgraded",
            code,
            last,
        )
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return frozenset(d for d in days if d.weekday() not in WEEKEND_DAYS and d not in sessions)


def is_trading_day(calendar: TradingCalendar, day: date) -> bool:
    """Tell whether ``day`` (an exchange-local date) has a session."""
    return day.weekday() not in WEEKEND_DAYS and day not in calendar.holidays


def is_open(calendar: TradingCalendar, now: datetime) -> bool:
    """Tell whether the market is open at ``now`` (open inclusive, close exclusive)."""
    if calendar.always_open:
        return True
    local = _local(calendar, now)
    return (
        is_trading_day(calendar, local.date())
        and calendar.open_at <= local.time() < calendar.close_at
    )


def next_open(calendar: TradingCalendar, now: datetime) -> datetime:
    """The first session start at or after ``now``, in exchange time; ``now`` when always open.

    During a session this is the next day's open: an order held for the open waits for it.
    """
    if calendar.always_open:
        return now
    local = _local(calendar, now)
    for offset in range(SEARCH_DAYS_MAX + 1):
        day = local.date() + timedelta(days=offset)
        if not is_trading_day(calendar, day):
            continue
        opens = datetime.combine(day, calendar.open_at, tzinfo=calendar.tz)
        if opens >= local:
            return opens
    raise ValueError(f"no trading session within {SEARCH_DAYS_MAX} days of {now.isoformat()}")


def _local(calendar: TradingCalendar, now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    return now.astimezone(calendar.tz)
