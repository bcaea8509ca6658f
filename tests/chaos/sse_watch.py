"""SSE price-stream watchers: clients that stay connected, resume with ``Last-Event-ID`` after any
drop, and record every event, so a run can tell gaps, resyncs and silences apart.

The id scheme (api/feeds/price_events.py): a stream numbers its events 1, 2, 3... or, resumed
with ``Last-Event-ID: n``, from n + 1 on, the first being a ``resync`` event, then a fresh
``snapshot``, then ``price`` updates; heartbeats are SSE comments (no id). So a client that
resumes properly sees ids without holes across reconnects; a hole is a gap, and a gap not
announced by a ``resync`` (or a resumed stream that does not start with one) is a problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.load import longest_gap
from tests.chaos.users import Trader
from tests.chaos.verify import Verify

HEARTBEAT = "heartbeat"
CONNECT = "connect"  # a marker the watcher writes when a stream opened (HTTP 200)
RESYNC = "resync"
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 1.0
# Events kept per client; beyond it only the analysis' running state would be right, so stop.
EVENTS_MAX = 500_000
STOP_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One thing a client received (or the marker of a stream opening)."""

    at: float  # epoch seconds
    type: str  # snapshot, price, resync, heartbeat, or connect (marker)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Gap:
    """Ids that jumped: ``got`` arrived when ``expected`` was due."""

    at: float
    expected: int
    got: int
    announced: bool  # a resync came with it, so the client was told to start over


@dataclass
class ClientLog:
    """What one watching client lived through."""

    index: int
    user_id: int
    events: list[SseEvent] = field(default_factory=list)
    drops: list[tuple[float, str]] = field(default_factory=list)  # (epoch s, why)
    gave_up: str | None = None  # why the client stopped reconnecting, if it did
    started_at: float = 0.0
    stopped_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The log's analysis as plain JSON values (not every event)."""
        analysis = analyse(self.events)
        silence, silence_from = longest_silence(self.events, self.started_at, self.stopped_at)
        return {
            "index": self.index,
            "user_id": self.user_id,
            "events": len(self.events),
            "connects": sum(1 for e in self.events if e.type == CONNECT),
            "drops": len(self.drops),
            "resyncs": analysis.resyncs,
            "gaps": [_gap_json(g) for g in analysis.gaps],
            "resumed_without_resync": analysis.resumed_without_resync,
            "longest_silence_s": silence,
            "longest_silence_from": silence_from,
            "gave_up": self.gave_up,
        }


def _gap_json(gap: Gap) -> dict[str, Any]:
    return {"at": gap.at, "expected": gap.expected, "got": gap.got, "announced": gap.announced}


@dataclass(frozen=True)
class Analysis:
    """Ids checked across a client's reconnects."""

    gaps: list[Gap]
    resyncs: int
    resumed_without_resync: int  # resumed streams whose first event was not a resync


def analyse(events: Iterable[SseEvent]) -> Analysis:
    """Check the ids of one client's events, in the order received, across reconnects."""
    gaps: list[Gap] = []
    resyncs = 0
    resumed_without_resync = 0
    last_id: int | None = None
    resumed = False  # a stream opened after ids were seen: its first event must be a resync
    previous_type: str | None = None
    for event in events:
        if event.type == CONNECT:
            resumed = last_id is not None
            continue
        if event.id is None:  # heartbeat
            continue
        if event.type == RESYNC:
            resyncs += 1
        if resumed and event.type != RESYNC:
            resumed_without_resync += 1
        resumed = False
        if last_id is not None and event.id != last_id + 1:
            announced = RESYNC in (event.type, previous_type)
            gaps.append(Gap(event.at, last_id + 1, event.id, announced))
        last_id = event.id
        previous_type = event.type
    return Analysis(gaps, resyncs, resumed_without_resync)


def longest_silence(events: Iterable[SseEvent], start: float, end: float) -> tuple[float, float]:
    """(length, start) of the longest time in [start, end] in which nothing was received.

    Heartbeats count as received; connection markers do not (an open stream that says nothing
    is silent). The time spent reconnecting counts: the client wanted to be connected.
    """
    return longest_gap((e.at for e in events if e.type != CONNECT), start, end)


