"""FIX 4.4 to matching-engine values and back: parsing inbound orders, building outbound reports.

Prices and quantities are set as text, never through QuickFIX's double-typed fields, so what goes
on the wire is exactly the Decimal the engine computed. In quickfix-ssl 1.15 a C++ exception that
crosses the Python callback (reading a missing tag with ``getField(int)``, or raising
``quickfix.FieldNotFound`` / ``UnsupportedMessageType`` from ``fromApp``) aborts the whole process,
so every read checks ``isSetField`` first, problems are raised as ``FixMessageError`` and the
application answers them itself with a Reject (35=3) or BusinessMessageReject (35=j).
"""

from __future__ import annotations

import quickfix as fix

from core.contracts.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce
from fixbridge.exceptions import FixMessageError
from fixbridge.fix44 import (
    MSG_EXECUTION_REPORT,
    MSG_ORDER_CANCEL_REJECT,
    REJECT_VALUE_INCORRECT,
    SIDE_CODES,
    SIDES,
    TAG_AVG_PX,
    TAG_CL_ORD_ID,
    TAG_CUM_QTY,
    TAG_CXL_REJ_REASON,
    TAG_CXL_REJ_RESPONSE_TO,
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
    TAG_SYMBOL,
    TAG_TEXT,
    TAG_TIME_IN_FORCE,
    TAG_TRANSACT_TIME,
    build,
    optional,
    parse_decimal,
    required,
    transact_time,
)
from fixbridge.simulator.matching import (
    TEXT_DUPLICATE,
    TEXT_UNKNOWN_ORDER,
    TEXT_UNKNOWN_SYMBOL,
    CancelReject,
    NewOrderRequest,
    Report,
)

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


def parse_side(message: fix.Message) -> Side:
    """The Side (54); a value other than buy or sell is an IncorrectTagValue reject."""
    side = SIDES.get(required(message, TAG_SIDE))
    if side is None:
        raise FixMessageError("side must be 1 or 2", tag=TAG_SIDE, reason=REJECT_VALUE_INCORRECT)
    return side


def parse_new_order(message: fix.Message) -> NewOrderRequest:
    """A NewOrderSingle (D) as an engine request; an unknown OrdType or TIF becomes None."""
    qty = parse_decimal(TAG_ORDER_QTY, required(message, TAG_ORDER_QTY))
    price_text = optional(message, TAG_PRICE)
    tif_code = optional(message, TAG_TIME_IN_FORCE)
    return NewOrderRequest(
        cl_ord_id=required(message, TAG_CL_ORD_ID),
        symbol=required(message, TAG_SYMBOL),
        side=parse_side(message),
        order_type=ORDER_TYPES.get(required(message, TAG_ORD_TYPE)),
        # A fractional share count is not a whole number of lots: the engine rejects 0.
        qty=int(qty) if qty == qty.to_integral_value() else 0,
        price=None if price_text is None else parse_decimal(TAG_PRICE, price_text),
        time_in_force=TimeInForce.DAY if tif_code is None else TIME_IN_FORCES.get(tif_code),
    )


def execution_report(report: Report) -> fix.Message:
    """The FIX 4.4 ExecutionReport (8) of an engine report."""
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
    return build(MSG_EXECUTION_REPORT, fields)


def order_cancel_reject(reject: CancelReject) -> fix.Message:
    """The FIX 4.4 OrderCancelReject (9) of a refused cancel."""
    return build(
        MSG_ORDER_CANCEL_REJECT,
        [
            (TAG_ORDER_ID, reject.order_id),
            (TAG_CL_ORD_ID, reject.cl_ord_id),
            (TAG_ORIG_CL_ORD_ID, reject.orig_cl_ord_id),
            (TAG_ORD_STATUS, ORD_STATUS_CODES[reject.ord_status]),
            (TAG_CXL_REJ_RESPONSE_TO, "1"),  # to an OrderCancelRequest
            (TAG_CXL_REJ_REASON, "1" if reject.unknown_order else "0"),
            (TAG_TEXT, reject.text),
        ],
    )
