"""BatchConsumer with batches in flight: handed over early, marked done only in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from core.settings import Settings
from streams.batch_consumer import BatchConsumer, Records

TP = TopicPartition("reports", 0)


def _records(first: int, count: int) -> Records:
    return {
        TP: [
            ConsumerRecord("reports", 0, first + i, 0, 0, None, b"v", None, 1, 1, [])
            for i in range(count)
        ]
    }


class _FakeKafka:
    """getmany hands out the given batches, then waits; commits are recorded."""

    def __init__(self, batches: list[Records]) -> None:
        self.batches = batches
        self.commits: list[dict[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> Records:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


def _consumer(handle: Any, in_flight: int) -> BatchConsumer:
    settings = Settings(streams_batch_within_ms=5, streams_commit_interval_ms=0)
    consumer = BatchConsumer(settings, "reports", handle, in_flight=in_flight)
    return consumer


async def _run_until(consumer: BatchConsumer, kafka: _FakeKafka, done: asyncio.Event) -> None:
    consumer._consumer = kafka
    loop = asyncio.ensure_future(consumer._loop(kafka))
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.05)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop


async def test_the_next_batch_starts_before_the_first_ends_and_offsets_advance_in_order() -> None:
    first_may_end = asyncio.Event()
    second_started = asyncio.Event()
    all_done = asyncio.Event()
    seen_done: list[dict[TopicPartition, int]] = []
    consumer: BatchConsumer

    async def handle(records: Records) -> None:
        first = records[TP][0].offset
        if first == 0:
            await first_may_end.wait()
        else:
            second_started.set()
            # The first batch is still running: nothing may be marked done yet.
            seen_done.append(dict(consumer.done))
            first_may_end.set()
            all_done.set()

    consumer = _consumer(handle, in_flight=2)
    kafka = _FakeKafka([_records(0, 3), _records(3, 2)])
    await _run_until(consumer, kafka, all_done)

    assert second_started.is_set()
    assert seen_done == [{}]
    assert consumer.done == {TP: 5}
    assert kafka.commits[-1] == {TP: 5}


async def test_with_one_in_flight_a_batch_waits_for_the_one_before() -> None:
    order: list[str] = []
    all_done = asyncio.Event()

    async def handle(records: Records) -> None:
        first = records[TP][0].offset
        order.append(f"start {first}")
        await asyncio.sleep(0.02)
        order.append(f"end {first}")
        if first == 3:
            all_done.set()

    consumer = _consumer(handle, in_flight=1)
    await _run_until(consumer, _FakeKafka([_records(0, 3), _records(3, 2)]), all_done)

    assert order == ["start 0", "end 0", "start 3", "end 3"]


async def test_a_failed_batch_stops_the_loop_and_the_batch_after_it_is_not_marked_done() -> None:
    later_cancelled = asyncio.Event()

    async def handle(records: Records) -> None:
        first = records[TP][0].offset
        if first == 0:
            await asyncio.sleep(0.05)
            raise RuntimeError("not the message's fault")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            later_cancelled.set()
            raise

    consumer = _consumer(handle, in_flight=2)
    kafka = _FakeKafka([_records(0, 3), _records(3, 2)])
    consumer._consumer = kafka

    with pytest.raises(RuntimeError, match="not the message's fault"):
        await asyncio.wait_for(consumer._loop(kafka), 5)

    assert later_cancelled.is_set()
    assert consumer.done == {}
    assert kafka.commits == []
