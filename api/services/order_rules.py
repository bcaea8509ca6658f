"""The order rules the API decides before the database: which prices a type needs, the quantity.

A request these refuse never reaches ``order_place``. Every other rule (instrument, lot, tick,
session, valuation, reserve, fraud rules, funds, shares) lives in that SQL function
(sql/migrations/0030) alone, pinned by tests/integration/test_order_place_cases.py.
"""

from __future__ import annotations

from decimal import Decimal

from api.exceptions import InvalidRequestError
from core.contracts import OrderType


def check_price_fields(
    order_type: OrderType, price: Decimal | None, trigger_price: Decimal | None
) -> None:
    """Refuse a price or trigger price that is missing where needed or present where not."""
    if order_type.takes_price and price is None:
        raise InvalidRequestError(f"a {order_type} order needs a price", code="price_required")
    if not order_type.takes_price and price is not None:
        raise InvalidRequestError(f"a {order_type} order takes no price", code="price_not_allowed")
    if order_type.takes_trigger and trigger_price is None:
        raise InvalidRequestError(
            f"a {order_type} order needs a trigger_price", code="trigger_price_required"
        )
    if not order_type.takes_trigger and trigger_price is not None:
        raise InvalidRequestError(
            f"a {order_type} order takes no trigger_price", code="trigger_price_not_allowed"
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
