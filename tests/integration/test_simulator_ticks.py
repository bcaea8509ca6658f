"""The tick feed against the real Kafka: decodable ticks, keyed by symbol, with sane prices."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer

from core.contracts import TICKS
from core.money import is_on_tick
from core.settings import Settings
from fixbridge.simulator.feed import Feed, PriceBoard
from fixbridge.simulator.universe import build_universe

pytestmark = pytest.mark.integration

WAIT_S = 30.0


def _consume(
    settings: Settings, topic: str, count: int, keys_min: int
) -> list[tuple[bytes, bytes]]:
    # A consumer drains one partition's batch before another's, so the first N records need
    # not hold every symbol: read until both the count and the number of keys are reached.
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    out: list[tuple[bytes, bytes]] = []
    keys: set[bytes] = set()
    deadline = time.monotonic() + WAIT_S
    try:
        while (len(out) < count or len(keys) < keys_min) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                assert message.error() is None
                out.append((message.key() or b"", message.value() or b""))
                keys.add(message.key() or b"")
    finally:
        consumer.close()
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_ticks_reach_kafka_decodable_and_on_tick(
    running_stack: Settings, new_topic: Callable[[int], str], workers: int
) -> None:
    topic = new_topic(4)
    settings = running_stack.model_copy(
        update={
            "topic_ticks": topic,
            "sim_tick_rate_per_s": 5_000,
            "sim_tick_workers": workers,
            "sim_symbols_count": 60,
            "shutdown_timeout_s": 10.0,
        }
    )
    instruments = build_universe(60)
    board = PriceBoard(instruments)
    feed = Feed(settings, board)
    feed.start()
    try:
        records = _consume(settings, topic, 10_000, keys_min=60)
    finally:
        feed.stop()
    assert len(records) >= 10_000
    by_symbol = {i.symbol: i for i in instruments}
    seqs: dict[str, list[int]] = {}
    for key, value in records:
        tick = TICKS.decode(value)
        assert key == tick.symbol.encode()
        instrument = by_symbol[tick.symbol]
        assert tick.price > 0 and is_on_tick(tick.price, instrument.tick_size)
        # A sane walk: within a factor of two of the reference price after a few seconds.
        assert instrument.ref_price / 2 < tick.price < instrument.ref_price * 2
        seqs.setdefault(tick.symbol, []).append(tick.seq)
    assert len(seqs) == 60
    assert all(s == sorted(s) for s in seqs.values())  # per-symbol order kept by the key
    assert board.changed()  # the publishers wrote their prices where the engine reads them
