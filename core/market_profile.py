"""Market profiles: the exchange a deployment trades on, and what follows from it.

A profile names the currency, the exchange's time zone and session hours, the national id format
KYC accepts, and the ``exchange_calendars`` calendar the holidays come from. ``Settings`` takes
its defaults for these from the profile named by ``BROKER_MARKET_PROFILE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProfileName = Literal["NSE", "NYSE"]


@dataclass(frozen=True, slots=True)
class MarketProfile:
    """One exchange's currency, hours, id format and holiday calendar."""

    name: ProfileName
    currency: str
    tz: str
    open_at: str  # HH:MM, exchange time
    close_at: str
    # Matched against the id with spaces removed and letters upper-cased.
    national_id_pattern: str
    # How the id is written, for the person whose id was refused.
    national_id_format: str
    # A well-formed id, for examples and tests; no real person's.
    national_id_example: str
    # The exchange_calendars code of the exchange's holidays.
    calendar_code: str


PROFILES: dict[ProfileName, MarketProfile] = {
    "NSE": MarketProfile(
        name="NSE",
        currency="INR",
        tz="Asia/Kolkata",
        open_at="09:15",
        close_at="15:30",
        national_id_pattern=r"^[A-Z]{5}[0-9]{4}[A-Z]$",
        national_id_format="PAN, AAAAA9999A: 5 letters, 4 digits, 1 letter",
        national_id_example="ABCDE1234F",
        # exchange_calendars has no NSE calendar; BSE's (XBOM) has the same trading holidays.
        calendar_code="XBOM",
    ),
    "NYSE": MarketProfile(
        name="NYSE",
        currency="USD",
        tz="America/New_York",
        open_at="09:30",
        close_at="16:00",
        national_id_pattern=r"^([0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{9})$",
        national_id_format="SSN, 999-99-9999: 9 digits",
        national_id_example="123-45-6789",
        calendar_code="XNYS",
    ),
}
