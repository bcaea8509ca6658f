"""FIX 4.4 to matching-engine values and back: parsing inbound orders, building outbound reports.

Prices and quantities are set as text, never through QuickFIX's double-typed fields, so what goes
on the wire is exactly the Decimal the engine computed. In quickfix-ssl 1.15 a C++ exception that
crosses the Python callback (reading a missing tag with ``getField(int)``, or raising
``quickfix.FieldNotFound`` / ``UnsupportedMessageType`` from ``fromApp``) aborts the whole process,
so every read checks ``isSetField`` first, problems are raised as ``FixMessageError`` and the
application answers them itself with a Reject (35=3) or BusinessMessageReject (35=j).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import quickfix as fix

from core.contracts.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce
from fixbridge.exceptions import FixMessageError
from fixbridge.simulator.matching import (
    TEXT_DUPLICATE,
    TEXT_UNKNOWN_ORDER,
    TEXT_UNKNOWN_SYMBOL,
    CancelReject,
    NewOrderRequest,
    Report,
)

# Tags used here, named once.
TAG_AVG_PX = 6
TAG_CL_ORD_ID = 11
TAG_CUM_QTY = 14
TAG_EXEC_ID = 17
TAG_LAST_PX = 31
TAG_LAST_QTY = 32
TAG_MSG_TYPE = 35
TAG_ORDER_ID = 37
TAG_ORDER_QTY = 38
TAG_ORD_STATUS = 39
TAG_ORD_TYPE = 40
TAG_ORIG_CL_ORD_ID = 41
TAG_PRICE = 44
TAG_SIDE = 54
TAG_SYMBOL = 55
TAG_TEXT = 58
TAG_TIME_IN_FORCE = 59
TAG_TRANSACT_TIME = 60
TAG_ORD_REJ_REASON = 103
TAG_CXL_REJ_REASON = 102
TAG_EXEC_TYPE = 150
TAG_LEAVES_QTY = 151
TAG_CXL_REJ_RESPONSE_TO = 434
TAG_MSG_SEQ_NUM = 34
TAG_REF_SEQ_NUM = 45
TAG_REF_TAG_ID = 371
TAG_REF_MSG_TYPE = 372
TAG_SESSION_REJECT_REASON = 373
TAG_BUSINESS_REJECT_REASON = 380

# SessionRejectReason (373) and BusinessRejectReason (380) codes used here.
REJECT_REQUIRED_TAG_MISSING = 1
REJECT_VALUE_INCORRECT = 5
REJECT_INCORRECT_DATA_FORMAT = 6
REJECT_OTHER = 99
BUSINESS_REJECT_OTHER = 0
BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE = 3

MSG_NEW_ORDER_SINGLE = "D"
MSG_ORDER_CANCEL_REQUEST = "F"
MSG_ORDER_STATUS_REQUEST = "H"
MSG_EXECUTION_REPORT = "8"
MSG_ORDER_CANCEL_REJECT = "9"
MSG_REJECT = "3"
MSG_BUSINESS_MESSAGE_REJECT = "j"
TEXT_LEN_MAX = 1024

SIDES = {"1": Side.BUY, "2": Side.SELL}
SIDE_CODES = {side: code for code, side in SIDES.items()}
ORDER_TYPES = {"1": OrderType.MARKET, "2": OrderType.LIMIT}
ORDER_TYPE_CODES = {t: code for code, t in ORDER_TYPES.items()} | {
    OrderType.STOP_LOSS: "3",
    OrderType.STOP_LIMIT: "4",
}
TIME_IN_FORCES = {"0": TimeInForce.DAY, "1": TimeInForce.GTC, "3": TimeInForce.IOC}
TIME_IN_FORCE_CODES = {t: code for code, t in TIME_IN_FORCES.items()}
# FIX 4.4 reports every execution as ExecType F (trade); OrdStatus tells partial from full.
EXEC_TYPE_CODES = {
    ExecType.NEW: "0",
    ExecType.PARTIAL_FILL: "F",
    ExecType.FILL: "F",
    ExecType.CANCELED: "4",
    ExecType.PENDING_CANCEL: "6",
    ExecType.REJECTED: "8",
    ExecType.EXPIRED: "C",
    ExecType.ORDER_STATUS: "I",
}
ORD_STATUS_CODES = {
    OrderStatus.NEW: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.FILLED: "2",
    OrderStatus.CANCELED: "4",
    OrderStatus.PENDING_CANCEL: "6",
    OrderStatus.REJECTED: "8",
    OrderStatus.EXPIRED: "C",
}
_ORD_REJ_REASONS = {TEXT_UNKNOWN_SYMBOL: "1", TEXT_UNKNOWN_ORDER: "5", TEXT_DUPLICATE: "6"}
ORD_REJ_REASON_OTHER = "99"


def required(message: fix.Message, tag: int) -> str:
    """The value of ``tag``; raise ``FixMessageError`` (a session Reject) if absent."""
    if not message.isSetField(tag):
        raise FixMessageError(
            f"required tag {tag} missing", tag=tag, reason=REJECT_REQUIRED_TAG_MISSING
        )
    return str(message.getField(tag))


def optional(message: fix.Message, tag: int) -> str | None:
    """The value of ``tag``, or None if the message does not carry it."""
    return str(message.getField(tag)) if message.isSetField(tag) else None


def msg_type(message: fix.Message) -> str:
    """The MsgType (35) of a message."""
    return _header_field(message, TAG_MSG_TYPE) or ""


def _header_field(message: fix.Message, tag: int) -> str | None:
    header = message.getHeader()
    return str(header.getField(tag)) if header.isSetField(tag) else None


def parse_side(message: fix.Message) -> Side:
    """The Side (54); a value other than buy or sell is an IncorrectTagValue reject."""
    side = SIDES.get(required(message, TAG_SIDE))
    if side is None:
        raise FixMessageError("side must be 1 or 2", tag=TAG_SIDE, reason=REJECT_VALUE_INCORRECT)
    return side


def _decimal(message: fix.Message, tag: int, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise FixMessageError(
            f"tag {tag} is not a number", tag=tag, reason=REJECT_INCORRECT_DATA_FORMAT
        )
    return value


def parse_new_order(message: fix.Message) -> NewOrderRequest:
    """A NewOrderSingle (D) as an engine request; an unknown OrdType or TIF becomes None."""
    qty = _decimal(message, TAG_ORDER_QTY, required(message, TAG_ORDER_QTY))
    price_text = optional(message, TAG_PRICE)
    tif_code = optional(message, TAG_TIME_IN_FORCE)
    return NewOrderRequest(
        cl_ord_id=required(message, TAG_CL_ORD_ID),
        symbol=required(message, TAG_SYMBOL),
        side=parse_side(message),
        order_type=ORDER_TYPES.get(required(message, TAG_ORD_TYPE)),
        # A fractional share count is not a whole number of lots: the engine rejects 0.
        qty=int(qty) if qty == qty.to_integral_value() else 0,
        price=None if price_text is None else _decimal(message, TAG_PRICE, price_text),
        time_in_force=TimeInForce.DAY if tif_code is None else TIME_IN_FORCES.get(tif_code),
    )


def transact_time(ts_ns: int) -> str:
    """A UTCTimestamp with microseconds, e.g. 20240916-03:45:00.123456."""
    return datetime.fromtimestamp(ts_ns // 1000 / 1e6, tz=UTC).strftime("%Y%m%d-%H:%M:%S.%f")


def execution_report(report: Report) -> fix.Message:
    """The FIX 4.4 ExecutionReport (8) of an engine report."""
    message = fix.Message()
    message.getHeader().setField(TAG_MSG_TYPE, MSG_EXECUTION_REPORT)
    fields: list[tuple[int, str]] = [
        (TAG_ORDER_ID, report.order_id),
        (TAG_CL_ORD_ID, report.cl_ord_id),
        (TAG_EXEC_ID, report.exec_id),
        (TAG_EXEC_TYPE, EXEC_TYPE_CODES[report.exec_type]),
        (TAG_ORD_STATUS, ORD_STATUS_CODES[report.ord_status]),
        (TAG_SYMBOL, report.symbol),
        (TAG_SIDE, SIDE_CODES[report.side]),
        (TAG_ORDER_QTY, str(report.order_qty)),
        (TAG_LAST_QTY, str(report.last_qty)),
        (TAG_LEAVES_QTY, str(report.leaves_qty)),
        (TAG_CUM_QTY, str(report.cum_qty)),
        (TAG_AVG_PX, str(report.avg_px)),
        (TAG_TRANSACT_TIME, transact_time(report.ts_transact_ns)),
    ]
    if report.last_px is not None:
        fields.append((TAG_LAST_PX, str(report.last_px)))
    if report.orig_cl_ord_id is not None:
        fields.append((TAG_ORIG_CL_ORD_ID, report.orig_cl_ord_id))
    if report.order_type is not None:
        fields.append((TAG_ORD_TYPE, ORDER_TYPE_CODES[report.order_type]))
    if report.price is not None and report.price.is_finite():
        fields.append((TAG_PRICE, str(report.price)))
    if report.text is not None:
        fields.append((TAG_TEXT, report.text))
    if report.exec_type is ExecType.REJECTED:
        code = _ORD_REJ_REASONS.get(report.text or "", ORD_REJ_REASON_OTHER)
        fields.append((TAG_ORD_REJ_REASON, code))
    for tag, value in fields:
        message.setField(tag, value)
    return message


def order_cancel_reject(reject: CancelReject) -> fix.Message:
    """The FIX 4.4 OrderCancelReject (9) of a refused cancel."""
    message = fix.Message()
    message.getHeader().setField(TAG_MSG_TYPE, MSG_ORDER_CANCEL_REJECT)
    message.setField(TAG_ORDER_ID, reject.order_id)
    message.setField(TAG_CL_ORD_ID, reject.cl_ord_id)
    message.setField(TAG_ORIG_CL_ORD_ID, reject.orig_cl_ord_id)
    message.setField(TAG_ORD_STATUS, ORD_STATUS_CODES[reject.ord_status])
    message.setField(TAG_CXL_REJ_RESPONSE_TO, "1")  # to an OrderCancelRequest
    message.setField(TAG_CXL_REJ_REASON, "1" if reject.unknown_order else "0")
    message.setField(TAG_TEXT, reject.text)
    return message


def reject_for(inbound: fix.Message, error: FixMessageError) -> fix.Message:
    """The Reject (3) or BusinessMessageReject (j) answering ``inbound``."""
    message = fix.Message()
    kind = MSG_BUSINESS_MESSAGE_REJECT if error.business else MSG_REJECT
    message.getHeader().setField(TAG_MSG_TYPE, kind)
    message.setField(TAG_REF_SEQ_NUM, _header_field(inbound, TAG_MSG_SEQ_NUM) or "0")
    message.setField(TAG_REF_MSG_TYPE, msg_type(inbound) or "?")
    if error.business:
        message.setField(TAG_BUSINESS_REJECT_REASON, str(error.reason))
    else:
        message.setField(TAG_SESSION_REJECT_REASON, str(error.reason))
        if error.tag is not None:
            message.setField(TAG_REF_TAG_ID, str(error.tag))
    message.setField(TAG_TEXT, error.text[:TEXT_LEN_MAX])
    return message
