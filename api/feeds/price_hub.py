"""The latest price per symbol in this API process, and the clients waiting for changes.

Every client holds only the latest value per symbol it asked for (a dict and a future, never
a queue): a slow client is conflated to what is newest, costs the same memory however slow it is,
and never delays another. Everything here runs on the event loop thread; the Kafka consumer
thread hands its batches over with ``loop.call_soon_threadsafe(hub.publish, quotes)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """A price of one symbol at an exchange time; (ts_ns, seq) orders two quotes of a symbol."""

    symbol: str
    price: Decimal
    ts_ns: int
    seq: int = 0

    def newer_than(self, other: Quote | None) -> bool:
        """True when this quote is later than ``other`` (or there is none)."""
        return other is None or (self.ts_ns, self.seq) > (other.ts_ns, other.seq)


class PriceClient:
    """One stream's symbols, its pending latest quotes and the future its sender waits on."""

    __slots__ = (
        "_gap_s",
        "_hold_s",
        "_sent_at",
        "_waiter",
        "beat",
        "closed",
        "next_due",
        "pending",
        "symbols",
        "user_id",
    )

    def __init__(
        self, user_id: int, symbols: Iterable[str], hold_s: float, gap_s: float = 0.0
    ) -> None:
        self.user_id = user_id
        # A sorted tuple: a tenth of a frozenset's memory, and the snapshot's order.
        self.symbols = tuple(sorted(set(symbols)))
        # Only quotes newer than every one before reach a client (the hub drops the others, and
        # the snapshot is the hub's latest), so the latest pending one is never older than sent.
        self.pending: dict[str, Quote] = {}
        # When each symbol may be sent again (monotonic seconds): at most one per hold_s.
        self.next_due: dict[str, float] = {}
        # A bare future, made only while the sender waits: cheaper than an Event per client.
        self._waiter: asyncio.Future[None] | None = None
        self.beat = False
        self.closed = False
        self._hold_s = hold_s
        # Batches at least gap_s apart: fewer, larger writes per client, each update late by
        # at most gap_s (a write costs a system call; 10,000 clients write 10 times a second).
        self._gap_s = gap_s
        self._sent_at = 0.0

    def offer(self, quote: Quote) -> None:
        """Keep ``quote`` as the symbol's pending value (the hub offers only newer quotes)."""
        self.pending[quote.symbol] = quote
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def heartbeat(self) -> None:
        """Have the sender send a heartbeat (``next_batch`` returns an empty batch)."""
        self.beat = True
        self._wake()

    def close(self) -> None:
        """End the stream: its sender stops waiting (the client left, or the server stops)."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reset(self) -> None:
        """Forget pending values: the snapshot about to be sent holds them, or newer ones."""
        self.pending.clear()

    def take_due(self, now: float) -> tuple[list[Quote], float | None]:
        """The pending quotes that may go now, and when the next held one is due (or None)."""
        pending = self.pending
        next_due = self.next_due
        due: list[Quote] = []
        wait: float | None = None
        for symbol, quote in pending.items():
            at = next_due.get(symbol, 0.0)
            if at <= now:
                due.append(quote)
                next_due[symbol] = now + self._hold_s
            else:
                wait = at - now if wait is None else min(wait, at - now)
        if wait is None:
            pending.clear()
        else:
            for quote in due:
                del pending[quote.symbol]
        return due, wait

    async def next_batch(self) -> list[Quote]:
        """Every quote that may go, once there is one; [] for a heartbeat or once closed."""
        loop = asyncio.get_running_loop()
        while not self.closed:
            now = time.monotonic()
            gap = self._sent_at + self._gap_s - now
            due: list[Quote] = []
            wait: float | None = gap
            if gap <= 0 or not self.pending:
                due, wait = self.take_due(now)
            if due:
                self._sent_at = now
                return due
            if self.beat:
                self.beat = False
                return []
            self._waiter = loop.create_future()
            # Only a held symbol (or batch) needs a timer: its turn comes even if nothing moves.
            timer = None if wait is None else loop.call_later(wait, self._wake)
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        return []


class PriceHub:
    """The latest quote per symbol and the clients of each symbol, in one API process."""

    def __init__(self) -> None:
        self.latest: dict[str, Quote] = {}
        # Instrument symbols known to exist: a stream's symbols are checked here, not in the
        # database, so thousands of clients connecting at once do not queue for the pool.
        self.known: set[str] = set()
        self._by_symbol: dict[str, set[PriceClient]] = {}
        self._per_user: dict[int, int] = {}
        self._clients: set[PriceClient] = set()
        # Set when the server stops: every stream ends, and one opened after ends at once.
        self.closing = False

    def seed(self, quotes: Iterable[Quote]) -> None:
        """Merge quotes read from the database (newer ones already here win)."""
        for quote in quotes:
            if quote.newer_than(self.latest.get(quote.symbol)):
                self.latest[quote.symbol] = quote

    def publish(self, quotes: Iterable[Quote]) -> None:
        """Take a batch from the feed: keep the newest per symbol and offer it to its clients."""
        for quote in quotes:
            if not quote.newer_than(self.latest.get(quote.symbol)):
                continue
            self.latest[quote.symbol] = quote
            for client in self._by_symbol.get(quote.symbol, ()):
                client.offer(quote)

    def snapshot(self, symbols: Iterable[str]) -> list[Quote]:
        """The latest known quote of each of ``symbols`` that has one, in the order given."""
        return [q for q in (self.latest.get(s) for s in symbols) if q is not None]

    def connections(self, user_id: int) -> int:
        """How many streams ``user_id`` has open in this process."""
        return self._per_user.get(user_id, 0)

    def add(self, client: PriceClient) -> None:
        """Start offering quotes of the client's symbols to it."""
        for symbol in client.symbols:
            self._by_symbol.setdefault(symbol, set()).add(client)
        self._per_user[client.user_id] = self._per_user.get(client.user_id, 0) + 1
        self._clients.add(client)
        if self.closing:
            client.close()

    def close(self) -> None:
        """End every stream (the server is stopping) and any opened from now on."""
        self.closing = True
        for client in list(self._clients):
            client.close()

    def heartbeat(self) -> None:
        """Have every stream send a heartbeat."""
        for client in self._clients:
            client.heartbeat()

    def remove(self, client: PriceClient) -> None:
        """Stop offering quotes to a client (its stream ended)."""
        for symbol in client.symbols:
            clients = self._by_symbol.get(symbol)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self._by_symbol[symbol]
        self._clients.discard(client)
        left = self._per_user.get(client.user_id, 0) - 1
        if left > 0:
            self._per_user[client.user_id] = left
        else:
            self._per_user.pop(client.user_id, None)

    def client_count(self) -> int:
        """Open streams in this process."""
        return sum(self._per_user.values())


async def send_heartbeats(hub: PriceHub, every_s: float) -> None:
    """Every ``every_s``, a heartbeat on every stream: one timer per process, not per stream."""
    while True:
        await asyncio.sleep(every_s)
        hub.heartbeat()
