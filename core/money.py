"""Money as ``Decimal``: parsing, rounding to the database scale, ticks and notionals.

Money is ``Decimal`` in Python and ``NUMERIC(18,4)`` in SQL, never float: 14 integer digits and 4
fractional digits, rounded half-even (banker's rounding) when a value has more.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    FloatOperation,
    InvalidOperation,
    Overflow,
    localcontext,
)

from core.exceptions import MoneyError

MONEY_SCALE = Decimal("0.0001")
# NUMERIC(18,4) holds magnitudes strictly below 10**14.
MONEY_ABS_LIMIT = Decimal(10**14)

# Enough precision for any product of two NUMERIC(18,4) values; traps turn silent NaNs and
# float mixing into exceptions instead of wrong numbers.
MONEY_CONTEXT = Context(
    prec=40,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow, FloatOperation],
)


def money_context() -> AbstractContextManager[Context]:
    """Return a context manager running Decimal arithmetic under ``MONEY_CONTEXT``."""
    return localcontext(MONEY_CONTEXT)


def is_money(value: object) -> bool:
    """Tell whether ``value`` is a finite Decimal that fits ``NUMERIC(18,4)`` without rounding."""
    if type(value) is not Decimal or not value.is_finite():
        return False
    # Compare numerically: Decimal("1.25000") is money, Decimal("1.00005") is not.
    return (
        abs(value) < MONEY_ABS_LIMIT and value.quantize(MONEY_SCALE, context=MONEY_CONTEXT) == value
    )


def to_money(value: str | int | Decimal) -> Decimal:
    """Parse ``value`` into a Decimal rounded half-even to 4 places, or raise MoneyError."""
    amount = _to_decimal(value)
    if abs(amount) >= MONEY_ABS_LIMIT:
        raise MoneyError(f"{value!r} does not fit NUMERIC(18,4): magnitude must be below 10**14")
    rounded = amount.quantize(MONEY_SCALE, rounding=ROUND_HALF_EVEN, context=MONEY_CONTEXT)
    # Rounding 99999999999999.99995 up reaches the limit.
    if abs(rounded) >= MONEY_ABS_LIMIT:
        raise MoneyError(f"{value!r} does not fit NUMERIC(18,4) once rounded to 4 places")
    return rounded


def to_price(value: str | int | Decimal, tick_size: Decimal) -> Decimal:
    """Round ``value`` half-even to the nearest positive multiple of ``tick_size``."""
    tick = _check_tick_size(tick_size)
    amount = to_money(value)
    ticks = (amount / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN, context=MONEY_CONTEXT)
    price = to_money(ticks * tick)
    if price <= 0:
        raise MoneyError(f"{value!r} rounds to {price} at tick size {tick}; a price must be > 0")
    return price


def is_on_tick(price: Decimal, tick_size: Decimal) -> bool:
    """Tell whether ``price`` is a whole multiple of ``tick_size``."""
    tick = _check_tick_size(tick_size)
    if type(price) is not Decimal or not price.is_finite():
        raise MoneyError(f"price must be a finite Decimal, got {price!r}")
    return price.remainder_near(tick, context=MONEY_CONTEXT) == 0


def notional(qty: int, price: Decimal) -> Decimal:
    """Return ``qty * price`` as money (4 places, half-even); raise MoneyError on overflow."""
    if type(qty) is not int:
        raise MoneyError(f"quantity must be an int number of shares, got {qty!r}")
    if type(price) is not Decimal:
        raise MoneyError(f"price must be a Decimal, got {price!r}")
    return to_money(MONEY_CONTEXT.multiply(price, Decimal(qty)))


def _to_decimal(value: object) -> Decimal:
    # bool is an int subclass and float is inexact: both are refused by name.
    if isinstance(value, bool | float):
        raise MoneyError(f"money cannot be a {type(value).__name__}: {value!r}; pass a str")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | str):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise MoneyError(f"{value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"money must be a str, int or Decimal, got {type(value).__name__}")
    if not amount.is_finite():
        raise MoneyError(f"money must be finite, got {value!r}")
    return amount


def _check_tick_size(tick_size: Decimal) -> Decimal:
    if not is_money(tick_size) or tick_size <= 0:
        raise MoneyError(
            f"tick size must be a positive Decimal with at most 4 places: {tick_size!r}"
        )
    return tick_size
