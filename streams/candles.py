"""The candles agent: ``md.ticks`` -> 1 s, 1 m and 1 d candles, one transaction per batch.

Batches come from the tick consumer (streams/tick_consumer.py), decoded once. Per batch: lock
the batch's partition cursors, count the ticks past them in memory (candle_builder), upsert the
1 s candles and their 1 m and 1 d rollups in one statement, move the cursors, publish the dead
letters, commit. 5m, 15m and 1h roll up from the 1 m rows, 1w and 1mo from the 1 d rows, in SQL
(sql/migrations/0017_candles_stored_rollups.sql, 0015_client_feeds.sql).

Kafka delivery is at least once; the effects are exactly once because the cursors commit with
the candles (see candle_store.py). The tick consumer commits a batch's Kafka offsets only after
this transaction committed. Every bad tick (not a tick, unknown symbol, late) is dead-lettered
here, once: past the cursor, so a replay does not send it again.
"""

from __future__ import annotations

import logging

import psycopg

from core.db import AsyncPool, make_async_pool
from streams.app import app, settings
from streams.candle_builder import CandleBuilder, Reject, apply_partition
from streams.candle_store import existing_symbols, lock_cursors, save_cursors, upsert_candles
from streams.db_retry import retry_transient
from streams.dlq import send_to_dlq
from streams.metrics import dead_lettered
from streams.tick_consumer import TickAgent, register
from streams.tick_input import SymbolDirectory, TickBatch

AGENT = "candles"

log = logging.getLogger(__name__)

_symbols = SymbolDirectory()


async def apply_batch(pool: AsyncPool, batch: TickBatch) -> list[Reject]:
    """Count ``batch`` into the candles table exactly once; return what was dead-lettered."""
    grace_ns = settings.candles_grace_ms * 1_000_000
    async with pool.connection() as conn:
        missing = _symbols.missing(batch.symbols)
        if missing:
            _symbols.known.update(await existing_symbols(conn, missing))
        cursors = await lock_cursors(conn, batch.topic, list(batch.by_partition))
        builder = CandleBuilder()
        rejects: list[Reject] = []
        for partition, items in batch.by_partition.items():
            cursors[partition] = apply_partition(
                partition, items, cursors[partition], grace_ns, _symbols.known, builder, rejects
            )
        await upsert_candles(conn, builder.candles())
        await save_cursors(conn, batch.topic, cursors)
        # Before the commit: a crash between the two re-sends a letter, it never loses one.
        for r in rejects:
            await send_to_dlq(
                agent=AGENT,
                source_topic=batch.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                error=r.error,
            )
            dead_lettered(AGENT)
        await conn.commit()
    return rejects


async def apply_until_done(pool: AsyncPool, batch: TickBatch) -> None:
    """Apply ``batch``, retrying database failures with a bounded backoff (lag shows the stall)."""
    # Every database error is retried, not only the transient ones: the batch's bad ticks are
    # already dead-lettered in memory, so a failure is the database's, and skipping the batch
    # would lose good ticks.
    await retry_transient(
        lambda: apply_batch(pool, batch),
        what=f"{AGENT}: batch of {batch.size} ticks",
        backoff_ms_max=settings.streams_db_retry_backoff_ms_max,
        errors=(psycopg.Error,),
    )


class _Pool:
    """The agent's database pool, opened when the worker starts its tick consumer."""

    pool: AsyncPool | None = None


async def _start() -> None:
    _Pool.pool = make_async_pool(settings, AGENT)
    await _Pool.pool.open()


async def _stop() -> None:
    if _Pool.pool is not None:
        await _Pool.pool.close()
        _Pool.pool = None


async def handle(batch: TickBatch) -> None:
    """Count a batch of ticks into the stored candles, retrying database failures."""
    if _Pool.pool is None:
        raise RuntimeError("the candles agent got a batch before it started")
    await apply_until_done(_Pool.pool, batch)


register(TickAgent(AGENT, handle, start=_start, stop=_stop))

# ``faust -A streams.candles worker`` runs this agent alone: the module names the app.
__all__ = ["app", "apply_batch", "handle"]
