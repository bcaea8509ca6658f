"""Ticks/s the simulator's feed sustains into Kafka, beside a raw confluent-kafka producer.

For each worker count the simulator's own ``Feed`` (fixbridge.simulator.feed: price walk, ``Tick``
records, one producer per process) runs flat out: its target rate is set far above what it can
reach, so every slice is behind and publishes as fast as it can. The ceiling is the same number of
processes running a bare produce loop: a pre-encoded tick of the same size, the same keys
(symbols, round robin), the same producer settings (``market_data.producer_config``: linger,
batch, acks, compression), onto a fresh topic made like ``md.ticks``.

Both are measured the same way: what landed on the broker (the sum of the partitions' high
watermarks) over a window after a warm-up, so process start-up and the final flush count for
neither. The issue's goal is 200k ticks/s.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.exceptions import BenchError
from bench.report import Ceiling, HostInfo, Result, Row, against_ceilings
from core.contracts import TICKS, Tick
from core.settings import Settings
from fixbridge.simulator.feed import Feed, PriceBoard
from fixbridge.simulator.market_data import producer_config
from fixbridge.simulator.universe import build_universe
from infra.topics import ADMIN_TIMEOUT_S, TopicSpec, ensure_topics

log = logging.getLogger(__name__)

GOAL_TICKS_PER_S = 200_000
FLAT_OUT_RATE_PER_S = 5_000_000  # the most the settings allow: far above what a feed reaches
FIRST_TICK_TIMEOUT_S = 60.0  # spawned processes import the project before their first tick
WATERMARK_TIMEOUT_S = 10.0
WATERMARK_RETRIES_MAX = 200  # 10 s of a partition without a leader
SAMPLE_INTERVAL_S = 0.05
RAW_POLL_EVERY = 5_000
RAW_BUFFER_FULL_WAIT_S = 0.05
PROCESS_STOP_S = 30.0
_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class TickLoad:
    """Worker counts to measure, the warm-up and the measured window."""

    workers: tuple[int, ...] = (1, 2)
    duration_s: float = 10.0
    warmup_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.workers or min(self.workers) < 1 or self.duration_s <= 0:
            raise ValueError(f"workers and duration must be positive: {self}")
        if self.warmup_s < 0:
            raise ValueError(f"the warm-up cannot be negative: {self}")


@dataclass(frozen=True)
class Landed:
    """Messages that reached the broker in a measured window."""

    messages: int
    window_s: float
    total: int

    @property
    def per_s(self) -> float:
        """Messages per second over the window."""
        return self.messages / self.window_s


@contextmanager
def tick_topic(settings: Settings) -> Iterator[str]:
    """A fresh topic configured like ``md.ticks`` (partitions, retention); deleted afterwards."""
    name = f"bench.ticks.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(
        name, settings.partitions_ticks, {"retention.ms": str(settings.retention_ticks_ms)}
    )
    ensure_topics(settings, [spec])
    try:
        yield name
    finally:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for future in admin.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S).values():
            future.result()


class Watermarks:
    """Counts the messages on a fresh topic: the sum of its partitions' high watermarks."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4()}"}
        )
        self._partitions = [TopicPartition(topic, p) for p in range(settings.partitions_ticks)]

    def count(self) -> int:
        """Messages on the topic now (asked of the broker, not cached)."""
        last: KafkaException | None = None
        for _ in range(WATERMARK_RETRIES_MAX):
            try:
                return sum(self._high(tp) for tp in self._partitions)
            except KafkaException as exc:
                # A fresh topic's partitions may have no leader yet (NOT_LEADER_FOR_PARTITION,
                # not flagged retriable by the client): ask again, a bounded number of times.
                last = exc
                time.sleep(SAMPLE_INTERVAL_S)
        raise BenchError(f"no watermarks after {WATERMARK_RETRIES_MAX} tries: {last}")

    def _high(self, tp: TopicPartition) -> int:
        _low, high = self._consumer.get_watermark_offsets(
            tp, timeout=WATERMARK_TIMEOUT_S, cached=False
        )
        return int(high)

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()


def measure_window(
    watermarks: Watermarks, load: TickLoad, alive: Callable[[], bool], what: str
) -> Landed:
    """Wait for the first message, warm up, then count what lands during ``duration_s``."""
    deadline = time.monotonic() + FIRST_TICK_TIMEOUT_S
    while watermarks.count() == 0:
        if not alive():
            raise BenchError(f"{what}: a producer process died before its first message")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: nothing landed within {FIRST_TICK_TIMEOUT_S}s")
        time.sleep(SAMPLE_INTERVAL_S)
    time.sleep(load.warmup_s)
    start_count, start = watermarks.count(), time.monotonic()
    time.sleep(load.duration_s)
    end_count, end = watermarks.count(), time.monotonic()
    if not alive():
        raise BenchError(f"{what}: a producer process died during the measurement")
    return Landed(end_count - start_count, end - start, end_count)


# The simulator's feed.


def feed_settings(settings: Settings, topic: str, workers: int) -> Settings:
    """The simulator's settings for a flat-out feed of ``workers`` processes onto ``topic``."""
    return settings.model_copy(
        update={
            "topic_ticks": topic,
            "sim_tick_workers": workers,
            "sim_tick_rate_per_s": FLAT_OUT_RATE_PER_S,
            "sim_open_burst_s": 0.0,
        }
    )


