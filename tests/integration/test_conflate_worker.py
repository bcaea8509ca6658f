"""The conflate agent in a real worker process against the real Kafka and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from core.contracts import CONFLATED_PRICES, TICKS, ConflatedPrice, Tick
from core.settings import Settings
from tests.integration.test_candles_worker import group_assignment
from tests.integration.tick_agents_support import (
    NS_PER_S,
    T0_NS,
    WAIT_S,
    WorkerTopics,
    running_workers,
    seed_symbols,
    wait_until,
    worker_topics,
)

pytestmark = pytest.mark.integration

RATE_PER_S = 1_000
DURATION_S = 4
STEP_MS = 10  # ticks are sent in bursts of RATE_PER_S * STEP_MS / 1000 every STEP_MS
UPDATES_PER_S_MAX = 5
OVERLAP = "is overlapping"  # Faust's timer, when one run outlasts its interval


@pytest.fixture
def names(running_stack: Settings, new_topic: Callable[[int], str]) -> Iterator[WorkerTopics]:
    with worker_topics(running_stack, new_topic, 2) as topics:
        yield topics


def ticks_at_rate(settings: Settings, topic: str) -> list[Tick]:
    """Send 1,000 ticks/s of ACME for a few seconds, every 50th one older than the one before."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1})
    sent: list[Tick] = []
    per_step = RATE_PER_S * STEP_MS // 1000
    start = time.monotonic()
    for step in range(DURATION_S * 1000 // STEP_MS):
        for i in range(per_step):
            n = step * per_step + i + 1
            # An out-of-order print: exchange time and sequence before the previous tick's.
            older = n % 50 == 0
            tick = Tick(
                symbol="ACME",
                price=Decimal(1000 + n % 97) / 10,
                size=1 + n % 7,
                ts_event_ns=T0_NS + (n - 2 if older else n) * 1_000_000,
                seq=n - 2 if older else n,
            )
            producer.produce(topic, key=b"ACME", value=TICKS.encode(tick))
            sent.append(tick)
        producer.poll(0)
        time.sleep(max(0.0, start + (step + 1) * STEP_MS / 1000 - time.monotonic()))
    assert producer.flush(30) == 0
    return sent


def read_conflated(settings: Settings, topic: str, last: Tick) -> list[ConflatedPrice]:
    """Read md.conflated until the update for ``last`` arrives (fails on timeout)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    prices: list[ConflatedPrice] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline and not (prices and prices[-1].seq == last.seq):
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                prices.append(CONFLATED_PRICES.decode(message.value()))
    finally:
        consumer.close()
    return prices


def test_conflated_prices_are_the_latest_at_most_five_per_second(
    running_stack: Settings, db_dsn: str, names: WorkerTopics, tmp_path: Path
) -> None:
    seed_symbols(db_dsn)
    with running_workers(running_stack, db_dsn, names, tmp_path) as workers:
        group = workers.ticks_group
        wait_until(
            lambda: sum(len(a) for a in group_assignment(running_stack, group, names.ticks)) == 2,
            "the worker to own the ticks partitions",
        )
        sent = ticks_at_rate(running_stack, names.ticks)
        last = max(sent, key=lambda t: (t.ts_event_ns, t.seq))
        prices = read_conflated(running_stack, names.conflated, last)
        # Quiet for two more intervals: nothing after the last tick's update.
        time.sleep(0.5)
        with psycopg.connect(db_dsn) as conn:
            row = conn.execute(
                "SELECT price, extract(epoch FROM ts_event) * 1000000 FROM last_prices"
                " WHERE symbol = 'ACME'"
            ).fetchone()
        logs = workers.logs()
    assert prices, "no conflated price at all"
    # The flush fits its timer's interval (streams/conflate_flush.py): Faust never warns.
    assert OVERLAP not in logs
    final = prices[-1]
    assert (final.price, final.size, final.ts_event_ns, final.seq) == (
        last.price,
        last.size,
        last.ts_event_ns,
        last.seq,
    )
    # Never a stale price after a newer one.
    keys = [(p.ts_event_ns, p.seq) for p in prices]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # At most five updates in any one-second window of the agent's clock.
    emitted = [p.ts_conflated_ns for p in prices]
    for i, t in enumerate(emitted):
        assert sum(1 for u in emitted[i:] if u < t + NS_PER_S) <= UPDATES_PER_S_MAX
    assert len(prices) >= DURATION_S  # it does publish, about four a second
    assert row is not None and row[0] == last.price
    assert int(row[1]) == last.ts_event_ns // 1000
