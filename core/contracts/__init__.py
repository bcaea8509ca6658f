"""Immutable, versioned message contracts for every Kafka topic, and their codecs.

JSON on the wire; each record has a ``type`` tag "<name>.v<version>"; decimals are JSON strings;
timestamps are integer nanoseconds since the Unix epoch, named ``ts_*_ns``. Records validate
themselves when built and when decoded: building a bad one raises ValueError (a bug in the
producer), decoding a bad payload raises ``core.exceptions.ContractError`` (route it to the DLQ
with ``dead_letter_for``).
"""

from core.contracts.codec import (
    CONFLATED_PRICES,
    DEAD_LETTERS,
    EXECUTION_REPORTS,
    ORDER_COMMANDS,
    TICKS,
    AnyRecord,
    Codec,
    codec_for_topic,
    codecs_by_topic,
    encode,
)
from core.contracts.dead_letter import DeadLetter, RawMessage, dead_letter, dead_letter_for
from core.contracts.enums import (
    EXCHANGE_ORDER_STATUSES,
    FILL_EXEC_TYPES,
    TERMINAL_ORDER_STATUSES,
    ExecType,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from core.contracts.execution import ExecutionReport
from core.contracts.market_data import ConflatedPrice, Tick
from core.contracts.orders import CancelOrder, NewOrder, OrderCommand, OrderStatusRequest

__all__ = [
    "CONFLATED_PRICES",
    "DEAD_LETTERS",
    "EXCHANGE_ORDER_STATUSES",
    "EXECUTION_REPORTS",
    "FILL_EXEC_TYPES",
    "ORDER_COMMANDS",
    "TERMINAL_ORDER_STATUSES",
    "TICKS",
    "AnyRecord",
    "CancelOrder",
    "Codec",
    "ConflatedPrice",
    "DeadLetter",
    "ExecType",
    "ExecutionReport",
    "NewOrder",
    "OrderCommand",
    "OrderStatus",
    "OrderStatusRequest",
    "OrderType",
    "RawMessage",
    "Side",
    "Tick",
    "TimeInForce",
    "codec_for_topic",
    "codecs_by_topic",
    "dead_letter",
    "dead_letter_for",
    "encode",
]
