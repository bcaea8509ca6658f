"""The stops agent: ``md.ticks`` x pending STOP_LOSS / STOP_LIMIT orders -> released orders.

The pending stops live in memory by symbol and are reloaded from PostgreSQL every
``stops_refresh_ms``, so a tick costs a dictionary lookup, not a query: a batch reduces to the
lowest and highest price per symbol, and only a stop those prices cross goes to the database
(streams/stop_trigger.release_stop, guarded by the order's status, so a stop is released once
however often its tick is replayed). A stop placed since the last reload is seen at the next one.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict

from core.db import AsyncPool
from core.exceptions import ContractError
from streams.app import app, settings
from streams.db_retry import open_pool, retry_transient
from streams.stop_trigger import PendingStop, load_pending_stops, release_stop
from streams.tick_consumer import TickAgent, register
from streams.tick_input import TickBatch

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


class _State:
    """The agent's pool and stop book in this worker."""

    pool: AsyncPool | None = None
    book = StopBook()


async def _start() -> None:
    _State.pool = await open_pool(settings, AGENT)
    _State.book = StopBook()


async def _stop() -> None:
    pool, _State.pool = _State.pool, None
    if pool is not None:
        await pool.close()


async def handle(batch: TickBatch) -> None:
    """Release the stops the batch's prices cross."""
    if _State.pool is None:
        raise RuntimeError("the stops agent got a batch before it started")
    await check_batch(_State.pool, _State.book, batch)


register(TickAgent(AGENT, handle, start=_start, stop=_stop))


async def check_batch(pool: AsyncPool, book: StopBook, batch: TickBatch) -> None:
    """Reload the book when due, then release every stop the batch's prices cross."""
    now_s = time.monotonic()
    if book.is_stale(now_s):
        book.reload(await retry_transient(lambda: _load(pool), **_retry("reload")), now_s)
    for stop in book.crossed(price_ranges(batch, book)):
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


def price_ranges(batch: TickBatch, book: StopBook) -> dict[str, tuple[Decimal, Decimal]]:
    """The lowest and highest price per watched symbol; bad ticks are the candles agent's."""
    ranges: dict[str, tuple[Decimal, Decimal]] = {}
    watched = book.by_symbol
    if not watched:
        return ranges
    for items in batch.by_partition.values():
        for _offset, _key, _value, tick in items:
            if isinstance(tick, ContractError) or tick.symbol not in watched:
                continue
            seen = ranges.get(tick.symbol)
            price = tick.price
            ranges[tick.symbol] = (
                (price, price) if seen is None else (min(seen[0], price), max(seen[1], price))
            )
    return ranges


# ``faust -A streams.stops worker`` runs this agent alone: the module names the app.
__all__ = ["app", "check_batch", "handle"]
