"""The conflate agent: ``md.ticks`` -> ``md.conflated``, the latest price per symbol per interval.

The agent folds each batch of the tick consumer (streams/tick_consumer.py) into a Conflator
(conflation.py); a timer wakes FLUSH_WAKES_PER_INTERVAL times per ``conflation_ms`` and starts
a flush (conflate_flush.py, which says why the timer itself awaits nothing) that publishes every
symbol due, after upserting those prices into ``last_prices`` (market orders reserve against it)
in one statement. The database goes first: a worker that starts, or takes
over a partition, loads its floors from last_prices, so it never publishes a price older than
one already published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from core.contracts import CONFLATED_PRICES, ConflatedPrice, Tick
from core.db import AsyncConn, AsyncPool, make_async_pool
from core.exceptions import ContractError
from streams.app import app, conflated_topic, settings
from streams.conflate_flush import Flusher
from streams.conflation import Conflator, TickKey, floor_of_ts_us
from streams.db_retry import retry_transient
from streams.tick_consumer import TickAgent, register
from streams.tick_input import TickBatch

AGENT = "conflate"
# The flusher's wake-ups per interval: an update waits at most interval / this for its slot.
FLUSH_WAKES_PER_INTERVAL = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)

_FLOORS = """
SELECT i.symbol, (extract(epoch FROM lp.ts_event) * 1000000)::bigint
FROM instruments AS i LEFT JOIN last_prices AS lp ON lp.symbol = i.symbol
WHERE i.symbol = ANY(%s::text[])
"""

# Never move a price back in time: another worker may have written a newer one.
_UPSERT_LAST_PRICES = """
INSERT INTO last_prices AS lp (symbol, price, ts_event, updated_at)
SELECT v.symbol, v.price, v.ts_event, now()
FROM unnest(%s::text[], %s::numeric[], %s::timestamptz[]) AS v (symbol, price, ts_event)
ON CONFLICT (symbol) DO UPDATE SET price = EXCLUDED.price, ts_event = EXCLUDED.ts_event,
    updated_at = now()
WHERE lp.ts_event <= EXCLUDED.ts_event
"""


class _State:
    """What the agent and the flush timer of this worker share."""

    def __init__(self) -> None:
        self.conflator = Conflator(settings.conflation_ms * 1_000_000)
        self.known: set[str] = set()
        self.pool: AsyncPool | None = None
        # Set while the agent runs: the timer wakes it, the agent's stop drains it.
        self.flusher: Flusher | None = None
        # Prices published but not yet in last_prices (the database was down): written next time.
        self.unsaved: dict[str, Tick] = {}


_state = _State()


async def load_floors(conn: AsyncConn, symbols: Sequence[str]) -> dict[str, TickKey | None]:
    """Per existing symbol, the newest price time already in last_prices (None: no price)."""
    cur = await conn.execute(_FLOORS, (list(symbols),))
    return {
        str(s): None if ts_us is None else floor_of_ts_us(int(ts_us))
        for s, ts_us in await cur.fetchall()
    }


async def save_last_prices(conn: AsyncConn, ticks: Sequence[Tick]) -> None:
    """Upsert the prices of ``ticks`` (one per symbol) into last_prices in one statement."""
    await conn.execute(
        _UPSERT_LAST_PRICES,
        (
            [t.symbol for t in ticks],
            [t.price for t in ticks],
            [_EPOCH + timedelta(microseconds=t.ts_event_ns // 1000) for t in ticks],
        ),
    )
    await conn.commit()


async def _seed_until_done(pool: AsyncPool, symbols: list[str]) -> None:
    async def load() -> dict[str, TickKey | None]:
        async with pool.connection() as conn:
            return await load_floors(conn, symbols)

    floors = await retry_transient(
        load,
        what=f"{AGENT}: floors",
        backoff_ms_max=settings.streams_db_retry_backoff_ms_max,
        errors=(psycopg.Error,),
    )
    for symbol, floor in floors.items():
        _state.known.add(symbol)
        _state.conflator.seed(symbol, floor)


def fold_batch(batch: TickBatch) -> int:
    """Offer the batch's ticks of known symbols to the conflator; return how many were skipped.

    Bad ticks are skipped here: the candles agent dead-letters them (streams/tick_consumer.py).
    """
    offer = _state.conflator.offer
    known = _state.known
    skipped = 0
    for items in batch.by_partition.values():
        for _offset, _key, _value, tick in items:
            if isinstance(tick, ContractError) or tick.symbol not in known:
                skipped += 1
            else:
                offer(tick)
    return skipped


async def handle(batch: TickBatch) -> None:
    """Load the floors of symbols not seen yet, then fold the batch in."""
    pool = _state.pool
    if pool is None:
        raise RuntimeError("the conflate agent got a batch before it started")
    unseeded = _state.conflator.unseeded(batch.symbols)
    if unseeded:
        await _seed_until_done(pool, unseeded)
    fold_batch(batch)


async def _start() -> None:
    pool = make_async_pool(settings, AGENT)
    await pool.open()
    _state.pool = pool
    _state.flusher = Flusher(_state.conflator, _flush)


async def _stop() -> None:
    # The running flush still needs the pool: drain it first.
    flusher, _state.flusher = _state.flusher, None
    if flusher is not None:
        await flusher.stop(settings.shutdown_timeout_s)
    pool, _state.pool = _state.pool, None
    if pool is not None:
        await pool.close()


def _revoked() -> None:
    # Another worker may publish these symbols now; reload floors before trusting our own.
    _state.conflator.forget_floors()


register(TickAgent(AGENT, handle, start=_start, stop=_stop, revoked=_revoked))


async def _save(pool: AsyncPool, ticks: list[Tick]) -> None:
    for tick in ticks:
        _state.unsaved[tick.symbol] = tick
    try:
        async with pool.connection() as conn:
            await save_last_prices(conn, list(_state.unsaved.values()))
        _state.unsaved.clear()
    except psycopg.Error:
        # Publish anyway (the feed matters more than the table); the rows go with the next flush.
        log.exception("%s: last_prices not updated (%d symbols)", AGENT, len(_state.unsaved))


async def _flush(ticks: list[Tick]) -> None:
    """Save the due ticks to last_prices, then publish them to md.conflated."""
    pool = _state.pool
    if pool is None:
        raise RuntimeError("a conflation flush ran after the agent's pool closed")
    await _save(pool, ticks)
    now_ns = time.time_ns()
    for t in ticks:
        price = ConflatedPrice(
            symbol=t.symbol,
            price=t.price,
            size=t.size,
            ts_event_ns=t.ts_event_ns,
            seq=t.seq,
            ts_conflated_ns=now_ns,
        )
        await conflated_topic.send(key=price.kafka_key(), value=CONFLATED_PRICES.encode(price))


@app.timer(interval=settings.conflation_ms / 1000 / FLUSH_WAKES_PER_INTERVAL)  # type: ignore[untyped-decorator]
async def flush_conflated() -> None:
    """Start publishing each symbol due: its latest tick, at most once per conflation interval."""
    flusher = _state.flusher
    if flusher is not None:
        flusher.wake(time.monotonic_ns())
