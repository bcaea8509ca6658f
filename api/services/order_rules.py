"""Pure rules of order placement: which prices a type needs, ticks, lots, value and reserve.

No database and no clock: every function takes what it judges and raises an
``InvalidRequestError`` (or a subclass) whose ``code`` names the broken rule.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from api.exceptions import InvalidRequestError
from core.contracts import OrderType
from core.exceptions import MoneyError
from core.money import MONEY_CONTEXT, MONEY_SCALE, is_on_tick, notional, to_money

PRICED_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
STOP_TYPES = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LIMIT})
# Orders that trade at whatever the market gives: their reserve carries the protection band.
MARKETABLE_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_LOSS})
BPS = Decimal(10_000)


def check_price_fields(
    order_type: OrderType, price: Decimal | None, trigger_price: Decimal | None
) -> None:
    """Refuse a price or trigger price that is missing where needed or present where not."""
    if order_type in PRICED_TYPES and price is None:
        raise InvalidRequestError(f"a {order_type} order needs a price", code="price_required")
    if order_type not in PRICED_TYPES and price is not None:
        raise InvalidRequestError(f"a {order_type} order takes no price", code="price_not_allowed")
    if order_type in STOP_TYPES and trigger_price is None:
        raise InvalidRequestError(
            f"a {order_type} order needs a trigger_price", code="trigger_price_required"
        )
    if order_type not in STOP_TYPES and trigger_price is not None:
        raise InvalidRequestError(
            f"a {order_type} order takes no trigger_price", code="trigger_price_not_allowed"
        )


def check_quantity(quantity: int, lot_size: int, quantity_max: int) -> None:
    """Refuse a quantity that is not positive, above the maximum, or not a whole number of lots."""
    check_quantity_range(quantity, quantity_max)
    if quantity % lot_size != 0:
        raise InvalidRequestError(
            f"quantity {quantity} is not a multiple of the lot size {lot_size}",
            code="invalid_lot_size",
        )


def check_quantity_range(quantity: int, quantity_max: int) -> None:
    """Refuse a quantity that is not positive or above the maximum (lots need the instrument)."""
    if quantity <= 0:
        raise InvalidRequestError(
            f"quantity must be a positive whole number of shares, got {quantity}",
            code="invalid_quantity",
        )
    if quantity > quantity_max:
        raise InvalidRequestError(
            f"quantity {quantity} is above the maximum of {quantity_max} shares per order",
            code="invalid_quantity",
        )


def check_on_tick(name: str, value: Decimal | None, tick_size: Decimal) -> None:
    """Refuse a price that is not a whole multiple of the instrument's tick size."""
    if value is not None and not is_on_tick(value, tick_size):
        raise InvalidRequestError(
            f"{name} {value} is not a multiple of the tick size {tick_size}", code="invalid_tick"
        )


def unit_price(
    order_type: OrderType,
    price: Decimal | None,
    trigger_price: Decimal | None,
    last_price: Decimal | None,
    symbol: str,
) -> Decimal:
    """The price an order is valued and reserved at: limit, else trigger, else the last trade."""
    if order_type in PRICED_TYPES and price is not None:
        return price
    if order_type is OrderType.STOP_LOSS and trigger_price is not None:
        return trigger_price
    if order_type is OrderType.MARKET:
        if last_price is None:
            raise InvalidRequestError(
                f"no price yet for {symbol}: place a LIMIT order until it trades",
                code="no_price",
            )
        return last_price
    # check_price_fields runs first; reaching here is a bug in the caller.
    raise ValueError(f"{order_type} order without its price fields")


def order_value(quantity: int, price: Decimal) -> Decimal:
    """What the order is worth at ``price``: quantity times price, as money."""
    try:
        return notional(quantity, price)
    except MoneyError:
        raise _too_large(quantity, price) from None


def buy_reserve(order_type: OrderType, value: Decimal, fee_rate_bps: int, band_bps: int) -> Decimal:
    """Cash to lock for a buy: the value (plus the protection band if marketable) plus the fee.

    Rounded up to the money scale, so the reserve always covers what a fill can take.
    """
    band = band_bps if order_type in MARKETABLE_TYPES else 0
    with_band = MONEY_CONTEXT.multiply(value, bps_factor(band))
    with_fee = MONEY_CONTEXT.multiply(with_band, bps_factor(fee_rate_bps))
    try:
        return to_money(
            with_fee.quantize(MONEY_SCALE, rounding=ROUND_CEILING, context=MONEY_CONTEXT)
        )
    except MoneyError:
        raise InvalidRequestError(
            f"the reserve of {with_fee} does not fit a money amount", code="order_value_too_large"
        ) from None


def bps_factor(bps: int) -> Decimal:
    """The factor that adds ``bps`` basis points: (10000 + bps) / 10000."""
    return MONEY_CONTEXT.divide(BPS + bps, BPS)


def _too_large(quantity: int, price: Decimal) -> InvalidRequestError:
    return InvalidRequestError(
        f"{quantity} x {price} is too large to be a money amount (below 10**14)",
        code="order_value_too_large",
    )
