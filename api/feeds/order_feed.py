"""Order changes for the order SSE stream: one order updates consumer per API process, fanned out.

Migration 0034's triggers write each insert or visible change of an order to the outbox, which
the relay publishes to ``ORDER_UPDATES_TOPIC`` keyed by user id, in commit order; one order's
changes therefore arrive in order. Every API process reads the topic from its end (a topic tail)
and hands each change to the streams of its user open here. Each stream has a bounded queue: a
stream that falls that far behind gets a ``resync`` item instead of a silent gap.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from confluent_kafka import Message

from api.feeds.topic_tail import TopicTail
from api.services.order_models import OrderOut
from core.contracts.orders import ORDER_UPDATES_TOPIC
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resync:
    """The stream missed updates; the client should re-read its orders."""

    reason: str


OrderItem = OrderOut | Resync


class OrderSubscriber:
    """One order stream: its user and its bounded queue of updates."""

    __slots__ = ("overflowed", "queue", "user_id")

    def __init__(self, user_id: int, queue_max: int) -> None:
        self.user_id = user_id
        self.queue: asyncio.Queue[OrderItem] = asyncio.Queue(queue_max)
        self.overflowed = False

    def put(self, item: OrderItem) -> None:
        """Queue an update; past the bound, end with a resync instead of dropping silently."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            # Make room for the one item that explains the gap.
            self.queue.get_nowait()
            self.queue.put_nowait(Resync("too many order updates waiting; re-read your orders"))


def read_payload(payload: bytes | str) -> tuple[int, dict[str, Any]]:
    """(user id, the rest of the payload): enough to tell whether any stream here wants it."""
    data: dict[str, Any] = json.loads(payload, parse_float=Decimal)
    return int(data.pop("user_id")), data


def updates_of(messages: Sequence[Message]) -> list[tuple[int, bytes]]:
    """(user id from the key, the raw order) per readable message of a batch; others are logged.

    Only the key is read here: every process hears every order change, and the order itself is
    parsed only where a stream of its user is open.
    """
    updates = []
    for message in messages:
        if message.error() is not None:
            log.warning("order feed: %s", message.error())
            continue
        try:
            updates.append((int(message.key() or b""), message.value() or b""))
        except ValueError as exc:
            log.warning("order feed: a record without a user id key: %s", exc)
    return updates


class OrderFeed:
    """The order updates tail and the subscribers per user; started and stopped by the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._by_user: dict[int, set[OrderSubscriber]] = {}
        self._tail = TopicTail(settings, ORDER_UPDATES_TOPIC, updates_of, self._dispatch)
        self.ready = self._tail.ready

    def subscribe(self, user_id: int) -> OrderSubscriber:
        """A new stream of ``user_id``'s order updates, from now on."""
        subscriber = OrderSubscriber(user_id, self._settings.order_feed_queue_max)
        self._by_user.setdefault(user_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: OrderSubscriber) -> None:
        """End a stream."""
        subscribers = self._by_user.get(subscriber.user_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._by_user[subscriber.user_id]

    def start(self) -> None:
        """Start the consumer thread; ``ready`` is set once it reads the topic."""
        self._tail.start()

    async def stop(self) -> None:
        """Stop the consumer thread."""
        await self._tail.stop()

    def _dispatch(self, updates: list[tuple[int, bytes]]) -> None:
        for user_id, value in updates:
            subscribers = self._by_user.get(user_id)
            if not subscribers:
                continue
            try:
                _, data = read_payload(value)
                order = OrderOut.model_validate(data)
            except (ValueError, KeyError, TypeError) as exc:  # ValidationError is a ValueError
                log.warning("order feed: an order it cannot read: %s", exc)
                continue
            for subscriber in list(subscribers):
                subscriber.put(order)
