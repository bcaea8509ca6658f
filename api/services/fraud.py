"""Fraud rules an order must pass before it is accepted; a refusal names the rule in its code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg import AsyncCursor

from api.exceptions import FraudRuleError
from core.db import AsyncConn
from core.settings import Settings


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


async def send_orders_last_minute(conn: AsyncConn, user_id: int) -> AsyncCursor[Any]:
    """Send the count of the user's orders in the minute before this transaction began."""
    return await conn.execute(
        "SELECT count(*) FROM orders"
        " WHERE user_id = %s AND created_at > now() - interval '1 minute'",
        (user_id,),
    )


async def read_orders_last_minute(sent: AsyncCursor[Any]) -> int:
    """The count sent by ``send_orders_last_minute``."""
    row = await sent.fetchone()
    return int(row[0]) if row is not None else 0


def check_order_rules(settings: Settings, value: Decimal, orders_last_minute: int) -> None:
    """Apply every order fraud rule to an order's value and the user's count of recent orders.

    Count the orders after locking the wallet or holding the order uses: the lock serializes
    one user's concurrent orders on that row, so each sees the others' count.
    """
    check_order_value(value, settings.order_value_max)
    check_order_rate(orders_last_minute, settings.orders_per_minute_max)
