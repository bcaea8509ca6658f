"""The candles agent: ``md.ticks`` -> 1 s OHLCV rows in ``candles``, one transaction per batch.

Per batch: decode every message once, lock the batch's partition cursors, count the ticks past
them in memory (candle_builder), upsert the candles in one statement, move the cursors, publish
the dead letters, commit. Rollups to 1m..1d are SQL (sql/migrations/0012_candles.sql).

Kafka delivery is at least once; the effects are exactly once because the cursors commit with
the candles (see candle_store.py). A message is acknowledged to Faust only after its batch
committed, so a worker stopped mid-batch never lets Faust commit an offset not yet counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

import psycopg
from faust import Stream
from faust.types import EventT, StreamT

from core.db import AsyncPool, make_async_pool
from streams.app import app, settings, ticks_topic
from streams.candle_builder import CandleBuilder, Reject, apply_partition
from streams.candle_store import existing_symbols, lock_cursors, save_cursors, upsert_candles
from streams.dlq import send_to_dlq
from streams.metrics import dead_lettered, observe
from streams.tick_input import SymbolDirectory, TickBatch, decode_events

AGENT = "candles"
RETRY_BACKOFF_MS_MIN = 50

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
    backoff_ms = RETRY_BACKOFF_MS_MIN
    while True:
        try:
            await apply_batch(pool, batch)
            return
        except psycopg.Error:
            log.exception(
                "%s: batch of %d ticks not applied; retry in %d ms", AGENT, batch.size, backoff_ms
            )
            await asyncio.sleep(backoff_ms / 1000)
            backoff_ms = min(backoff_ms * 2, settings.streams_db_retry_backoff_ms_max)


def hold(events: Sequence[EventT[bytes]]) -> None:
    """Keep Faust from committing these offsets until ``release``: take_events acks them anyway."""
    for event in events:
        event.message.incref()


def release(events: Sequence[EventT[bytes]]) -> None:
    """Let Faust commit these offsets: their batch is in the database."""
    for event in events:
        event.ack()


@app.agent(ticks_topic)
async def candles(stream: StreamT[bytes]) -> None:
    """Build 1 s candles from ticks, batch by batch."""
    pool = make_async_pool(settings, AGENT)
    await pool.open()
    topic = settings.topic_ticks
    try:
        # StreamT does not declare take_events; the stream Faust passes is a Stream.
        async for events in cast("Stream[bytes]", stream).take_events(
            settings.streams_batch_max, within=settings.streams_batch_within_ms / 1000
        ):
            hold(events)
            try:
                await apply_until_done(pool, decode_events(topic, events))
            except Exception as exc:
                # Not a database fault (those are retried): a bug or Kafka refusing a dead
                # letter. Carrying on would count later offsets past this batch, and the
                # cursor would then skip it forever; stop the worker instead (its offsets stay
                # uncommitted, so the next worker replays the batch).
                log.critical("%s: batch failed; stopping the worker", AGENT, exc_info=True)
                await app.crash(exc)
                return
            release(events)
            observe(AGENT, len(events))
    finally:
        await pool.close()
