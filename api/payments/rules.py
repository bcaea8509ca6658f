"""How the simulated gateway decides a payment's outcome: deterministic, for tests and demos."""

from __future__ import annotations

from decimal import Decimal

from api.payments.models import PaymentOutcome, PaymentRequest

# An amount whose cents are 13 (50.13, 7.1300) is declined, like a test card number.
DECLINED_CENTS = 13


def is_declined_amount(amount: Decimal) -> bool:
    """Whether an amount alone makes the simulated gateway fail a payment."""
    return int((amount * 100) % 100) == DECLINED_CENTS


def outcome(request: PaymentRequest) -> tuple[PaymentOutcome, str | None]:
    """The status and failure reason the gateway will report for ``request``."""
    if request.simulate == "fail":
        return PaymentOutcome.FAILED, "simulated_failure"
    if request.simulate == "succeed":
        return PaymentOutcome.SUCCEEDED, None
    if is_declined_amount(request.amount):
        return PaymentOutcome.FAILED, "declined_by_test_amount"
    return PaymentOutcome.SUCCEEDED, None
