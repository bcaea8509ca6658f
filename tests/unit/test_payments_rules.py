"""Pure rules of the funds flow: the simulator's outcomes, the fraud rule, page cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from api.exceptions import InvalidRequestError
from api.payments.models import PaymentKind, PaymentOutcome, PaymentRequest
from api.payments.rules import outcome
from api.services.funds_cursor import decode_cursor, encode_cursor, page_limit
from api.services.funds_fraud import withdrawal_blocked
from core.settings import Settings

NOW = datetime(2024, 9, 16, 10, 0, tzinfo=UTC)


def _request(amount: str, simulate: str | None = None) -> PaymentRequest:
    return PaymentRequest.model_validate(
        {
            "intent_id": uuid.uuid4(),
            "kind": PaymentKind.DEPOSIT,
            "amount": amount,
            "currency": "USD",
            "callback_url": "http://127.0.0.1/cb",
            "simulate": simulate,
        }
    )


@pytest.mark.parametrize(
    ("amount", "simulate", "expected"),
    [
        ("50.13", None, PaymentOutcome.FAILED),
        ("0.13", None, PaymentOutcome.FAILED),
        ("7.1300", None, PaymentOutcome.FAILED),
        ("50.12", None, PaymentOutcome.SUCCEEDED),
        ("13", None, PaymentOutcome.SUCCEEDED),
        ("50.135", None, PaymentOutcome.FAILED),
        ("50", "fail", PaymentOutcome.FAILED),
        ("50.13", "succeed", PaymentOutcome.SUCCEEDED),
    ],
)
def test_the_simulator_fails_13_cents_or_when_told(
    amount: str, simulate: str | None, expected: PaymentOutcome
) -> None:
    status, reason = outcome(_request(amount, simulate))

    assert status is expected
    assert (reason is None) == (expected is PaymentOutcome.SUCCEEDED)


@pytest.mark.parametrize(
    ("account_age", "deposit_age", "blocked"),
    [
        (timedelta(days=1), timedelta(minutes=5), True),
        (timedelta(days=1), timedelta(hours=2), False),
        (timedelta(days=30), timedelta(minutes=5), False),
        (timedelta(days=1), None, False),
    ],
)
def test_a_new_account_is_blocked_only_right_after_a_deposit(
    account_age: timedelta, deposit_age: timedelta | None, blocked: bool
) -> None:
    assert (
        withdrawal_blocked(
            account_created_at=NOW - account_age,
            last_deposit_at=None if deposit_age is None else NOW - deposit_age,
            now=NOW,
            new_account_days=7,
            block_s=3600,
        )
        is blocked
    )


def test_a_cursor_round_trips_and_garbage_is_refused() -> None:
    cursor = encode_cursor("2024-09-16T10:00:00+00:00", "abc")

    assert decode_cursor(cursor, 2) == ["2024-09-16T10:00:00+00:00", "abc"]
    for bad in ("", "!!!", encode_cursor("only-one"), "bnVsbA"):
        with pytest.raises(InvalidRequestError):
            decode_cursor(bad, 2)


def test_page_limits_are_bounded_by_settings() -> None:
    settings = Settings(page_limit_default=10, page_limit_max=50)

    assert page_limit(settings, None) == 10
    assert page_limit(settings, 50) == 50
    for bad in (0, -1, 51):
        with pytest.raises(InvalidRequestError):
            page_limit(settings, bad)


def test_money_on_the_wire_refuses_more_than_four_places() -> None:
    with pytest.raises(ValueError, match="decimal places"):
        _request("1.00001")
    assert _request("1.5").amount == Decimal("1.5")
