"""Order changes for the order SSE stream: one LISTEN connection per API process, fanned out.

Migration 0015 NOTIFYs ``orders_changed`` with the changed order on every insert or visible
update; PostgreSQL delivers notifications in commit order, so one order's changes arrive in
order. Each stream has a bounded queue: a stream that falls that far behind, or any stream
while the LISTEN connection was lost, gets a ``resync`` item instead of a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from api.services.order_models import OrderOut
from api.services.order_queries import ORDER_COLUMNS, order_from_row
from core.db import AsyncPool
from core.pg_listen import listen
from core.settings import Settings

log = logging.getLogger(__name__)

# The channel migration 0015 notifies on.
ORDERS_CHANNEL = "orders_changed"
_READ_ORDER = sql.SQL("SELECT {} FROM orders WHERE id = %s").format(sql.SQL(ORDER_COLUMNS))


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


def read_payload(payload: str) -> tuple[int, dict[str, Any]]:
    """(user id, the rest of the payload): enough to tell whether any stream here wants it."""
    data: dict[str, Any] = json.loads(payload, parse_float=Decimal)
    return int(data.pop("user_id")), data


def order_of(data: dict[str, Any]) -> tuple[uuid.UUID, OrderOut | None]:
    """(order id, the order, or None when the payload carried the ids only)."""
    order_id = uuid.UUID(str(data["id"]))
    if data.get("partial"):
        return order_id, None
    return order_id, OrderOut.model_validate(data)


class OrderFeed:
    """The LISTEN task and the subscribers per user; started and stopped by the lifespan."""

    def __init__(self, settings: Settings, pool: AsyncPool) -> None:
        self._settings = settings
        self._pool = pool
        self._by_user: dict[int, set[OrderSubscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

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
        """Start listening; ``listening`` is set while LISTEN is active."""
        self._task = asyncio.create_task(self._run(), name="order-feed")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        first = True

        async def on_listening(_: psycopg.AsyncConnection[Any]) -> None:
            nonlocal first
            if not first:
                self._resync_all("the order feed reconnected; updates may be missing")
            first = False
            self.listening.set()

        await listen(
            self._settings.pg_dsn,
            ORDERS_CHANNEL,
            on_listening=on_listening,
            on_notify=self._dispatch,
            on_lost=self.listening.clear,
            backoff_ms_max=self._settings.order_feed_retry_backoff_ms_max,
            what="order feed",
        )

    async def _dispatch(self, payload: str) -> None:
        # Every API process hears every order change: the order is validated only when a
        # stream of its user is open here, not for each change of the users of other processes.
        try:
            user_id, data = read_payload(payload)
            subscribers = self._by_user.get(user_id)
            if not subscribers:
                return
            order_id, order = order_of(data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("order feed: a payload it cannot read: %s", exc)
            return
        if order is None:
            order = await self._read(order_id)
            if order is None:
                return
        for subscriber in list(subscribers):
            subscriber.put(order)

    async def _read(self, order_id: uuid.UUID) -> OrderOut | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_READ_ORDER, (order_id,))
            row = await cur.fetchone()
        return None if row is None else order_from_row(row)

    def _resync_all(self, reason: str) -> None:
        for subscribers in self._by_user.values():
            for subscriber in subscribers:
                subscriber.put(Resync(reason))
