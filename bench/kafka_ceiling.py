"""The stream ceiling: a bare confluent-kafka consumer reading N small messages as fast as it can.

The harness creates a topic of its own, fills it with a batched producer (its rate is kept as
information), checks that exactly N messages landed, reads them back from the beginning with
``consume`` batches, and deletes the topic. Every loop runs against a deadline.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.exceptions import BenchError
from bench.report import Ceiling, HostInfo, Result
from core.settings import Settings
from infra.topics import ADMIN_TIMEOUT_S, TopicSpec, ensure_topics

log = logging.getLogger(__name__)

# Producer batching: large batches, a short linger, a queue deep enough never to stall for long.
PRODUCER_CONFIG: dict[str, str | int] = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "compression.type": "none",
    "acks": "all",
}
# Consumer prefetch: librdkafka's defaults (1 MB per partition fetch, 100k queued messages) cap a
# bare consumer near a third of this on a 2-core machine; a ceiling is the best the client reaches.
CONSUMER_CONFIG: dict[str, str | int] = {
    "queued.min.messages": 1_000_000,
    "max.partition.fetch.bytes": 8_000_000,
}
PRODUCE_POLL_EVERY = 10_000
BUFFER_FULL_WAIT_S = 0.05
CONSUME_TIMEOUT_S = 1.0
METADATA_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class KafkaLoad:
    """How much to push through: message count and size, partitions, batch, time limit."""

    messages: int
    message_bytes: int = 100
    partitions: int = 12
    consume_batch: int = 10_000
    deadline_s: float = 900.0

    def __post_init__(self) -> None:
        if min(self.messages, self.message_bytes, self.partitions, self.consume_batch) < 1:
            raise ValueError(f"every Kafka load figure must be positive: {self}")


@dataclass(frozen=True)
class Throughput:
    """Messages and bytes moved in a measured time."""

    messages: int
    bytes_total: int
    duration_s: float

    @property
    def msgs_per_s(self) -> float:
        """Messages per second."""
        return self.messages / self.duration_s

    @property
    def mb_per_s(self) -> float:
        """Megabytes (10^6 bytes) of payload per second."""
        return self.bytes_total / 1e6 / self.duration_s


@contextmanager
def bench_topic(settings: Settings, partitions: int) -> Iterator[str]:
    """A fresh topic for one measurement, deleted afterwards. Yields its name."""
    name = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [TopicSpec(name, partitions)])
    try:
        yield name
    finally:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for future in admin.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S).values():
            future.result()


def _check_deadline(deadline: float, step: str, done: int, total: int) -> None:
    if time.monotonic() > deadline:
        raise BenchError(f"{step} missed its deadline after {done:_} of {total:_} messages")


def produce(settings: Settings, topic: str, load: KafkaLoad, deadline: float) -> Throughput:
    """Write ``load.messages`` fixed-size messages without keys; time it up to the final flush."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, **PRODUCER_CONFIG})
    payload = (b"0123456789" * (load.message_bytes // 10 + 1))[: load.message_bytes]
    sent = 0
    start = time.perf_counter()
    while sent < load.messages:
        try:
            producer.produce(topic, payload)
        except BufferError:
            # The local queue is full: serve delivery reports until librdkafka has room.
            producer.poll(BUFFER_FULL_WAIT_S)
            _check_deadline(deadline, "produce", sent, load.messages)
            continue
        sent += 1
        if sent % PRODUCE_POLL_EVERY == 0:
            producer.poll(0)
            _check_deadline(deadline, "produce", sent, load.messages)
    unsent = producer.flush(max(0.0, deadline - time.monotonic()))
    if unsent:
        raise BenchError(f"produce: {unsent:_} messages still queued at the deadline")
    duration_s = time.perf_counter() - start
    return Throughput(sent, sent * load.message_bytes, duration_s)


def _messages_on_topic(consumer: Consumer, topic: str, partitions: int) -> int:
    total = 0
    for partition in range(partitions):
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S
        )
        total += high - low
    return int(total)


def consume(settings: Settings, topic: str, load: KafkaLoad, deadline: float) -> Throughput:
    """Read every message of ``topic`` from the beginning in batches; count messages and bytes."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **CONSUMER_CONFIG,
        }
    )
    try:
        on_topic = _messages_on_topic(consumer, topic, load.partitions)
        if on_topic != load.messages:
            raise BenchError(f"topic {topic} holds {on_topic:_} messages, not {load.messages:_}")
        count = bytes_total = 0
        start = time.perf_counter()
        # Assigned, not subscribed: no group rebalance in the measured time.
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(load.partitions)]
        )
        while count < load.messages:
            _check_deadline(deadline, "consume", count, load.messages)
            for message in consumer.consume(
                num_messages=load.consume_batch, timeout=CONSUME_TIMEOUT_S
            ):
                error = message.error()
                if error is not None:
                    raise BenchError(f"consume: {error}")
                count += 1
                bytes_total += len(message.value() or b"")
        duration_s = time.perf_counter() - start
    finally:
        consumer.close()
    return Throughput(count, bytes_total, duration_s)


def measure(settings: Settings, host: HostInfo, load: KafkaLoad) -> Ceiling:
    """Fill a fresh topic, then time a raw consumer reading all of it; the ceiling is msgs/s."""
    deadline = time.monotonic() + load.deadline_s
    with bench_topic(settings, load.partitions) as topic:
        produced = produce(settings, topic, load, deadline)
        log.info("produced %d messages at %.0f msgs/s", produced.messages, produced.msgs_per_s)
        consumed = consume(settings, topic, load, deadline)
    conditions: dict[str, str | int] = {
        "messages": load.messages,
        "message_bytes": load.message_bytes,
        "partitions": load.partitions,
        "consume_batch": load.consume_batch,
        "consumer": "assign-from-beginning-no-commit",
        "consumer_queued_min_messages": CONSUMER_CONFIG["queued.min.messages"],
        "consumer_partition_fetch_bytes": CONSUMER_CONFIG["max.partition.fetch.bytes"],
        "producer_linger_ms": PRODUCER_CONFIG["linger.ms"],
        "producer_batch_bytes": PRODUCER_CONFIG["batch.size"],
        "producer_acks": PRODUCER_CONFIG["acks"],
    }
    details: dict[str, int | float] = {
        "messages_read": consumed.messages,
        "bytes_read": consumed.bytes_total,
        "duration_s": round(consumed.duration_s, 3),
        "mb_per_s": round(consumed.mb_per_s, 2),
        "producer_msgs_per_s": round(produced.msgs_per_s),
        "producer_duration_s": round(produced.duration_s, 3),
    }
    return Result.now("kafka.consume", consumed.msgs_per_s, "msgs/s", conditions, host, details)
