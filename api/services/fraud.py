"""Fraud rules an order must pass before it is accepted; a refusal names the rule in its code.

The order path applies them inside the database, in order_place (sql/migrations/0018), with the
same messages; tests/integration/api/test_order_place_sql.py holds the two to the same words.
"""

from __future__ import annotations

from decimal import Decimal

from api.exceptions import FraudRuleError


def check_order_value(value: Decimal, value_max: Decimal) -> None:
    """Rule order_value_limit: refuse an order worth more than the per-order limit."""
    if value > value_max:
        raise FraudRuleError(
            f"fraud rule order_value_limit: the order is worth {value}, above the limit of"
            f" {value_max} per order",
            code="order_value_limit",
        )


def check_order_rate(orders_last_minute: int, orders_per_minute_max: int) -> None:
    """Rule order_rate_limit: refuse an order once the user placed the maximum this minute."""
    if orders_last_minute >= orders_per_minute_max:
        raise FraudRuleError(
            f"fraud rule order_rate_limit: {orders_last_minute} orders in the last minute;"
            f" at most {orders_per_minute_max} are allowed",
            code="order_rate_limit",
        )
