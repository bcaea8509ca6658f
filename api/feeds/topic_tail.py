"""One topic read from its end by a thread of an API process: no group, nothing committed.

A confluent-kafka consumer with manual assignment of every partition at its end offset, so no
rebalances and every API process gets every message (each process serves its own clients).
Records are decoded in the thread and handed to the event loop in batches.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from core.settings import Settings

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 5.0
RETRY_BACKOFF_MS_MIN = 100

T = TypeVar("T")


class TopicTail(Generic[T]):
    """The consumer thread of one topic; started and stopped by the app's lifespan.

    The thread owns its consumer: it assigns the partitions (retrying while Kafka or
    PostgreSQL is away, so the API starts without them), runs ``on_assigned`` on the loop,
    sets ``ready``, then polls until stopped, passing ``decode(batch)`` to ``deliver`` on the
    loop, and closes the consumer itself.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        decode: Callable[[Sequence[Message]], list[T]],
        deliver: Callable[[list[T]], None],
        on_assigned: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._decode = decode
        self._deliver = deliver
        self._on_assigned = on_assigned
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        """Start the thread; ``ready`` is set once it reads the topic."""
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name=f"tail-{self._topic}", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread (it closes the consumer)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, self._settings.shutdown_timeout_s)

    async def _assigned(self) -> None:
        if self._on_assigned is not None:
            await self._on_assigned()
        self.ready.set()

    def _connect(self, loop: asyncio.AbstractEventLoop) -> Consumer | None:
        """A consumer assigned from the ends, ``on_assigned`` done; None if stopped first."""
        backoff_ms = RETRY_BACKOFF_MS_MIN
        while not self._stop.is_set():
            consumer = Consumer(
                {
                    "bootstrap.servers": self._settings.kafka_bootstrap,
                    # Required by the client; never joined (assign, not subscribe), never committed.
                    "group.id": f"api-tail-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                }
            )
            try:
                assign_from_end(consumer, self._topic)
                # After the start offsets are fixed, so nothing falls between what on_assigned
                # reads and the first message.
                timeout_s = self._settings.pg_connect_timeout_s * 2
                asyncio.run_coroutine_threadsafe(self._assigned(), loop).result(timeout_s)
                return consumer
            except Exception as exc:  # noqa: BLE001 - Kafka or PostgreSQL away: retry
                log.warning("%s: not started (%s); retrying in %d ms", self._topic, exc, backoff_ms)
                consumer.close()
                self._stop.wait(backoff_ms / 1000)
                backoff_ms = min(backoff_ms * 2, self._settings.order_feed_retry_backoff_ms_max)
        return None

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        consumer = self._connect(loop)
        if consumer is None:
            return
        timeout_s = self._settings.stream_feed_poll_ms / 1000
        batch_max = self._settings.stream_feed_batch_max
        try:
            while not self._stop.is_set():
                try:
                    messages = consumer.consume(batch_max, timeout_s)
                except KafkaException as exc:
                    # librdkafka reconnects by itself; keep polling.
                    log.warning("%s: %s", self._topic, exc)
                    self._stop.wait(timeout_s)
                    continue
                items = self._decode(messages)
                if items:
                    try:
                        loop.call_soon_threadsafe(self._deliver, items)
                    except RuntimeError:
                        return  # the loop closed: the app is gone
        finally:
            consumer.close()


def assign_from_end(consumer: Consumer, topic: str) -> None:
    """Assign every partition of ``topic`` at its current end offset."""
    metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
    partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
    assignment = []
    for partition in sorted(partitions):
        _, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S
        )
        assignment.append(TopicPartition(topic, partition, high))
    if not assignment:
        # Read nothing rather than miss what comes: the start is retried until the topic exists.
        raise KafkaException(f"topic {topic} has no partitions yet")
    consumer.assign(assignment)
    log.info("%d partitions of %s from their ends", len(assignment), topic)
