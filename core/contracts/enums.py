"""Enumerations shared by the contracts, the database and the API; the wire value is the name."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """Which way an order trades."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """How an order is priced; stops reach ``oms.orders`` already triggered as MARKET or LIMIT."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_LOSS = "STOP_LOSS"
    STOP_LIMIT = "STOP_LIMIT"

    @property
    def takes_price(self) -> bool:
        """A limit price is given exactly for these (the orders table's CHECK agrees)."""
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def takes_trigger(self) -> bool:
        """A trigger price is given exactly for the stops."""
        return self in (OrderType.STOP_LOSS, OrderType.STOP_LIMIT)


class TimeInForce(StrEnum):
    """How long an order stays working."""

    DAY = "DAY"
    IOC = "IOC"
    GTC = "GTC"


class ExecType(StrEnum):
    """What an execution report reports (FIX ExecType, tag 150)."""

    NEW = "NEW"
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    ORDER_STATUS = "ORDER_STATUS"


class OrderStatus(StrEnum):
    """The state of an order: the values of ``orders.status`` (sql/migrations/0003_orders.sql).

    In an ExecutionReport only ``EXCHANGE_ORDER_STATUSES`` appear (FIX OrdStatus, tag 39), and
    NEW there means the exchange holds the order (the OMS records that as ACCEPTED).
    """

    PENDING_TRIGGER = "PENDING_TRIGGER"  # OMS only: a stop waiting for its trigger price
    NEW = "NEW"
    SENT = "SENT"  # OMS only: sent to the exchange, not yet acknowledged
    ACCEPTED = "ACCEPTED"  # OMS only: the exchange acknowledged it
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


FILL_EXEC_TYPES = frozenset({ExecType.PARTIAL_FILL, ExecType.FILL})
EXCHANGE_ORDER_STATUSES = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    }
)
# Statuses after which an order never trades again.
TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
