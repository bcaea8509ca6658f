"""The request and response bodies of the order endpoints.

Prices travel as JSON strings ("101.25") or whole JSON numbers (101). A JSON number with a
fraction is refused: most JSON parsers (this server's included) read it as a binary float, so
101.1 would already be inexact before the broker saw it, and the message contracts carry
decimals as strings for the same reason. Quantities are JSON integers only: "10", 10.0 and 10.5
are refused, so a fractional quantity can never be rounded into a different order.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)

from core.contracts import OrderStatus, OrderType, Side, TimeInForce

# Tickers are upper case; the request may spell them in any case (they are upper-cased after).
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,15}$"
CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"
# Positive decimals that fit NUMERIC(18,4): at most 14 integer and 4 fractional digits.
_PRICE_TEXT = re.compile(r"[0-9]{1,14}(\.[0-9]{1,4})?")
_PRICE_INT_MAX = 10**14 - 1
# A bigint column; the per-order maximum (settings.order_quantity_max) is checked by the service.
QUANTITY_MAX = 2**63 - 1


def _parse_price(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError(
            'send a price as a JSON string such as "101.25" or a whole number: a JSON number'
            " with a fraction is a binary float and inexact"
        )
    if isinstance(value, int):
        if not 0 < value <= _PRICE_INT_MAX:
            raise ValueError(f"a price must be between 1 and {_PRICE_INT_MAX} as a whole number")
        return Decimal(value)
    text = str(value)
    if _PRICE_TEXT.fullmatch(text) is None:
        raise ValueError(
            "a price must be a positive decimal with at most 14 integer and 4 fractional"
            f" digits, got {text!r}"
        )
    price = Decimal(text)
    if price <= 0:
        raise ValueError("a price must be greater than zero")
    return price


Price = Annotated[
    Decimal,
    PlainValidator(_parse_price),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$"},
                {"type": "integer", "minimum": 1, "maximum": _PRICE_INT_MAX},
            ],
            "description": "A positive price as a decimal string (or a whole number).",
            "examples": ["1520.40"],
        }
    ),
]
Money = Annotated[Decimal, PlainSerializer(str, return_type=str, when_used="json")]


class OrderRequest(BaseModel):
    """A new order."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "symbol": "ACME",
                    "side": "BUY",
                    "quantity": 10,
                    "type": "LIMIT",
                    "price": "1520.40",
                    "time_in_force": "DAY",
                    "client_order_id": "my-order-0001",
                },
                {"symbol": "ACME", "side": "SELL", "quantity": 5, "type": "MARKET"},
                {
                    "symbol": "ACME",
                    "side": "SELL",
                    "quantity": 5,
                    "type": "STOP_LOSS",
                    "trigger_price": "1400.00",
                },
            ]
        },
    )

    symbol: Annotated[
        str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=SYMBOL_PATTERN)
    ] = Field(description="The instrument's ticker.")
    side: Side
    quantity: Annotated[int, Field(strict=True, gt=0, le=QUANTITY_MAX)] = Field(
        description="Whole shares, a multiple of the instrument's lot size (a JSON integer)."
    )
    type: OrderType
    price: Price | None = Field(default=None, description="Required for LIMIT and STOP_LIMIT.")
    trigger_price: Price | None = Field(
        default=None, description="Required for STOP_LOSS and STOP_LIMIT."
    )
    time_in_force: TimeInForce = TimeInForce.DAY
    client_order_id: Annotated[str, StringConstraints(pattern=CLIENT_ORDER_ID_PATTERN)] | None = (
        Field(
            default=None,
            description="Your id for the order, unique per user for ever; defaults to the id.",
        )
    )
    amo: bool = Field(
        default=False,
        description="After-market order: when the market is closed, hold the order and send it"
        " at the next open (ignored while the market is open).",
    )


class OrderOut(BaseModel):
    """An order as the broker holds it."""

    id: uuid.UUID = Field(description="The order id: the FIX ClOrdID and the Kafka key.")
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: int
    price: Money | None
    trigger_price: Money | None
    time_in_force: TimeInForce
    status: OrderStatus
    cum_qty: int = Field(description="Shares filled so far.")
    avg_px: Money | None
    reserved_amount: Money = Field(description="Cash still locked for this order (buys).")
    is_amo: bool
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    """A page of orders, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[OrderOut]
    next_cursor: str | None
