"""FIX 4.4 <-> contracts: order commands to FIX messages, FIX ExecutionReports to records.

Prices and quantities go on the wire as text, never through QuickFIX's double-typed fields, so
the exchange sees exactly the Decimal the OMS stored. In quickfix-ssl 1.15 reading a missing tag
with ``getField(int)`` aborts the process, so every read checks ``isSetField`` first and problems
are raised as ``FixMessageError``; the session answers them with a Reject or BusinessMessageReject.
Messages are checked when decoded (``parse_execution_report``) and again before sending
(``check_outbound``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import quickfix as fix

from core.contracts import ExecType, ExecutionReport, NewOrder, OrderStatus, OrderType, Side
from core.contracts.enums import FILL_EXEC_TYPES, TimeInForce
from core.exceptions import MoneyError
from core.money import to_money
from core.timestamps import ns_of
from fixbridge.exceptions import FixMessageError
from fixbridge.fix44 import (
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_STATUS_REQUEST,
    REJECT_INCORRECT_DATA_FORMAT,
    REJECT_VALUE_INCORRECT,
    SIDE_CODES,
    SIDES,
    TAG_AVG_PX,
    TAG_CL_ORD_ID,
    TAG_CUM_QTY,
    TAG_EXEC_ID,
    TAG_EXEC_TYPE,
    TAG_LAST_PX,
    TAG_LAST_QTY,
    TAG_LEAVES_QTY,
    TAG_ORD_REJ_REASON,
    TAG_ORD_STATUS,
    TAG_ORD_TYPE,
    TAG_ORDER_ID,
    TAG_ORDER_QTY,
    TAG_ORIG_CL_ORD_ID,
    TAG_PRICE,
    TAG_SIDE,
    TAG_STOP_PX,
    TAG_SYMBOL,
    TAG_TEXT,
    TAG_TIME_IN_FORCE,
    TAG_TRANSACT_TIME,
    TEXT_LEN_MAX,
    build,
    msg_type,
    optional,
    parse_decimal,
    required,
    transact_time,
)

# OrdRejReason (103) 6: duplicate order. The exchange refused a second order with a ClOrdID it
# already holds; that reject is not about the order the ClOrdID names, which lives on.
ORD_REJ_DUPLICATE = "6"
# ExecType (150) I answers an OrderStatusRequest; OrderID (37) "NONE" says the exchange holds no
# order with that ClOrdID (FIX 4.4's convention for an unknown order).
EXEC_TYPE_ORDER_STATUS = "I"
ORDER_ID_NONE = "NONE"
CodeT = TypeVar("CodeT")

ORD_TYPE_CODES = {
    OrderType.MARKET: "1",
    OrderType.LIMIT: "2",
    OrderType.STOP_LOSS: "3",
    OrderType.STOP_LIMIT: "4",
}
TIME_IN_FORCE_CODES = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3"}
ORD_STATUSES = {
    "0": OrderStatus.NEW,
    "1": OrderStatus.PARTIALLY_FILLED,
    "2": OrderStatus.FILLED,
    "4": OrderStatus.CANCELED,
    "6": OrderStatus.PENDING_CANCEL,
    "8": OrderStatus.REJECTED,
    "C": OrderStatus.EXPIRED,
}
# FIX 4.4 reports every execution as F (trade); 1 and 2 are the FIX 4.2 codes some venues keep.
_EXEC_TYPES = {
    "0": ExecType.NEW,
    "4": ExecType.CANCELED,
    "6": ExecType.PENDING_CANCEL,
    "8": ExecType.REJECTED,
    "C": ExecType.EXPIRED,
    "I": ExecType.ORDER_STATUS,
}
_TRADE_EXEC_TYPES = frozenset({"F", "1", "2"})
# Tags every outbound message of a type must carry (FIX 4.4 required fields we use).
_OUTBOUND_REQUIRED = {
    MSG_NEW_ORDER_SINGLE: (
        TAG_CL_ORD_ID,
        TAG_SYMBOL,
        TAG_SIDE,
        TAG_TRANSACT_TIME,
        TAG_ORDER_QTY,
        TAG_ORD_TYPE,
    ),
    MSG_ORDER_CANCEL_REQUEST: (
        TAG_ORIG_CL_ORD_ID,
        TAG_CL_ORD_ID,
        TAG_SYMBOL,
        TAG_SIDE,
        TAG_TRANSACT_TIME,
        TAG_ORDER_QTY,
    ),
    MSG_ORDER_STATUS_REQUEST: (TAG_CL_ORD_ID, TAG_SYMBOL, TAG_SIDE),
}
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP_FORMATS = ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S")


@dataclass(frozen=True, slots=True)
class OrderRef:
    """What a cancel or status request needs to name an order: its id, symbol, side, quantity."""

    order_id: str
    symbol: str
    side: Side
    quantity: int


# Reading.


def _quantity(message: fix.Message, tag: int) -> int:
    value = parse_decimal(tag, required(message, tag))
    if value != value.to_integral_value() or value < 0:
        raise FixMessageError(
            f"tag {tag} must be a whole number of shares", tag=tag, reason=REJECT_VALUE_INCORRECT
        )
    return int(value)


def _money(message: fix.Message, tag: int) -> Decimal:
    try:
        return to_money(parse_decimal(tag, required(message, tag)))
    except MoneyError as exc:
        raise FixMessageError(str(exc), tag=tag, reason=REJECT_VALUE_INCORRECT) from None


def _coded(message: fix.Message, tag: int, codes: Mapping[str, CodeT]) -> CodeT:
    code = required(message, tag)
    if code not in codes:
        raise FixMessageError(
            f"tag {tag} has an unexpected value {code!r}", tag=tag, reason=REJECT_VALUE_INCORRECT
        )
    return codes[code]


def parse_transact_time(text: str | None, fallback_ns: int) -> int:
    """A FIX UTCTimestamp in nanoseconds since the epoch; ``fallback_ns`` when absent."""
    if text is None:
        return fallback_ns
    for fmt in _TIMESTAMP_FORMATS:
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return ns_of(moment)
    raise FixMessageError(
        f"TransactTime {text!r} is not a UTCTimestamp",
        tag=TAG_TRANSACT_TIME,
        reason=REJECT_INCORRECT_DATA_FORMAT,
    )


def is_duplicate_reject(message: fix.Message) -> bool:
    """Tell whether an ExecutionReport refuses a second order with a ClOrdID already in use."""
    return optional(message, TAG_EXEC_TYPE) == "8" and (
        optional(message, TAG_ORD_REJ_REASON) == ORD_REJ_DUPLICATE
    )


def is_unknown_order_status(message: fix.Message) -> bool:
    """Tell whether an ExecutionReport answers a status request with "no such order"."""
    return optional(message, TAG_EXEC_TYPE) == EXEC_TYPE_ORDER_STATUS and (
        optional(message, TAG_ORDER_ID) == ORDER_ID_NONE
    )


def _exec_type(message: fix.Message, status: OrderStatus) -> ExecType:
    code = required(message, TAG_EXEC_TYPE)
    if code in _TRADE_EXEC_TYPES:
        return ExecType.FILL if status is OrderStatus.FILLED else ExecType.PARTIAL_FILL
    exec_type = _EXEC_TYPES.get(code)
    if exec_type is None:
        raise FixMessageError(
            f"ExecType {code!r} is not handled", tag=TAG_EXEC_TYPE, reason=REJECT_VALUE_INCORRECT
        )
    return exec_type


def parse_execution_report(message: fix.Message, now_ns: int) -> ExecutionReport:
    """The contract record of a FIX ExecutionReport (8); raise ``FixMessageError`` if invalid.

    The order id is OrigClOrdID when present (the report answers a cancel, whose own ClOrdID is
    the cancel's), else ClOrdID. Only fills carry LastQty and LastPx into the record.
    """
    status = _coded(message, TAG_ORD_STATUS, ORD_STATUSES)
    exec_type = _exec_type(message, status)
    is_fill = exec_type in FILL_EXEC_TYPES
    cum_qty = _quantity(message, TAG_CUM_QTY)
    text = optional(message, TAG_TEXT)
    try:
        return ExecutionReport(
            exec_id=required(message, TAG_EXEC_ID),
            order_id=optional(message, TAG_ORIG_CL_ORD_ID) or required(message, TAG_CL_ORD_ID),
            exec_type=exec_type,
            order_status=status,
            symbol=required(message, TAG_SYMBOL),
            side=_coded(message, TAG_SIDE, SIDES),
            last_qty=_quantity(message, TAG_LAST_QTY) if is_fill else 0,
            last_px=_money(message, TAG_LAST_PX) if is_fill else None,
            cum_qty=cum_qty,
            leaves_qty=_quantity(message, TAG_LEAVES_QTY),
            # A venue may send AvgPx with more places than NUMERIC(18,4) holds; round it once.
            avg_px=_money(message, TAG_AVG_PX) if cum_qty else Decimal(0),
            text=None if not text else text[:TEXT_LEN_MAX],
            ts_transact_ns=parse_transact_time(optional(message, TAG_TRANSACT_TIME), now_ns),
        )
    except ValueError as exc:
        # The contract's own checks (a ClOrdID that is not ours, inconsistent quantities).
        raise FixMessageError(str(exc), tag=None, reason=REJECT_VALUE_INCORRECT) from None


# Writing.


def new_order_single(order: NewOrder, now_ns: int) -> fix.Message:
    """The NewOrderSingle (D) of an order command; ClOrdID = the order id."""
    fields = [
        (TAG_CL_ORD_ID, order.order_id),
        (TAG_SYMBOL, order.symbol),
        (TAG_SIDE, SIDE_CODES[order.side]),
        (TAG_TRANSACT_TIME, transact_time(now_ns)),
        (TAG_ORDER_QTY, str(order.quantity)),
        (TAG_ORD_TYPE, ORD_TYPE_CODES[order.order_type]),
        (TAG_TIME_IN_FORCE, TIME_IN_FORCE_CODES[order.time_in_force]),
    ]
    if order.price is not None:
        fields.append((TAG_PRICE, str(order.price)))
    if order.trigger_price is not None:
        fields.append((TAG_STOP_PX, str(order.trigger_price)))
    return build(MSG_NEW_ORDER_SINGLE, fields)


def order_cancel_request(order: OrderRef, cancel_id: str, now_ns: int) -> fix.Message:
    """The OrderCancelRequest (F) of an order; OrigClOrdID = the order id."""
    return build(
        MSG_ORDER_CANCEL_REQUEST,
        [
            (TAG_ORIG_CL_ORD_ID, order.order_id),
            (TAG_CL_ORD_ID, cancel_id),
            (TAG_SYMBOL, order.symbol),
            (TAG_SIDE, SIDE_CODES[order.side]),
            (TAG_TRANSACT_TIME, transact_time(now_ns)),
            (TAG_ORDER_QTY, str(order.quantity)),
        ],
    )


def order_status_request(order: OrderRef) -> fix.Message:
    """The OrderStatusRequest (H) of an order; the answer is an ExecutionReport with ExecType I."""
    return build(
        MSG_ORDER_STATUS_REQUEST,
        [
            (TAG_CL_ORD_ID, order.order_id),
            (TAG_SYMBOL, order.symbol),
            (TAG_SIDE, SIDE_CODES[order.side]),
        ],
    )


def check_outbound(message: fix.Message) -> None:
    """Raise ValueError unless ``message`` is an order message this bridge may send."""
    kind = msg_type(message)
    tags = _OUTBOUND_REQUIRED.get(kind)
    if tags is None:
        raise ValueError(f"the bridge never sends MsgType {kind!r}")
    missing = [tag for tag in tags if not optional(message, tag)]
    if missing:
        raise ValueError(f"MsgType {kind} is missing tags {missing}")
    for tag in (TAG_CL_ORD_ID, TAG_ORIG_CL_ORD_ID):
        value = optional(message, tag)
        if value is not None and _UUID_RE.fullmatch(value) is None:
            raise ValueError(f"tag {tag} must be a lower-case UUID, got {value!r}")
    if optional(message, TAG_SIDE) not in SIDES:
        raise ValueError(f"side must be 1 or 2, got {optional(message, TAG_SIDE)!r}")
    qty = optional(message, TAG_ORDER_QTY)
    if qty is not None and (not qty.isdigit() or int(qty) <= 0):
        raise ValueError(f"OrderQty must be a positive whole number, got {qty!r}")
    for tag in (TAG_PRICE, TAG_STOP_PX):
        price = optional(message, tag)
        if price is not None and not _decimal_positive(price):
            raise ValueError(f"tag {tag} must be a positive decimal, got {price!r}")


def _decimal_positive(text: str) -> bool:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return value.is_finite() and value > 0
