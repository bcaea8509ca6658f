"""The conflation flush under Faust's own timer: no overlap warning, however slow the write.

The timer is mode's Timer, which Faust's ``app.timer`` iterates, at the interval of ``make up``
(conflation_ms 250 over five wake-ups); the write is a hand-written fake slower than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from mode.timers import Timer

from core.contracts import Tick
from streams.conflate_flush import Flusher
from streams.conflation import Conflator

CONFLATION_MS = 250
INTERVAL_S = CONFLATION_MS / 1000 / 5
WAKES = 30
WRITE_S = 3 * INTERVAL_S  # a commit on a busy machine, or a loop busy with a tick batch
FEED_EVERY_S = 0.01  # the simulator's tick interval
SYMBOLS = ("ACME", "ALPHA", "BETA", "GAMMA")
OVERLAP = "is overlapping"


class SlowWrite:
    """A write that takes WRITE_S and records what it got and how many ran at once."""

    def __init__(self) -> None:
        self.written: list[list[Tick]] = []
        self.running = 0
        self.running_max = 0

    async def __call__(self, ticks: list[Tick]) -> None:
        self.running += 1
        self.running_max = max(self.running_max, self.running)
        try:
            self.written.append(ticks)
            await asyncio.sleep(WRITE_S)
        finally:
            self.running -= 1


def _tick(symbol: str, seq: int) -> Tick:
    return Tick(
        symbol=symbol, price=Decimal(100 + seq % 7), size=1, ts_event_ns=seq * 1_000_000, seq=seq
    )


async def _feed(conflator: Conflator, stop: asyncio.Event) -> None:
    """Offer a newer tick of every symbol every FEED_EVERY_S, as the tick agent would."""
    seq = 0
    while not stop.is_set():
        seq += 1
        for symbol in SYMBOLS:
            conflator.offer(_tick(symbol, seq))
        await asyncio.sleep(FEED_EVERY_S)


async def _run_timer(run: Callable[[], Awaitable[None]]) -> Timer:
    """Run ``run`` on every wake-up of the timer, as Faust's app.timer does; return the timer."""
    timer = Timer(INTERVAL_S, name="flush_conflated")
    wakes = 0
    async for _ in timer:
        await run()
        wakes += 1
        if wakes == WAKES:
            break
    return timer


async def _flush_with_feed(
    conflator: Conflator, run: Callable[[], Awaitable[None]], *, feed: bool
) -> Timer:
    stop = asyncio.Event()
    feeder = asyncio.create_task(_feed(conflator, stop)) if feed else None
    try:
        return await _run_timer(run)
    finally:
        stop.set()
        if feeder is not None:
            await feeder


def _overlaps(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if OVERLAP in r.getMessage()]


@pytest.mark.parametrize("feed", [False, True], ids=["idle", "ticking"])
async def test_the_flush_never_overlaps_its_timer_even_when_the_write_is_slow(
    caplog: pytest.LogCaptureFixture, feed: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="mode.timers")
    conflator = Conflator(CONFLATION_MS * 1_000_000)
    write = SlowWrite()
    flusher = Flusher(conflator, write)

    async def wake() -> None:
        flusher.wake(time.monotonic_ns())

    timer = await _flush_with_feed(conflator, wake, feed=feed)
    await flusher.stop(timeout_s=1)

    assert _overlaps(caplog) == []
    assert timer.overlaps == 0
    assert write.running_max <= 1
    if not feed:
        assert write.written == []
        return
    assert len(write.written) >= 2
    # Skipped wake-ups lose nothing but stale prices: each update newer than the one before.
    for symbol in SYMBOLS:
        seqs = [t.seq for ticks in write.written for t in ticks if t.symbol == symbol]
        assert seqs == sorted(set(seqs))


async def test_a_flush_awaited_in_the_timer_overlaps_it(caplog: pytest.LogCaptureFixture) -> None:
    """The control: the timer does warn when its run awaits a write slower than its interval."""
    caplog.set_level(logging.WARNING, logger="mode.timers")
    conflator = Conflator(CONFLATION_MS * 1_000_000)
    write = SlowWrite()

    async def flush_and_wait() -> None:
        ticks = conflator.due(time.monotonic_ns())
        if ticks:
            await write(ticks)

    timer = await _flush_with_feed(conflator, flush_and_wait, feed=True)

    assert timer.overlaps > 0
    assert _overlaps(caplog)


async def test_a_failed_write_fails_the_next_wake_up() -> None:
    conflator = Conflator(CONFLATION_MS * 1_000_000)

    async def broken(ticks: list[Tick]) -> None:
        raise OSError("the broker is gone")

    flusher = Flusher(conflator, broken)
    conflator.offer(_tick("ACME", 1))
    assert flusher.wake(time.monotonic_ns())
    await asyncio.sleep(0)

    with pytest.raises(OSError, match="the broker is gone"):
        flusher.wake(time.monotonic_ns())


async def test_a_stopped_flusher_starts_nothing() -> None:
    conflator = Conflator(CONFLATION_MS * 1_000_000)
    write = SlowWrite()
    flusher = Flusher(conflator, write)

    await flusher.stop(timeout_s=1)
    conflator.offer(_tick("ACME", 1))

    assert not flusher.wake(time.monotonic_ns())
    assert write.written == []
