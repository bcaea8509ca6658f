"""The tick feed against the real Kafka: decodable ticks, keyed by symbol, with sane prices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from core.contracts import TICKS
from core.money import is_on_tick
from core.settings import PROJECT_ROOT, Settings, settings_env
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


# A simulator stand-in: starts the feed with publisher processes, then waits to be killed.
_FEED_HOLDER = """
import sys, time
from core.settings import get_settings
from fixbridge.simulator.feed import Feed, PriceBoard
from fixbridge.simulator.universe import build_universe
settings = get_settings()
feed = Feed(settings, PriceBoard(build_universe(settings.sim_symbols_count)))
feed.start()
print("started", flush=True)
time.sleep(600)
"""


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_tick_publisher_processes_stop_when_the_simulator_is_killed(
    running_stack: Settings, new_topic: Callable[[int], str]
) -> None:
    topic = new_topic(1)
    settings = running_stack.model_copy(
        update={
            "topic_ticks": topic,
            "sim_tick_workers": 2,
            "sim_symbols_count": 10,
            "sim_tick_rate_per_s": 1_000,
        }
    )
    env = {**os.environ, **settings_env(settings)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _FEED_HOLDER], env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"started"
        publishers = _children(holder.pid)
        assert len(publishers) >= 2, json.dumps(publishers)
        assert _consume(settings, topic, 100, keys_min=10)  # every publisher is publishing
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(WAIT_S)
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in publishers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in publishers if _running(pid)]
    finally:
        holder.kill()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "publisher processes outlived the killed simulator"