def measure_feed(settings: Settings, workers: int, load: TickLoad) -> Landed:
    """Run the simulator's feed with ``workers`` processes on a fresh topic; count what lands."""
    with tick_topic(settings) as topic:
        sim = feed_settings(settings, topic, workers)
        feed = Feed(sim, PriceBoard(build_universe(sim.sim_symbols_count)))
        watermarks = Watermarks(settings, topic)
        feed.start()
        try:
            return measure_window(watermarks, load, feed.alive, f"feed x{workers}")
        finally:
            feed.stop()
            watermarks.close()


# The raw producer ceiling.


def sample_tick_value() -> bytes:
    """An encoded tick of typical size: the raw producer's pre-encoded value."""
    tick = Tick(
        symbol="ACME",
        price=Decimal("1520.40"),
        size=250,
        ts_event_ns=time.time_ns(),
        seq=123_456,
    )
    return TICKS.encode(tick)


def _raw_producer_main(settings: Settings, topic: str, keys: Sequence[bytes], stop: Any) -> None:
    """Produce one pre-encoded value, round robin over ``keys``, until ``stop`` is set."""
    config = producer_config(settings) | {
        "delivery.report.only.error": True,
        "client.id": "bench.raw-producer",
    }
    producer = Producer(config)
    value = sample_tick_value()
    produce, poll, count = producer.produce, producer.poll, len(keys)
    index = 0
    while not stop.is_set():
        for _ in range(RAW_POLL_EVERY):
            try:
                produce(topic, value, keys[index])
            except BufferError:
                poll(RAW_BUFFER_FULL_WAIT_S)
                continue
            index = 0 if index == count - 1 else index + 1
        poll(0)
    producer.flush(settings.shutdown_timeout_s)


def measure_raw(settings: Settings, processes: int, load: TickLoad) -> Landed:
    """``processes`` bare produce loops on a fresh topic; count what lands."""
    keys = [i.symbol.encode() for i in build_universe(settings.sim_symbols_count)]
    with tick_topic(settings) as topic:
        stop = _SPAWN.Event()
        children = [
            _SPAWN.Process(
                target=_raw_producer_main,
                args=(settings, topic, keys[n::processes], stop),
                name=f"raw-producer-{n}",
                daemon=True,
            )
            for n in range(processes)
        ]
        watermarks = Watermarks(settings, topic)
        for child in children:
            child.start()
        try:
            return measure_window(
                watermarks,
                load,
                lambda: all(c.is_alive() for c in children),
                f"raw producer x{processes}",
            )
        finally:
            stop.set()
            for child in children:
                child.join(PROCESS_STOP_S)
                if child.is_alive():
                    child.terminate()
                    child.join(PROCESS_STOP_S)
            watermarks.close()


# Results.


def _conditions(settings: Settings, processes: int, load: TickLoad) -> dict[str, str | int]:
    config = producer_config(settings)
    return {
        "processes": processes,
        "symbols": settings.sim_symbols_count,
        "message_bytes": len(sample_tick_value()),
        "partitions": settings.partitions_ticks,
        "linger_ms": settings.sim_producer_linger_ms,
        "batch_messages": settings.sim_producer_batch_messages,
        "acks": str(config["acks"]),
        "compression": str(config["compression.type"]),
        "warmup_s": int(load.warmup_s) if load.warmup_s.is_integer() else str(load.warmup_s),
        "window": "broker high watermarks after warm-up",
    }


def _details(landed: Landed) -> dict[str, int | float]:
    return {
        "ticks_in_window": landed.messages,
        "window_s": round(landed.window_s, 3),
        "ticks_total": landed.total,
    }


def measure(settings: Settings, host: HostInfo, load: TickLoad) -> list[Row]:
    """Per worker count: the raw producer ceiling, then the simulator's feed beside it."""
    rows: list[Row] = []
    for workers in load.workers:
        raw = measure_raw(settings, workers, load)
        log.info("raw producer x%d: %.0f msgs/s", workers, raw.per_s)
        feed = measure_feed(settings, workers, load)
        log.info("simulator feed x%d: %.0f ticks/s", workers, feed.per_s)
        conditions = _conditions(settings, workers, load)
        ceiling: Ceiling = Result.now(
            f"kafka.produce.x{workers}",
            raw.per_s,
            "ticks/s",
            conditions | {"producer": "pre-encoded value, round-robin symbol keys"},
            host,
            _details(raw),
        )
        result = Result.now(
            f"sim.ticks.x{workers}",
            feed.per_s,
            "ticks/s",
            conditions | {"feed": "fixbridge.simulator.feed flat out", "goal": GOAL_TICKS_PER_S},
            host,
            _details(feed),
        )
        rows += [Row(ceiling), Row(result, ceiling)]
    return rows


def goals(rows: Sequence[Row]) -> list[str]:
    """One line per feed row: its ticks/s against the issue's 200k ticks/s goal."""
    lines = []
    for result, ceiling, ratio in against_ceilings(rows):
        verdict = "met" if result.value >= GOAL_TICKS_PER_S else "NOT met"
        lines.append(
            f"{result.name}: {result.value:,.0f} ticks/s, goal {GOAL_TICKS_PER_S:,}"
            f" {verdict} (ratio {ratio:.2f} to {ceiling.name})"
        )
    return lines
