"""Dead letters on ``<topic>.dlq``: a record a consumer could not handle, kept byte for byte.

``key`` and ``value`` are ``bytes`` in Python and base64 strings (RFC 4648, with padding) in the
JSON, so any payload survives exactly, including bytes that are not UTF-8. Kafka key = the
source record's key.
"""

from __future__ import annotations

import time
from typing import Protocol

from core.contracts._wire import Record, check, check_int, check_text

ERROR_LEN_MAX = 4096
CONSUMER_LEN_MAX = 256


class DeadLetter(Record, frozen=True, kw_only=True, tag="dead_letter.v1"):
    """A source record that failed, where it came from, and why."""

    source_topic: str
    partition: int
    offset: int
    key: bytes | None  # the source record's key, exactly
    value: bytes | None  # the source record's value, exactly (None for a tombstone)
    error: str  # the error message, at most ERROR_LEN_MAX characters
    error_type: str  # the error's class, e.g. "ContractError"
    ts_failed_ns: int
    consumer: str  # the agent or consumer group that gave up on the record

    def __post_init__(self) -> None:
        check_text(self.source_topic, "source_topic", 249)  # Kafka's topic name limit
        check_int(self.partition, "partition", -1)  # -1: the partition was not known
        check(type(self.offset) is int, f"offset must be an int, got {self.offset!r}")
        check(type(self.key) in (bytes, type(None)), "key must be bytes or None")
        check(type(self.value) in (bytes, type(None)), "value must be bytes or None")
        check(type(self.error) is str, "error must be a str")
        check(len(self.error) <= ERROR_LEN_MAX, f"error must be at most {ERROR_LEN_MAX} chars")
        check_text(self.error_type, "error_type", CONSUMER_LEN_MAX)
        check_int(self.ts_failed_ns, "ts_failed_ns", 1)
        check_text(self.consumer, "consumer", CONSUMER_LEN_MAX)

    def kafka_key(self) -> bytes | None:
        """The Kafka key of this record: the source record's key."""
        return self.key


class RawMessage(Protocol):
    """What a consumed Kafka message offers (``confluent_kafka.Message`` fits)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...


def dead_letter(
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: BaseException,
    consumer: str,
    ts_failed_ns: int | None = None,
) -> DeadLetter:
    """Build the dead letter of a raw record that failed with ``error``."""
    return DeadLetter(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key=None if key is None else bytes(key),
        value=None if value is None else bytes(value),
        error=str(error)[:ERROR_LEN_MAX],
        error_type=type(error).__qualname__[:CONSUMER_LEN_MAX],
        ts_failed_ns=time.time_ns() if ts_failed_ns is None else ts_failed_ns,
        consumer=consumer,
    )


def dead_letter_for(message: RawMessage, error: BaseException, consumer: str) -> DeadLetter:
    """Build the dead letter of a consumed Kafka message that failed with ``error``."""
    partition = message.partition()
    offset = message.offset()
    return dead_letter(
        source_topic=message.topic() or "?",
        partition=-1 if partition is None else partition,
        offset=-1 if offset is None else offset,
        key=_as_bytes(message.key()),
        value=_as_bytes(message.value()),
        error=error,
        consumer=consumer,
    )


def _as_bytes(data: str | bytes | None) -> bytes | None:
    # A consumer with a string deserializer hands back str; keep its UTF-8 bytes.
    if isinstance(data, str):
        return data.encode()
    return data
