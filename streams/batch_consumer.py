"""Batch agents: a topic read in batches straight from aiokafka, below Faust's per-event delivery.

Why: profiled (py-spy) on the candles + conflate agents, a Faust worker spent its time in the
per-event path (Message -> Event -> queue -> Stream iterator -> ack, once per agent) and moved
~3-4k ticks/s, while an aiokafka ``getmany`` loop on the same topic drains ~300k/s. A batch
agent pays per batch instead: one ``getmany``, one decode per message, every handler of the
topic called once with the whole batch.

What stays as with a Faust agent:
- it runs inside the one Faust app, in the worker process, as an app task: started and stopped
  with the worker; a handler error that is not the message's fault crashes the worker;
- the workers share the partitions through one Kafka consumer group per topic
  (``<streams_app_id>.<topic>``, see ``group_id``; Faust's own group is the app id), so N
  workers scale by partition;
- offsets are committed only after every handler has finished the batch (at least once), at
  most every ``streams_commit_interval_ms``, when partitions are revoked and when the worker
  stops; a batch in flight at a crash is delivered again. With ``in_flight`` > 1 the next
  batches are fetched and handed over before the earlier ones finish (the handler orders its
  own effects); a batch's offsets are still marked done only once it and every batch before it
  finished;
- exactly-once effects stay in PostgreSQL: candles remember the last applied offset per
  partition (streams/candle_store.py), settlement is keyed by the exec id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from core.settings import Settings

log = logging.getLogger(__name__)

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
BatchHandler = Callable[[Records], Awaitable[None]]
RevokedHook = Callable[[], None]


def group_id(app_id: str, topic: str) -> str:
    """The consumer group in which the workers of Faust app ``app_id`` share ``topic``."""
    return f"{app_id}.{topic}"


@dataclass
class BatchConsumer:
    """One topic's consumer in a worker: fetch a batch, hand it over, commit what is done."""

    settings: Settings
    topic: str
    handle: BatchHandler
    on_revoked: RevokedHook | None = None
    # Records per fetched batch; 0 means settings.streams_batch_max.
    batch_max: int = 0
    # Batches handed over and not finished yet, at most: 1 waits for each batch before the next.
    in_flight: int = 1
    # Next offset to commit per partition: everything before it went through every handler.
    done: dict[TopicPartition, int] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None
    _committed_at: float = 0.0

    def lag(self) -> int:
        """Messages of assigned partitions not yet through the handlers (0 before the start)."""
        consumer = self._consumer
        if consumer is None:
            return 0
        total = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                total += max(0, highwater - self.done.get(tp, 0))
        return total

    async def run(self) -> None:
        """Consume until cancelled; commit what was handled on the way out."""
        settings = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=group_id(settings.streams_app_id, self.topic),
            client_id=f"{settings.streams_app_id}-{self.topic}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        consumer.subscribe(topics=[self.topic], listener=_Listener(self))
        await consumer.start()
        self._consumer = consumer
        try:
            await self._loop(consumer)
        finally:
            try:
                await self.commit(force=True)
            finally:
                self._consumer = None
                await consumer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        within_ms = self.settings.streams_batch_within_ms
        batch_max = self.batch_max or self.settings.streams_batch_max
        pending: deque[tuple[asyncio.Task[None], Records]] = deque()
        try:
            while True:
                records = await consumer.getmany(timeout_ms=within_ms, max_records=batch_max)
                if records:
                    pending.append((asyncio.ensure_future(self.handle(records)), records))
                # In order: the oldest batch first, and always once the pipeline is full.
                while pending and (len(pending) >= self.in_flight or pending[0][0].done()):
                    task, handled = pending.popleft()
                    await task
                    for tp, messages in handled.items():
                        self.done[tp] = messages[-1].offset + 1
                await self.commit()
        finally:
            # Stopping or failing: batches still in flight are not marked done (they are
            # delivered again); let none of them write on after the consumer is gone.
            for task, _ in pending:
                task.cancel()
            for task, _ in pending:
                with contextlib.suppress(BaseException):
                    await task

    async def commit(self, *, force: bool = False) -> None:
        """Commit the handled offsets when the commit interval has passed (or ``force``)."""
        consumer = self._consumer
        now = time.monotonic()
        interval_s = self.settings.streams_commit_interval_ms / 1000
        due = force or now - self._committed_at >= interval_s
        if consumer is None or not self.done or not due:
            return
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in self.done.items() if tp in assigned}
        self._committed_at = now
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The group moved on (a rebalance): the next owner replays from the last commit,
            # and the effects of a replay are idempotent. Nothing is lost.
            log.warning("%s: offsets not committed (%s)", self.topic, exc)

    async def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Before partitions move: commit what is done, forget their offsets, tell the agents."""
        await self.commit(force=True)
        for tp in partitions:
            self.done.pop(tp, None)
        if self.on_revoked is not None:
            self.on_revoked()


async def run_or_crash(
    consumer: BatchConsumer, crash: Callable[[BaseException], Awaitable[None]], what: str
) -> None:
    """Run ``consumer``; a failure that is not a message's (a bug, Kafka refusing a dead letter)
    leaves the batch uncommitted and crashes the worker, so the next one replays the batch."""
    try:
        await consumer.run()
    except Exception as exc:
        log.critical("%s: batch failed; stopping the worker", what, exc_info=True)
        await crash(exc)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.owner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("%s: assigned %s", self.owner.topic, sorted(tp.partition for tp in assigned))
