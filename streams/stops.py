"""The stops agent: ``md.ticks`` x pending STOP_LOSS / STOP_LIMIT orders -> released orders.

The pending stops live in memory by symbol and are reloaded from PostgreSQL every
``stops_refresh_ms``, so a tick costs a dictionary lookup, not a query: a batch reduces to the
lowest and highest price per symbol, and only a stop those prices cross goes to the database
(streams/stop_trigger.release_stop, guarded by the order's status, so a stop is released once
however often its tick is replayed). A stop placed since the last reload is seen at the next one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict, cast

import faust
from faust.types import EventT

from core.contracts import TICKS
from core.db import AsyncPool
from core.exceptions import ContractError
from streams.app import app, settings, ticks_topic
from streams.db_retry import open_pool, retry_transient, withhold_commit
from streams.dlq import send_to_dlq
from streams.metrics import dead_lettered, observe
from streams.stop_trigger import PendingStop, load_pending_stops, release_stop

log = logging.getLogger(__name__)

AGENT = "stops"


@dataclass
class StopBook:
    """The pending stops by symbol, as of the last reload."""

    by_symbol: dict[str, list[PendingStop]] = field(default_factory=dict)
    loaded_at_s: float | None = None

    def is_stale(self, now_s: float) -> bool:
        """Whether the book is due for a reload."""
        return (
            self.loaded_at_s is None or now_s - self.loaded_at_s >= settings.stops_refresh_ms / 1000
        )

    def reload(self, by_symbol: dict[str, list[PendingStop]], now_s: float) -> None:
        """Replace the book with what the database holds."""
        self.by_symbol = by_symbol
        self.loaded_at_s = now_s

    def crossed(self, ranges: dict[str, tuple[Decimal, Decimal]]) -> list[PendingStop]:
        """The stops whose trigger the (low, high) price range of their symbol reaches."""
        return [
            stop
            for symbol, (low, high) in ranges.items()
            for stop in self.by_symbol.get(symbol, ())
            if stop.crossed(low, high)
        ]

    def discard(self, stop: PendingStop) -> None:
        """Forget a stop (released, or no longer pending)."""
        remaining = [s for s in self.by_symbol.get(stop.symbol, ()) if s.order_id != stop.order_id]
        if remaining:
            self.by_symbol[stop.symbol] = remaining
        else:
            self.by_symbol.pop(stop.symbol, None)


@app.agent(ticks_topic, name=AGENT)
async def stops(stream: faust.StreamT[bytes]) -> None:
    """Watch ticks and release the stop orders they trigger."""
    pool = await open_pool(settings, AGENT)
    book = StopBook()
    try:
        # take_events is on the Stream class, not on the StreamT interface the agent is given.
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.streams_batch_max, within=settings.streams_batch_within_ms / 1000
        ):
            try:
                await check_batch(pool, book, events)
            except asyncio.CancelledError:
                withhold_commit(events)
                raise
            observe(AGENT, len(events))
    finally:
        await pool.close()


async def check_batch(pool: AsyncPool, book: StopBook, events: Sequence[EventT[bytes]]) -> None:
    """Reload the book when due, then release every stop the batch's prices cross."""
    now_s = time.monotonic()
    if book.is_stale(now_s):
        book.reload(await retry_transient(lambda: _load(pool), **_retry("reload")), now_s)
    ranges = await _price_ranges(events, book)
    for stop in book.crossed(ranges):
        released = await retry_transient(
            functools.partial(_release, pool, stop), **_retry("release")
        )
        log.info("%s: stop %s %s", AGENT, stop.order_id, "released" if released else "not pending")
        book.discard(stop)


def _retry(what: str) -> _RetryArgs:
    return {"what": f"{AGENT} {what}", "backoff_ms_max": settings.streams_db_retry_backoff_ms_max}


class _RetryArgs(TypedDict):
    what: str
    backoff_ms_max: int


async def _load(pool: AsyncPool) -> dict[str, list[PendingStop]]:
    async with pool.connection() as conn:
        return await load_pending_stops(conn)


async def _release(pool: AsyncPool, stop: PendingStop) -> bool:
    async with pool.connection() as conn:
        return await release_stop(conn, stop, settings)


async def _price_ranges(
    events: Sequence[EventT[bytes]], book: StopBook
) -> dict[str, tuple[Decimal, Decimal]]:
    """The lowest and highest price per watched symbol; bad ticks go to the DLQ."""
    ranges: dict[str, tuple[Decimal, Decimal]] = {}
    watched = book.by_symbol
    for event in events:
        message = event.message
        try:
            tick = TICKS.decode(message.value, topic=message.topic)
        except ContractError as exc:
            await send_to_dlq(
                agent=AGENT,
                source_topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value,
                error=exc,
            )
            dead_lettered(AGENT)
            continue
        if tick.symbol not in watched:
            continue
        seen = ranges.get(tick.symbol)
        price = tick.price
        ranges[tick.symbol] = (
            (price, price) if seen is None else (min(seen[0], price), max(seen[1], price))
        )
    return ranges
