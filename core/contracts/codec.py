"""The one place records become bytes and bytes become records, and which topic holds which.

Build nothing per message: the codecs below are module-level and reuse one msgspec encoder and
one decoder. A decoder reads any known record type (the ``type`` tag picks it), so a v2 of a
record decodes beside v1 once it joins ``AnyRecord``; the codec then checks the record belongs
to its topic. Unknown fields are ignored, so adding an optional field does not need a v2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from core.contracts._wire import dec_hook
from core.contracts.dead_letter import DeadLetter
from core.contracts.execution import ExecutionReport
from core.contracts.market_data import ConflatedPrice, Tick
from core.contracts.orders import CancelOrder, NewOrder, OrderCommand, OrderStatusRequest
from core.exceptions import ContractError

if TYPE_CHECKING:
    from core.settings import Settings

AnyRecord = (
    Tick
    | ConflatedPrice
    | NewOrder
    | CancelOrder
    | OrderStatusRequest
    | ExecutionReport
    | DeadLetter
)
RecordT = TypeVar("RecordT")

_ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(AnyRecord, dec_hook=dec_hook)


class Codec(Generic[RecordT]):
    """Encodes and decodes the records of one topic; raises ContractError on any bad payload."""

    __slots__ = ("name", "record_types")

    def __init__(self, name: str, record_types: tuple[type[Any], ...]) -> None:
        self.name = name
        self.record_types = record_types

    def __repr__(self) -> str:
        return f"Codec({self.name!r})"

    def encode(self, record: RecordT) -> bytes:
        """Return the JSON bytes of ``record``; a record of another topic is a TypeError."""
        if not isinstance(record, self.record_types):
            raise TypeError(f"the {self.name} codec cannot encode {type(record).__name__}")
        return _ENCODER.encode(record)

    def decode(self, data: bytes | str | None, *, topic: str | None = None) -> RecordT:
        """Parse one Kafka value into a record; ``topic`` only enriches the error message."""
        if data is None:
            raise ContractError(self.name, "the record has no value (a tombstone)", topic=topic)
        try:
            # Typed here, not through cast(): a function call per message is a cost on ticks.
            record: RecordT = _DECODER.decode(data)
        except msgspec.ValidationError as exc:
            raise ContractError(
                self.name, f"does not match the contract: {exc}", topic=topic
            ) from exc
        except msgspec.DecodeError as exc:
            raise ContractError(self.name, f"not valid JSON: {exc}", topic=topic) from exc
        except UnicodeDecodeError as exc:
            raise ContractError(self.name, f"not valid UTF-8: {exc}", topic=topic) from exc
        except (ValueError, TypeError, ArithmeticError) as exc:
            # A validator that raised something msgspec does not wrap; still a bad payload.
            raise ContractError(self.name, f"invalid value: {exc!r}", topic=topic) from exc
        if not isinstance(record, self.record_types):
            raise ContractError(
                self.name, f"a {type(record).__name__} record does not belong here", topic=topic
            )
        return record


TICKS: Codec[Tick] = Codec("tick", (Tick,))
CONFLATED_PRICES: Codec[ConflatedPrice] = Codec("conflated price", (ConflatedPrice,))
ORDER_COMMANDS: Codec[OrderCommand] = Codec(
    "order command", (NewOrder, CancelOrder, OrderStatusRequest)
)
EXECUTION_REPORTS: Codec[ExecutionReport] = Codec("execution report", (ExecutionReport,))
DEAD_LETTERS: Codec[DeadLetter] = Codec("dead letter", (DeadLetter,))


def encode(record: AnyRecord) -> bytes:
    """Return the JSON bytes of any record (prefer a topic's codec, which checks the type)."""
    return _ENCODER.encode(record)


def codecs_by_topic(settings: Settings) -> dict[str, Codec[Any]]:
    """Map every topic name in ``settings``, dead-letter topics included, to its codec."""
    sources: dict[str, Codec[Any]] = {
        settings.topic_ticks: TICKS,
        settings.topic_conflated: CONFLATED_PRICES,
        settings.topic_orders: ORDER_COMMANDS,
        settings.topic_execution_reports: EXECUTION_REPORTS,
    }
    dead: dict[str, Codec[Any]] = {settings.dlq_topic(topic): DEAD_LETTERS for topic in sources}
    return sources | dead


def codec_for_topic(settings: Settings, topic: str) -> Codec[Any]:
    """Return the codec of ``topic``; raise ContractError if no contract covers it."""
    codec = codecs_by_topic(settings).get(topic)
    if codec is None:
        raise ContractError("?", "no contract is registered for this topic", topic=topic)
    return codec