def problems(logs: Iterable[ClientLog], silence_max_s: float | None = None) -> list[str]:
    """Gaps not announced by a resync, resumed streams without a resync, clients that gave up,
    and (if ``silence_max_s`` is given) silences longer than it."""
    found: list[str] = []
    for log in logs:
        analysis = analyse(log.events)
        for gap in analysis.gaps:
            if not gap.announced:
                found.append(
                    f"client {log.index}: id {gap.got} arrived when {gap.expected} was due,"
                    " without a resync"
                )
        if analysis.resumed_without_resync:
            found.append(
                f"client {log.index}: {analysis.resumed_without_resync} resumed streams did not"
                " start with a resync"
            )
        if log.gave_up is not None:
            found.append(f"client {log.index} gave up reconnecting: {log.gave_up}")
        if silence_max_s is not None:
            silence, since = longest_silence(log.events, log.started_at, log.stopped_at)
            if silence > silence_max_s:
                found.append(
                    f"client {log.index}: silent {silence:.1f}s from {since:.3f}"
                    f" (more than {silence_max_s}s)"
                )
    return found


class SseWatch:
    """``clients`` SSE price streams, spread over the traders, kept open until ``stop()``.

    A user may hold ``stream_connections_per_user_max`` streams (5 by default): give enough
    traders, or the extra clients are refused (429), retry, and give up.
    """

    def __init__(
        self,
        front_url: str,
        traders: Sequence[Trader],
        symbols: Sequence[str],
        clients: int,
        *,
        verify: Verify = True,
        read_timeout_s: float = 45.0,
        reconnect_budget_s: float = 60.0,
    ) -> None:
        """``read_timeout_s`` bounds a read with no byte (set it above the heartbeat interval);
        a client that cannot reconnect for ``reconnect_budget_s`` in a row gives up."""
        if not traders or clients < 1:
            raise ValueError("SSE watchers need traders and at least one client")
        self.front_url = front_url
        self.traders = list(traders)
        self.path = f"/v1/stream/prices?symbols={','.join(symbols)}"
        self.verify = verify
        self.read_timeout_s = read_timeout_s
        self.reconnect_budget_s = reconnect_budget_s
        self.logs = [
            ClientLog(n, self.traders[n % len(self.traders)].user_id) for n in range(clients)
        ]
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Close every stream; no client reconnects after this."""
        self._stop.set()

    def _record(self, log: ClientLog, event: SseEvent) -> None:
        if len(log.events) < EVENTS_MAX:
            log.events.append(event)

    async def _read(self, http: httpx.AsyncClient, log: ClientLog, trader: Trader) -> None:
        """One stream until it ends or breaks; raises what broke it."""
        headers = {**trader.headers, "Accept": "text/event-stream"}
        last = next((e.id for e in reversed(log.events) if e.id is not None), None)
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        async with http.stream("GET", self.path, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                raise ConnectionError(f"HTTP {response.status_code} {response.text[:200]}")
            self._record(log, SseEvent(time.time(), CONNECT))
            event_type: str | None = None
            event_id: int | None = None
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    self._record(log, SseEvent(time.time(), HEARTBEAT))
                elif line.startswith("event:"):
                    event_type = line[6:].strip()
                elif line.startswith("id:"):
                    value = line[3:].strip()
                    event_id = int(value) if value.isdigit() else None
                elif not line and event_type is not None:
                    self._record(log, SseEvent(time.time(), event_type, event_id))
                    event_type, event_id = None, None
        raise ConnectionError("the server ended the stream")

    async def _watch(self, log: ClientLog) -> None:
        trader = self.traders[log.index % len(self.traders)]
        timeout = httpx.Timeout(10.0, read=self.read_timeout_s)
        backoff = RECONNECT_FIRST_S
        failing_since: float | None = None
        async with httpx.AsyncClient(
            base_url=self.front_url, verify=self.verify, timeout=timeout
        ) as http:
            while not self._stop.is_set():
                reader = asyncio.create_task(self._read(http, log, trader))
                stopper = asyncio.create_task(self._stop.wait())
                opened_before = len(log.events)
                await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if not reader.done():
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader
                    return
                error = reader.exception()
                reason = f"{type(error).__name__}: {error}"[:200] if error else "ended"
                log.drops.append((time.time(), reason))
                if len(log.events) > opened_before:
                    failing_since, backoff = None, RECONNECT_FIRST_S
                failing_since = failing_since or time.time()
                if time.time() - failing_since > self.reconnect_budget_s:
                    log.gave_up = f"no stream for {self.reconnect_budget_s}s; last: {reason}"
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(RECONNECT_MAX_S, backoff * 2)

    async def run(self, duration_s: float) -> list[ClientLog]:
        """Watch for at most ``duration_s`` (or until ``stop()``); return each client's log."""
        start = time.time()
        for log in self.logs:
            log.started_at = start
        tasks = [asyncio.create_task(self._watch(log)) for log in self.logs]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), duration_s)
        self._stop.set()
        end = time.time()
        for log in self.logs:
            log.stopped_at = end
        await asyncio.wait_for(asyncio.gather(*tasks), STOP_GRACE_S + self.read_timeout_s)
        return self.logs
