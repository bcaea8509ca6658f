"""The simulated KYC provider's rules, as a pure function of the details and the date."""

from __future__ import annotations

from datetime import date

import pytest

from api.services.kyc import KycDetails, age_years, mask_name
from api.services.kyc_review import rejection_reason
from core.settings import Settings

SETTINGS = Settings()
TODAY = date(2024, 9, 15)


def _details(**changes: object) -> KycDetails:
    values: dict[str, object] = {
        "full_name": "Alice Example",
        "date_of_birth": date(1990, 4, 1),
        "national_id": SETTINGS.profile.national_id_example,
        "address": "1 Market Street",
        **changes,
    }
    return KycDetails(**values)  # type: ignore[arg-type]


def test_age_counts_full_years_only() -> None:
    assert age_years(date(2006, 9, 15), TODAY) == 18
    assert age_years(date(2006, 9, 16), TODAY) == 17
    assert age_years(date(2004, 2, 29), date(2022, 2, 28)) == 17


@pytest.mark.parametrize(
    ("changes", "reason_start"),
    [
        ({}, None),
        ({"date_of_birth": date(2006, 9, 15)}, None),
        ({"date_of_birth": date(2006, 9, 16)}, "age"),
        ({"full_name": "Auric  goldfinger"}, "sanctions"),
        ({"full_name": "Auric Goldfingers"}, None),
    ],
)
def test_rules_of_any_profile(changes: dict[str, object], reason_start: str | None) -> None:
    reason = rejection_reason(_details(**changes), TODAY, SETTINGS)

    if reason_start is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(reason_start)


def test_a_masked_name_keeps_initials_only() -> None:
    assert mask_name("Alice  van Example") == "A**** v** E******"
