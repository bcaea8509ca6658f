"""The conflation flush kept off its timer: a wake-up takes what is due, a task writes it.

Faust's timer warns that it "is overlapping" when one run lasts longer than its interval, and a
run includes every await inside it. A flush that awaited its PostgreSQL commit and its sends ran
past the 50 ms between wake-ups whenever the commit was slow or the loop was busy with a tick
batch (about 250 warnings in 15 idle minutes of `make up`). So a wake-up does no I/O: it starts
one flush at a time and skips while that flush still writes; the skipped symbols stay pending in
the conflator, which keeps only their latest tick, so nothing queues up behind a slow flush.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from core.contracts import Tick
from streams.conflation import Conflator

Write = Callable[[list[Tick]], Coroutine[Any, Any, None]]


class Flusher:
    """Starts the write of the ticks due without awaiting it; at most one write runs at a time."""

    def __init__(self, conflator: Conflator, write: Write) -> None:
        self._conflator = conflator
        self._write = write
        self._running: asyncio.Task[None] | None = None
        self._stopped = False

    def wake(self, now_ns: int) -> bool:
        """Start writing the ticks due at ``now_ns`` unless a write still runs; True if started."""
        if self._stopped:
            return False
        running = self._running
        if running is not None:
            if not running.done():
                return False
            self._running = None
            # A failed write fails the timer, as it did when the timer awaited the write itself.
            running.result()
        ticks = self._conflator.due(now_ns)
        if not ticks:
            return False
        self._running = asyncio.get_running_loop().create_task(self._write(ticks))
        return True

    async def stop(self, timeout_s: float) -> None:
        """Wait at most ``timeout_s`` for the running write; wake-ups after this start nothing."""
        self._stopped = True
        running, self._running = self._running, None
        if running is not None:
            await asyncio.wait_for(running, timeout_s)
