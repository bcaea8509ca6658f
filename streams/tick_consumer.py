"""The tick agents' one consumer: ``md.ticks`` read in batches, decoded once, handed to each.

The candles, conflate and stops agents register here on import (``register``); the worker runs
one BatchConsumer (streams/batch_consumer.py) for them all, so a tick is fetched and decoded
once, not once per agent. A batch is committed when every registered agent has handled it.

Dead letters: a bad tick (bytes that are not a tick, or a tick of an unknown symbol) gets ONE
letter, from the candles agent, which skips it past its per-partition cursor in the same
database transaction, so a replay never sends it again. Conflate and stops skip bad ticks
silently; late ticks are the candles agent's own letters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streams.app import app, settings
from streams.batch_consumer import BatchConsumer, Records, run_or_crash
from streams.metrics import add_lag_source, observe
from streams.tick_input import TickBatch, decode_values


@dataclass(frozen=True)
class TickAgent:
    """A tick agent: its name (metrics), what it does at start, per batch, on revoke, at stop."""

    name: str
    handle: Callable[[TickBatch], Awaitable[None]]
    start: Callable[[], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None
    revoked: Callable[[], None] | None = None


_agents: list[TickAgent] = []


def register(agent: TickAgent) -> None:
    """Add a tick agent; the worker's tick consumer calls every registered agent per batch."""
    _agents.append(agent)


async def handle_records(records: Records) -> None:
    """Decode a fetched batch once and give it to every tick agent, in registration order."""
    batch = decode_values(
        settings.topic_ticks,
        (
            (r.partition, r.offset, r.key, r.value)
            for messages in records.values()
            for r in messages
        ),
    )
    for agent in _agents:
        await agent.handle(batch)
        observe(agent.name, batch.size)


def _revoked() -> None:
    for agent in _agents:
        if agent.revoked is not None:
            agent.revoked()


@app.task  # type: ignore[untyped-decorator]
async def consume_ticks() -> None:
    """Run the tick agents until the worker stops; a failure that is not a message's crashes it."""
    if not _agents:
        return
    for agent in _agents:
        if agent.start is not None:
            await agent.start()
    consumer = BatchConsumer(
        settings,
        settings.topic_ticks,
        handle_records,
        _revoked,
        batch_max=settings.streams_tick_batch_max,
    )
    add_lag_source(settings.topic_ticks, consumer.lag, [a.name for a in _agents])
    try:
        await run_or_crash(consumer, app.crash, "tick agents")
    finally:
        for agent in _agents:
            if agent.stop is not None:
                await agent.stop()
