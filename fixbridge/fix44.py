"""FIX 4.4 shared by the bridge and the exchange simulator: tags, codes, safe reads, builds.

In quickfix-ssl 1.15 reading a missing tag with ``getField(int)`` aborts the whole process, so
every read here checks ``isSetField`` first and a problem is raised as ``FixMessageError``, which
each side answers itself with a Reject (35=3) or BusinessMessageReject (35=j).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import quickfix as fix

from core.contracts.enums import Side
from core.timestamps import utc_of_ns
from fixbridge.exceptions import FixMessageError

TAG_AVG_PX = 6
TAG_CL_ORD_ID = 11
TAG_CUM_QTY = 14
TAG_EXEC_ID = 17
TAG_LAST_PX = 31
TAG_LAST_QTY = 32
TAG_MSG_SEQ_NUM = 34
TAG_MSG_TYPE = 35
TAG_ORDER_ID = 37
TAG_ORDER_QTY = 38
TAG_ORD_STATUS = 39
TAG_ORD_TYPE = 40
TAG_ORIG_CL_ORD_ID = 41
TAG_PRICE = 44
TAG_REF_SEQ_NUM = 45
TAG_SIDE = 54
TAG_SYMBOL = 55
TAG_TEXT = 58
TAG_TIME_IN_FORCE = 59
TAG_TRANSACT_TIME = 60
TAG_STOP_PX = 99
TAG_CXL_REJ_REASON = 102
TAG_ORD_REJ_REASON = 103
TAG_EXEC_TYPE = 150
TAG_LEAVES_QTY = 151
TAG_REF_TAG_ID = 371
TAG_REF_MSG_TYPE = 372
TAG_SESSION_REJECT_REASON = 373
TAG_BUSINESS_REJECT_REASON = 380
TAG_CXL_REJ_RESPONSE_TO = 434

MSG_REJECT = "3"
MSG_EXECUTION_REPORT = "8"
MSG_ORDER_CANCEL_REJECT = "9"
MSG_NEW_ORDER_SINGLE = "D"
MSG_ORDER_CANCEL_REQUEST = "F"
MSG_ORDER_STATUS_REQUEST = "H"
MSG_BUSINESS_MESSAGE_REJECT = "j"

# SessionRejectReason (373) and BusinessRejectReason (380) codes.
REJECT_REQUIRED_TAG_MISSING = 1
REJECT_VALUE_INCORRECT = 5
REJECT_INCORRECT_DATA_FORMAT = 6
BUSINESS_REJECT_OTHER = 0
BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE = 3
TEXT_LEN_MAX = 1024

SIDE_CODES = {Side.BUY: "1", Side.SELL: "2"}
SIDES = {code: side for side, code in SIDE_CODES.items()}


def optional(message: fix.FieldMap, tag: int) -> str | None:
    """The value of ``tag``, or None if the message does not carry it."""
    return str(message.getField(tag)) if message.isSetField(tag) else None


def required(message: fix.FieldMap, tag: int) -> str:
    """The value of ``tag``; raise ``FixMessageError`` (a session Reject) if absent or empty."""
    value = optional(message, tag)
    if not value:
        raise FixMessageError(
            f"required tag {tag} missing", tag=tag, reason=REJECT_REQUIRED_TAG_MISSING
        )
    return value


def msg_type(message: fix.Message) -> str:
    """The MsgType (35) of a message, "" if it has none."""
    return optional(message.getHeader(), TAG_MSG_TYPE) or ""


def parse_decimal(tag: int, text: str) -> Decimal:
    """The finite Decimal in ``text``; else ``FixMessageError`` (IncorrectDataFormat)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise FixMessageError(
            f"tag {tag} is not a number: {text!r}", tag=tag, reason=REJECT_INCORRECT_DATA_FORMAT
        )
    return value


def transact_time(ts_ns: int) -> str:
    """A UTCTimestamp with microseconds, e.g. 20240916-03:45:00.123456."""
    return utc_of_ns(ts_ns).strftime("%Y%m%d-%H:%M:%S.%f")


def build(kind: str, fields: list[tuple[int, str]]) -> fix.Message:
    """A message of MsgType ``kind`` carrying ``fields`` as text, in order."""
    message = fix.Message()
    message.getHeader().setField(TAG_MSG_TYPE, kind)
    for tag, value in fields:
        message.setField(tag, value)
    return message


def reject_for(inbound: fix.Message, error: FixMessageError) -> fix.Message:
    """The Reject (3) or BusinessMessageReject (j) answering ``inbound``."""
    kind = MSG_BUSINESS_MESSAGE_REJECT if error.business else MSG_REJECT
    fields = [
        (TAG_REF_SEQ_NUM, optional(inbound.getHeader(), TAG_MSG_SEQ_NUM) or "0"),
        (TAG_REF_MSG_TYPE, msg_type(inbound) or "?"),
    ]
    if error.business:
        fields.append((TAG_BUSINESS_REJECT_REASON, str(error.reason)))
    else:
        fields.append((TAG_SESSION_REJECT_REASON, str(error.reason)))
        if error.tag is not None:
            fields.append((TAG_REF_TAG_ID, str(error.tag)))
    fields.append((TAG_TEXT, error.text[:TEXT_LEN_MAX]))
    return build(kind, fields)
