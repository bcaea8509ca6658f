"""Order commands on ``oms.orders``, consumed by fixbridge; Kafka key = order id."""

from __future__ import annotations

from decimal import Decimal

from core.contracts._wire import (
    DecimalStr,
    Record,
    check,
    check_int,
    check_price,
    check_symbol,
    check_uuid,
)
from core.contracts.enums import OrderType, Side, TimeInForce

# Every change of an order a client can see, as JSON (the order as GET /v1/orders/{id} returns
# it, plus user_id), keyed by user id: written to the outbox by migration 0034's triggers, whose
# argument names this topic (a test pins the two equal), and read by every API's order feed.
ORDER_UPDATES_TOPIC = "oms.order-updates"
ORDER_UPDATE_RECORD = "order_update.v1"


class NewOrder(Record, frozen=True, kw_only=True, tag="new_order.v1"):
    """Send a new order to the exchange; ``order_id`` becomes the FIX ClOrdID.

    ``price`` is set exactly for LIMIT and STOP_LIMIT; ``trigger_price`` exactly for STOP_LOSS
    and STOP_LIMIT (as the CHECKs on the ``orders`` table). The stops agent sends triggered
    stops as MARKET or LIMIT.
    """

    order_id: str  # UUID, lower case
    user_id: int  # users.id
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int  # shares
    price: DecimalStr | None = None  # limit price
    trigger_price: DecimalStr | None = None  # stop trigger price
    time_in_force: TimeInForce
    ts_created_ns: int

    def __post_init__(self) -> None:
        check_uuid(self.order_id, "order_id")
        check_int(self.user_id, "user_id", 1)
        check_symbol(self.symbol)
        check(type(self.side) is Side, f"side must be a Side, got {self.side!r}")
        check(
            type(self.order_type) is OrderType,
            f"order_type must be an OrderType, got {self.order_type!r}",
        )
        check(
            type(self.time_in_force) is TimeInForce,
            f"time_in_force must be a TimeInForce, got {self.time_in_force!r}",
        )
        check_int(self.quantity, "quantity", 1)
        check_int(self.ts_created_ns, "ts_created_ns", 1)
        _check_order_price(self.price, "price", self.order_type, self.order_type.takes_price)
        _check_order_price(
            self.trigger_price, "trigger_price", self.order_type, self.order_type.takes_trigger
        )

    def kafka_key(self) -> bytes:
        """The Kafka key of this record: the order id."""
        return self.order_id.encode()


class CancelOrder(Record, frozen=True, kw_only=True, tag="cancel_order.v1"):
    """Ask the exchange to cancel the rest of a working order."""

    order_id: str  # the ClOrdID of the order to cancel
    ts_ns: int  # when the cancel was requested

    def __post_init__(self) -> None:
        check_uuid(self.order_id, "order_id")
        check_int(self.ts_ns, "ts_ns", 1)

    def kafka_key(self) -> bytes:
        """The Kafka key of this record: the order id."""
        return self.order_id.encode()


class OrderStatusRequest(Record, frozen=True, kw_only=True, tag="order_status_request.v1"):
    """Ask the exchange for the current state of an order (answered by an ExecutionReport)."""

    order_id: str
    ts_ns: int  # when the request was made

    def __post_init__(self) -> None:
        check_uuid(self.order_id, "order_id")
        check_int(self.ts_ns, "ts_ns", 1)

    def kafka_key(self) -> bytes:
        """The Kafka key of this record: the order id."""
        return self.order_id.encode()


OrderCommand = NewOrder | CancelOrder | OrderStatusRequest


def _check_order_price(
    value: Decimal | None, name: str, order_type: OrderType, required: bool
) -> None:
    if value is None:
        check(not required, f"a {order_type} order needs a {name}")
    else:
        check(required, f"a {order_type} order has no {name}")
        check_price(value, name)
