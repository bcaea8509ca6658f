"""Market profiles: what each one sets, its holidays from the library, its KYC id format."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.services.kyc import KycDetails
from api.services.kyc_review import rejection_reason
from core.calendar import calendar_from_settings, exchange_holidays, is_open, next_open
from core.market_profile import PROFILES, ProfileName
from core.settings import Settings, settings_env

# 2024-09-16 is a Monday, a session on both exchanges.
WEEKDAY = date(2024, 9, 16)


@dataclass(frozen=True)
class Case:
    """What one profile must give."""

    profile: ProfileName
    currency: str
    tz: str
    open_at: time
    close_at: time
    holiday: date  # a weekday the library knows the exchange is closed
    ids_accepted: tuple[str, ...]
    ids_refused: tuple[str, ...]


CASES = (
    Case(
        profile="NSE",
        currency="INR",
        tz="Asia/Kolkata",
        open_at=time(9, 15),
        close_at=time(15, 30),
        holiday=date(2024, 8, 15),  # Independence Day, a Thursday
        ids_accepted=("ABCDE1234F", " abcde 1234 f "),
        ids_refused=("123-45-6789", "ABCD12345F", "ABCDE12345"),
    ),
    Case(
        profile="NYSE",
        currency="USD",
        tz="America/New_York",
        open_at=time(9, 30),
        close_at=time(16, 0),
        holiday=date(2024, 12, 25),  # Christmas, a Wednesday
        ids_accepted=("123-45-6789", "123456789", " 123 45 6789 "),
        ids_refused=("ABCDE1234F", "12-345-6789", "123-45-678", "123-45-67890"),
    ),
)
IDS = [case.profile for case in CASES]


def _settings(case: Case) -> Settings:
    return Settings(market_profile=case.profile)


def _at(case: Case, day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(case.tz))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_profile_sets_currency_zone_and_hours(case: Case) -> None:
    settings = _settings(case)

    assert settings.currency == case.currency
    assert settings.market_tz == case.tz
    assert (settings.market_open, settings.market_close) == (
        case.open_at.strftime("%H:%M"),
        case.close_at.strftime("%H:%M"),
    )
    assert settings.kyc_national_id_pattern == PROFILES[case.profile].national_id_pattern


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_holiday_from_the_library_is_closed_all_day(case: Case) -> None:
    cal = calendar_from_settings(_settings(case))
    midday = _at(case, case.holiday, time(12, 0))

    assert not is_open(cal, midday)
    assert next_open(cal, midday) == _at(case, case.holiday + timedelta(days=1), case.open_at)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_normal_weekday_is_open_within_the_hours_only(case: Case) -> None:
    cal = calendar_from_settings(_settings(case))

    assert not is_open(cal, _at(case, WEEKDAY, case.open_at) - timedelta(minutes=1))
    assert is_open(cal, _at(case, WEEKDAY, case.open_at))
    assert is_open(cal, _at(case, WEEKDAY, time(12, 0)))
    assert not is_open(cal, _at(case, WEEKDAY, case.close_at))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_kyc_accepts_the_profiles_id_format_only(case: Case) -> None:
    settings = _settings(case)

    def reason(national_id: str) -> str | None:
        details = KycDetails("Alice Example", date(1990, 4, 1), national_id, "1 Market Street")
        return rejection_reason(details, WEEKDAY, settings)

    for national_id in (*case.ids_accepted, PROFILES[case.profile].national_id_example):
        assert reason(national_id) is None, national_id
    for national_id in case.ids_refused:
        refused = reason(national_id)
        assert refused is not None and refused.startswith("national_id"), national_id
        assert PROFILES[case.profile].national_id_format in refused


def test_a_value_set_alone_overrides_the_profiles() -> None:
    settings = Settings(market_profile="NSE", currency="USD")

    assert (settings.currency, settings.market_tz) == ("USD", "Asia/Kolkata")


def test_a_child_process_reads_the_same_profile_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(market_profile="NSE", market_close="15:00")
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)

    assert Settings() == settings


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="market_profile"):
        Settings(market_profile="LSE")  # type: ignore[arg-type]


def test_holidays_past_the_librarys_knowledge_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The library records BSE/NSE holidays year by year, through a last year it knows.
    with caplog.at_level(logging.WARNING, logger="core.calendar"):
        holidays = exchange_holidays("XBOM", date(2099, 1, 1))

    assert holidays and max(holidays) < date(2099, 1, 1)
    assert "only through" in caplog.text
