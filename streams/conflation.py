"""Conflation: the latest tick per symbol, at most one update per symbol per interval; no I/O.

"Latest" is by exchange time then sequence number, never by arrival: a tick not newer than the
newest one seen (or emitted, or found in last_prices at start) is dropped, so an update is never
followed by an older one. Each symbol is emitted at most once per interval of a monotonic clock:
a flush that comes early for a symbol leaves it pending for a later flush.
"""

from __future__ import annotations

from core.contracts import Tick

# The (ts, seq) of a tick; tuples compare like the exchange orders ticks.
TickKey = tuple[int, int]
NO_KEY: TickKey = (-1, -1)
SEQ_MAX = 2**63 - 1


def floor_of_ts_us(ts_us: int) -> TickKey:
    """A floor from a time stored at microsecond precision: the whole microsecond is "seen"."""
    return (ts_us * 1000 + 999, SEQ_MAX)


class Conflator:
    """Latest tick per symbol, released by ``due`` at most once per interval per symbol."""

    __slots__ = ("_emitted_at_ns", "_newest", "_pending", "_seeded", "interval_ns")

    def __init__(self, interval_ns: int) -> None:
        if interval_ns <= 0:
            raise ValueError(f"the conflation interval must be positive, got {interval_ns} ns")
        self.interval_ns = interval_ns
        self._newest: dict[str, TickKey] = {}
        self._pending: dict[str, Tick] = {}
        self._emitted_at_ns: dict[str, int] = {}
        self._seeded: set[str] = set()

    def unseeded(self, symbols: set[str]) -> list[str]:
        """The symbols whose floor (the newest price already published) is not loaded yet."""
        return sorted(symbols - self._seeded)

    def seed(self, symbol: str, floor: TickKey | None) -> None:
        """Raise the symbol's newest key to ``floor`` (None: nothing was published before)."""
        self._seeded.add(symbol)
        if floor is not None and floor > self._newest.get(symbol, NO_KEY):
            self._newest[symbol] = floor
            pending = self._pending.get(symbol)
            if pending is not None and (pending.ts_event_ns, pending.seq) <= floor:
                del self._pending[symbol]

    def forget_floors(self) -> None:
        """Reload floors before more ticks: partitions moved, another worker may have emitted."""
        self._seeded.clear()

    def offer(self, tick: Tick) -> bool:
        """Keep ``tick`` if it is the newest of its symbol; return whether it was kept."""
        key = (tick.ts_event_ns, tick.seq)
        symbol = tick.symbol
        if key <= self._newest.get(symbol, NO_KEY):
            return False
        self._newest[symbol] = key
        self._pending[symbol] = tick
        return True

    def due(self, now_ns: int) -> list[Tick]:
        """Take the pending ticks of symbols not emitted within the interval before ``now_ns``."""
        if not self._pending:
            return []
        emitted_at = self._emitted_at_ns
        limit = now_ns - self.interval_ns
        out = [t for s, t in self._pending.items() if emitted_at.get(s, limit) <= limit]
        for tick in out:
            del self._pending[tick.symbol]
            emitted_at[tick.symbol] = now_ns
        return out

    def pending_count(self) -> int:
        """How many symbols wait for their next update."""
        return len(self._pending)
