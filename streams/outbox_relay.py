"""The transactional outbox relay: outbox rows -> Kafka, in commit order, at least once.

Which rows: unpublished, not canceled, due (``available_at <= now()``), and written by a
transaction that has finished with no older transaction still running
(``txid < pg_snapshot_xmin(pg_current_snapshot())``). Every transaction that could still add a row
has a txid at or above that horizon, so ordering by (txid, id) below it is final: a row can
never appear later in front of one already published. That is what "commit order" means here
(transactions in txid order, which for one user's serialized orders is their commit order).

How: one batch per database transaction. The rows are locked (``FOR UPDATE``, so a cancel cannot
withdraw a row while it is being published), produced with an idempotent producer
(``enable.idempotence``, ``acks=all``) keyed by the row key, and marked ``published_at`` only
after Kafka acknowledged every message. A crash or Kafka failure between produce and mark leaves
the rows unpublished and they are sent again: delivery is at least once, and consumers (the FIX
bridge) dedupe by order id, the key of every record.

Who: one relay publishes at a time. Each instance holds its own PostgreSQL session and asks for a
session advisory lock; the one that gets it publishes, the others wait as hot standbys and take
over when its session ends (a crash closes the session and frees the lock).

Each relay process also runs the retention purger (streams/retention.py) in a thread: it deletes
published and withdrawn rows once older than ``outbox_retention_s``, never a pending one.

Run it with ``python -m streams.outbox_relay``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.db import try_advisory_lock
from core.settings import Settings, get_settings
from streams import retention

log = logging.getLogger(__name__)

# The advisory lock every relay instance competes for (an arbitrary constant: "outbox01").
ADVISORY_LOCK_KEY = 0x6F7574626F783031
# Each relay's PostgreSQL session is named this plus its pid (pg_stat_activity).
APPLICATION_NAME_PREFIX = "outbox-relay:"

SELECT_DUE = (
    "SELECT id, topic, key, payload, headers FROM outbox"
    " WHERE published_at IS NULL AND canceled_at IS NULL AND available_at <= now()"
    " AND txid < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY txid, id LIMIT %s FOR UPDATE"
)


class RelayDeliveryError(Exception):
    """Kafka did not acknowledge every message of a batch; the batch stays unpublished."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One message waiting in the outbox."""

    id: int
    topic: str
    key: bytes | None
    payload: bytes
    headers: dict[str, str]


@dataclass
class _Deliveries:
    """Collects the delivery reports of one batch."""

    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)

    def report(self, error: KafkaError | None, message: Message) -> None:
        """Record the outcome of one produced message (a confluent-kafka delivery callback)."""
        if error is None:
            self.acknowledged += 1
        else:
            self.errors.append(f"{message.topic()}: {error}")


def make_producer(settings: Settings) -> Producer:
    """An idempotent producer that fails a message after the delivery timeout."""
    return Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": settings.outbox_delivery_timeout_ms,
            "queue.buffering.max.messages": max(settings.outbox_batch_max, 1000),
            "linger.ms": 1,
        }
    )


def publish_batch(conn: psycopg.Connection[Any], producer: Producer, settings: Settings) -> int:
    """Publish the next batch of due rows and mark them published; return how many.

    Raises RelayDeliveryError when Kafka did not acknowledge them all within the delivery
    timeout; then nothing is marked and the same rows come first in the next batch.
    """
    with conn.transaction():
        rows = [
            OutboxRow(int(r[0]), str(r[1]), r[2], bytes(r[3]), dict(r[4] or {}))
            for r in conn.execute(SELECT_DUE, (settings.outbox_batch_max,)).fetchall()
        ]
        if not rows:
            return 0
        _produce_all(producer, rows, settings)
        conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY(%s)", ([r.id for r in rows],)
        )
    log.debug("published %d outbox rows up to id %d", len(rows), rows[-1].id)
    return len(rows)


def _produce_all(producer: Producer, rows: list[OutboxRow], settings: Settings) -> None:
    deliveries = _Deliveries()
    for row in rows:
        producer.produce(
            row.topic,
            value=row.payload,
            key=row.key,
            headers=[(k, str(v).encode()) for k, v in row.headers.items()],
            on_delivery=deliveries.report,
        )
        producer.poll(0)
    # message.timeout.ms bounds every delivery; the flush waits a little longer than that.
    timeout_s = settings.outbox_delivery_timeout_ms / 1000 + 1
    remaining = producer.flush(timeout_s)
    if remaining or deliveries.errors or deliveries.acknowledged != len(rows):
        raise RelayDeliveryError(
            f"{deliveries.acknowledged} of {len(rows)} messages acknowledged, {remaining} still"
            f" queued; errors: {deliveries.errors[:3]}"
        )


class Backoff:
    """Exponential delays from the poll interval up to ``outbox_retry_backoff_ms_max``."""

    def __init__(self, settings: Settings) -> None:
        self._first_ms = max(settings.outbox_poll_interval_ms, 10)
        self._max_ms = settings.outbox_retry_backoff_ms_max
        self._next_ms = self._first_ms

    def reset(self) -> None:
        """Start again from the shortest delay (after a success)."""
        self._next_ms = self._first_ms

    def next_delay_s(self) -> float:
        """The delay before the next attempt; each call doubles the following one."""
        delay_ms = self._next_ms
        self._next_ms = min(self._next_ms * 2, self._max_ms)
        return delay_ms / 1000


def run(settings: Settings, stop: threading.Event) -> None:
    """Relay until ``stop`` is set: lead (or stand by), publish, and recover from failures.

    A PostgreSQL or Kafka failure never loses a row: the connection and producer are rebuilt
    after a backoff bounded by ``outbox_retry_backoff_ms_max``, and unmarked rows are re-sent.
    The relay never gives up on its own; stop it with ``stop``.
    """
    backoff = Backoff(settings)
    while not stop.is_set():
        try:
            _session(settings, stop, backoff)
        except (psycopg.Error, KafkaException, RelayDeliveryError, BufferError) as exc:
            delay_s = backoff.next_delay_s()
            log.warning("outbox relay failed (%s); retrying in %.2fs", exc, delay_s)
            stop.wait(delay_s)


def _session(settings: Settings, stop: threading.Event, backoff: Backoff) -> None:
    poll_s = settings.outbox_poll_interval_ms / 1000
    # The name tells operators (and the chaos suite) which relay process holds the lock.
    name = f"{APPLICATION_NAME_PREFIX}{os.getpid()}"
    with psycopg.connect(settings.pg_dsn, autocommit=True, application_name=name) as conn:
        while not try_advisory_lock(conn, ADVISORY_LOCK_KEY):
            if stop.wait(poll_s):
                return
        log.info("outbox relay leads (advisory lock %#x held)", ADVISORY_LOCK_KEY)
        producer = make_producer(settings)
        try:
            while not stop.is_set():
                published = publish_batch(conn, producer, settings)
                backoff.reset()
                if published < settings.outbox_batch_max:
                    stop.wait(poll_s)
        finally:
            # Unacknowledged messages are not marked; they are re-sent by the next leader.
            producer.flush(0)


def main() -> None:
    """Run the relay with the process settings until SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def _stop(signum: int, _: FrameType | None) -> None:
        log.info("signal %d: stopping the outbox relay", signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    settings = get_settings()
    retention.start(settings, stop)
    run(settings, stop)


if __name__ == "__main__":
    main()
