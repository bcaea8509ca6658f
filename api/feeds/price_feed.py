"""The one ``md.conflated`` consumer of an API process, feeding the price hub of that process.

A confluent-kafka consumer in a thread, with manual assignment of every partition from its end
offsets: no consumer group, so no rebalances, nothing committed, and every API process gets
every price (each process serves its own clients). What was published before the process
started is read from ``last_prices`` once the end offsets are fixed; the conflate agent writes
that table before it publishes, so nothing falls between the two.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from api.feeds.price_hub import PriceHub, Quote
from core.contracts import CONFLATED_PRICES
from core.db import AsyncPool
from core.exceptions import ContractError
from core.settings import Settings
from core.timestamps import ns_of

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 5.0
RETRY_BACKOFF_MS_MIN = 100


def quotes_of(messages: Sequence[Message]) -> list[Quote]:
    """The quotes in a batch of md.conflated messages; bad records are logged and skipped."""
    quotes: list[Quote] = []
    for message in messages:
        if message.error() is not None:
            log.warning("price feed: %s", message.error())
            continue
        try:
            record = CONFLATED_PRICES.decode(message.value(), topic=message.topic())
        except ContractError as exc:
            # The conflate agent owns the topic's DLQ; here a bad record is only skipped.
            log.warning("price feed: skipped a record: %s", exc)
            continue
        quotes.append(Quote(record.symbol, record.price, record.ts_event_ns, record.seq))
    return quotes


class PriceFeed:
    """The consumer thread: started and stopped by the app's lifespan.

    The thread owns its consumer: it assigns the partitions (retrying while Kafka is away, so
    the API starts without it), has the loop seed the hub from last_prices, sets ``ready``,
    then polls until stopped and closes the consumer itself.
    """

    def __init__(self, settings: Settings, hub: PriceHub) -> None:
        self._settings = settings
        self._hub = hub
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = asyncio.Event()

    def start(self, pool: AsyncPool) -> None:
        """Start the thread; ``ready`` is set once prices flow."""
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(loop, pool), name="price-feed", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread (it closes the consumer)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, self._settings.shutdown_timeout_s)

    async def _seed(self, pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT symbol, price, ts_event FROM last_prices")
            rows = await cursor.fetchall()
            cursor = await conn.execute("SELECT symbol FROM instruments")
            self._hub.known.update(row[0] for row in await cursor.fetchall())
        self._hub.seed(Quote(symbol, price, ns_of(ts)) for symbol, price, ts in rows)
        self.ready.set()

    def _connect(self, loop: asyncio.AbstractEventLoop, pool: AsyncPool) -> Consumer | None:
        """A consumer assigned from the ends, the hub seeded; None if stopped first."""
        backoff_ms = RETRY_BACKOFF_MS_MIN
        while not self._stop.is_set():
            consumer = Consumer(
                {
                    "bootstrap.servers": self._settings.kafka_bootstrap,
                    # Required by the client; never joined (assign, not subscribe), never committed.
                    "group.id": f"api-prices-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                }
            )
            try:
                assign_from_end(consumer, self._settings.topic_conflated)
                # Seeded after the start offsets are fixed: the conflate agent writes
                # last_prices before it publishes, so no price falls between the two.
                timeout_s = self._settings.pg_connect_timeout_s * 2
                asyncio.run_coroutine_threadsafe(self._seed(pool), loop).result(timeout_s)
                return consumer
            except Exception as exc:  # noqa: BLE001 - Kafka or PostgreSQL away: retry
                log.warning("price feed: not started (%s); retrying in %d ms", exc, backoff_ms)
                consumer.close()
                self._stop.wait(backoff_ms / 1000)
                backoff_ms = min(backoff_ms * 2, self._settings.order_feed_retry_backoff_ms_max)
        return None

    def _run(self, loop: asyncio.AbstractEventLoop, pool: AsyncPool) -> None:
        consumer = self._connect(loop, pool)
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
                    log.warning("price feed: %s", exc)
                    self._stop.wait(timeout_s)
                    continue
                quotes = quotes_of(messages)
                if quotes:
                    try:
                        loop.call_soon_threadsafe(self._hub.publish, quotes)
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
    consumer.assign(assignment)
    if not assignment:
        # Quotes then come from last_prices only (seeded at start); a restart picks it up.
        log.warning("price feed: topic %s has no partitions yet; no live prices", topic)
    log.info("price feed: %d partitions of %s from their ends", len(assignment), topic)
