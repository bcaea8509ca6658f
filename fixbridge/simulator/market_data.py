"""The tick firehose: moves prices and publishes ``Tick`` records to ``md.ticks`` (key = symbol).

The publisher wakes every ``sim_tick_interval_ms``, works out how many ticks are due since it
last woke (the rate, times the burst multiplier during the "market open" surge), and produces them
in one go, round-robin over the symbols, leaving batching to librdkafka (linger, large batches).
After each slice it hands the latest price of every symbol it moved to ``on_moved`` (the
simulator writes them to a shared price board, which is how resting limit orders see the market).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Producer

from core.contracts import TICKS, Tick
from core.settings import Settings
from fixbridge.simulator.prices import PriceWalk, dt_years_per_tick
from fixbridge.simulator.universe import Instrument

log = logging.getLogger(__name__)

# Told after each slice which instruments moved: local index -> price in ticks.
MovedListener = Callable[[dict[int, int]], None]
POLL_EVERY = 5_000  # serve delivery callbacks this often within a slice
BUFFER_FULL_WAIT_S = 0.05
BUFFER_FULL_RETRIES_MAX = 200  # 10 s of a full queue and the slice gives up its remaining ticks
# A slow wake-up must not turn into an unbounded catch-up burst.
CATCH_UP_SLICES_MAX = 10


def rate_plan(settings: Settings, shards: int = 1) -> RatePlan:
    """The rate of one of ``shards`` publishers sharing the configured rate equally."""
    return RatePlan(
        settings.sim_tick_rate_per_s / shards,
        settings.sim_open_burst_multiplier,
        settings.sim_open_burst_s,
    )


def producer_config(settings: Settings) -> dict[str, object]:
    """A batching, thread-safe confluent-kafka producer's settings for the firehose."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "linger.ms": settings.sim_producer_linger_ms,
        "batch.num.messages": settings.sim_producer_batch_messages,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": settings.sim_producer_queue_messages_max,
        "queue.buffering.max.kbytes": 1_048_576,
        # Every producer waits for the in-sync copies, ticks too: a node's death then loses
        # nothing acknowledged, and idempotence keeps a retried batch from doubling ticks.
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "client.id": "exchange-simulator.ticks",
    }


@dataclass(frozen=True, slots=True)
class RatePlan:
    """How many ticks per second are due at a moment since start: base, or base x burst."""

    rate_per_s: float
    burst_multiplier: float = 1.0
    burst_s: float = 0.0

    def rate_at(self, elapsed_s: float) -> float:
        """The tick rate ``elapsed_s`` seconds after the start."""
        if elapsed_s < self.burst_s:
            return self.rate_per_s * self.burst_multiplier
        return self.rate_per_s


class TickPublisher:
    """Owns the price walk's writes, the per-symbol sequence numbers and the Kafka producer."""

    def __init__(
        self,
        settings: Settings,
        instruments: Sequence[Instrument],
        walk: PriceWalk,
        *,
        plan: RatePlan,
        on_moved: MovedListener | None = None,
        producer: Producer | None = None,
    ) -> None:
        self._settings = settings
        self._topic = settings.topic_ticks
        self._symbols = [i.symbol for i in instruments]
        self._keys = [s.encode() for s in self._symbols]
        self._walk = walk
        self._on_moved = on_moved
        if producer is None:
            # One delivery callback for the producer, called for failures only: a per-message
            # callback costs as much as the produce call itself.
            config = producer_config(settings) | {
                "delivery.report.only.error": True,
                "on_delivery": self._delivered,
            }
            producer = Producer(config)
        self._producer = producer
        self._sizes = random.Random(settings.sim_seed + 1)  # noqa: S311 - a simulation
        self._seq = [0] * len(self._symbols)
        self._cursor = 0
        self._time_scale = settings.sim_time_scale
        self.ticks_sent = 0
        self.delivery_errors = 0
        self.plan = plan

    def publish(self, count: int, rate_per_s: float) -> int:
        """Move and produce ``count`` ticks (round-robin); return how many were produced."""
        walk, symbols, keys, seq = self._walk, self._symbols, self._keys, self._seq
        walk.set_dt(dt_years_per_tick(len(symbols), rate_per_s, self._time_scale))
        # Locals, not attribute look-ups: this loop is the firehose.
        step, tick_sizes, random01 = walk.step, walk.tick_sizes, self._sizes.random
        produce, topic, encode = self._producer.produce, self._topic, TICKS.encode
        size_max, last = self._settings.sim_tick_size_max, len(symbols) - 1
        moved: dict[int, int] = {}
        index = self._cursor
        sent = 0
        now_ns = time.time_ns()
        for n in range(count):
            ticks = step(index)
            moved[index] = ticks
            tick = Tick(
                symbol=symbols[index],
                price=ticks * tick_sizes[index],
                size=int(random01() * size_max) + 1,
                ts_event_ns=now_ns + n,  # unique and ordered within the slice
                seq=seq[index],
            )
            try:
                produce(topic, encode(tick), keys[index])
            except BufferError:
                if not self._produce_when_room(topic, encode(tick), keys[index]):
                    break
            seq[index] += 1
            sent += 1
            index = 0 if index == last else index + 1
            if sent % POLL_EVERY == 0:
                self._producer.poll(0)
        self._cursor = index
        self._producer.poll(0)
        self.ticks_sent += sent
        if self._on_moved is not None and moved:
            self._on_moved(moved)
        return sent

    def _produce_when_room(self, topic: str, value: bytes, key: bytes) -> bool:
        for _ in range(BUFFER_FULL_RETRIES_MAX):
            # librdkafka's queue is full: serve deliveries until it has room.
            self._producer.poll(BUFFER_FULL_WAIT_S)
            try:
                self._producer.produce(topic, value, key)
                return True
            except BufferError:
                continue
        log.warning("the producer queue stayed full; dropping the rest of this slice")
        return False

    def _delivered(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self.delivery_errors += 1
            if self.delivery_errors <= 10 or self.delivery_errors % 10_000 == 0:
                log.warning("tick delivery failed (%d so far): %s", self.delivery_errors, error)

    def run(self, stop: threading.Event) -> None:
        """Publish at the planned rate until ``stop`` is set; then flush what is queued."""
        interval_s = self._settings.sim_tick_interval_ms / 1000
        start = last = time.monotonic()
        credit = 0.0
        log.info(
            "publishing ticks of %d symbols to %s at %s/s (x%s for the first %ss)",
            len(self._symbols),
            self._topic,
            self.plan.rate_per_s,
            self.plan.burst_multiplier,
            self.plan.burst_s,
        )
        while not stop.wait(max(0.0, last + interval_s - time.monotonic())):
            now = time.monotonic()
            rate = self.plan.rate_at(now - start)
            elapsed_s = min(now - last, interval_s * CATCH_UP_SLICES_MAX)
            last = now
            credit += rate * elapsed_s
            due = int(credit)
            credit -= due
            if due:
                self.publish(due, rate)
            else:
                self._producer.poll(0)
        self.flush()

    def flush(self) -> int:
        """Deliver what is queued, bounded by the shutdown timeout; return what is left."""
        left = int(self._producer.flush(self._settings.shutdown_timeout_s))
        if left:
            log.warning("%d ticks were still queued at shutdown", left)
        return left
