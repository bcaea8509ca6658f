"""Money helpers: Decimal only, 4 places half-even, nothing that overflows NUMERIC(18,4)."""

from __future__ import annotations

from decimal import Decimal, FloatOperation

import pytest

from core.exceptions import BrokerError, MoneyError
from core.money import (
    MONEY_SCALE,
    is_money,
    is_on_tick,
    money_context,
    notional,
    to_money,
    to_price,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("101.25", Decimal("101.2500")),
        (7, Decimal("7.0000")),
        (Decimal("0.00005"), Decimal("0.0000")),  # half-even: ties go to the even digit
        (Decimal("0.00015"), Decimal("0.0002")),
        (Decimal("0.00025"), Decimal("0.0002")),
        ("-2.71828", Decimal("-2.7183")),
        ("99999999999999.9999", Decimal("99999999999999.9999")),
    ],
)
def test_to_money_quantizes_half_even_to_four_places(value: str | int, expected: Decimal) -> None:
    result = to_money(value)
    assert result == expected
    assert result.as_tuple().exponent == MONEY_SCALE.as_tuple().exponent


@pytest.mark.parametrize("value", [1.5, 0.1, True])
def test_to_money_rejects_float_and_bool(value: object) -> None:
    with pytest.raises(MoneyError, match="cannot be a"):
        to_money(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", Decimal("-Infinity"), "1.2.3", ""])
def test_to_money_rejects_non_finite_and_unparsable(value: str | Decimal) -> None:
    with pytest.raises(MoneyError):
        to_money(value)


@pytest.mark.parametrize("value", [10**14, "-100000000000000", "1E+30", "99999999999999.99995"])
def test_to_money_rejects_values_that_overflow_numeric_18_4(value: str | int) -> None:
    with pytest.raises(MoneyError, match="NUMERIC"):
        to_money(value)


def test_money_error_is_a_broker_error() -> None:
    assert issubclass(MoneyError, BrokerError)


def test_is_money_accepts_only_finite_decimals_within_scale() -> None:
    assert is_money(Decimal("101.2500"))
    assert is_money(Decimal("1.25000"))  # numerically 4 places
    assert not is_money(Decimal("1.00005"))
    assert not is_money(Decimal("NaN"))
    assert not is_money(Decimal(10**14))
    assert not is_money(1.25)
    assert not is_money("1.25")


def test_to_price_rounds_to_nearest_tick_half_even() -> None:
    tick = Decimal("0.05")
    assert to_price("101.27", tick) == Decimal("101.2500")
    assert to_price("101.28", tick) == Decimal("101.3000")
    assert to_price("101.275", tick) == Decimal("101.3000")  # 2025.5 ticks -> 2026 (even)
    assert to_price("101.325", tick) == Decimal("101.3000")  # 2026.5 ticks -> 2026 (even)


def test_to_price_rejects_a_price_that_rounds_to_zero_or_below() -> None:
    with pytest.raises(MoneyError, match="> 0"):
        to_price("0.004", Decimal("0.01"))


@pytest.mark.parametrize("tick", [Decimal(0), Decimal("-0.01"), Decimal("0.00001"), 0.01])
def test_tick_helpers_reject_a_bad_tick_size(tick: Decimal) -> None:
    with pytest.raises(MoneyError, match="tick size"):
        to_price("1", tick)
    with pytest.raises(MoneyError, match="tick size"):
        is_on_tick(Decimal("1"), tick)


def test_is_on_tick_tells_multiples_of_the_tick() -> None:
    assert is_on_tick(Decimal("101.25"), Decimal("0.05"))
    assert is_on_tick(Decimal("101.2500"), Decimal("0.01"))
    assert not is_on_tick(Decimal("101.26"), Decimal("0.05"))


def test_notional_multiplies_and_quantizes() -> None:
    assert notional(3, Decimal("0.3333")) == Decimal("0.9999")
    assert notional(100, Decimal("101.2500")) == Decimal("10125.0000")


def test_notional_rejects_float_and_overflow() -> None:
    with pytest.raises(MoneyError):
        notional(3, 0.5)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        notional(True, Decimal("1"))
    with pytest.raises(MoneyError, match="NUMERIC"):
        notional(10**9, Decimal("1000000"))


def test_money_context_traps_float_mixing() -> None:
    half = 0.5  # a float on purpose
    assert Decimal(half) == Decimal("0.5")  # the default context lets a float in silently
    with money_context(), pytest.raises(FloatOperation):
        Decimal(half)
    with money_context(), pytest.raises(FloatOperation):
        _ = Decimal("1") < half
