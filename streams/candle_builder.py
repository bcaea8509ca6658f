"""OHLCV candles at the 1 s base interval, aggregated in memory per batch; no I/O here.

The same batch's 1 s candles also roll up into stored 1 m and 1 d candles (``rollup``), so a
query for a day of 1m or a year of 1d reads those rows instead of rolling up 1 s rows.

A candle keeps the exchange time and sequence number of its open and close, so two partial
candles of one bucket (two batches, a late tick, a replay on another worker) merge into the same
candle whatever order they arrive in: open is the earliest (ts, seq), close the latest, high/low
are max/min, volume and trade count add up. ``merge`` is that rule; the SQL upsert in
candle_store.py is the same rule in the database.

Lateness follows Kafka Streams: each partition has a stream time, the newest exchange time it
applied. A tick's 1 s window closes once the stream time reaches the window's end plus the grace
period; a tick of a closed window is late and is dead-lettered, never counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from core.contracts import Tick
from core.exceptions import BrokerError, ContractError
from streams.tick_input import Item, LateTickError, UnknownSymbolError

NS_PER_S = 1_000_000_000
BUCKET_WIDTH_NS = NS_PER_S  # the base interval; the table says '1 second'
# The stored widths, in seconds, as the table names them. Every one divides a day, so buckets
# aligned on the Unix epoch are the date_bin buckets aligned on UTC midnight that SQL uses.
STORED_WIDTHS: dict[int, str] = {1: "1 second", 60: "1 minute", 86_400: "1 day"}


@dataclass(slots=True)
class Candle:
    """One symbol's OHLCV over one base bucket, with the (ts, seq) of its open and close."""

    symbol: str
    bucket_s: int  # bucket start, whole seconds since the Unix epoch
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trade_count: int
    open_ts_ns: int
    open_seq: int
    close_ts_ns: int
    close_seq: int


def candle_of(tick: Tick) -> Candle:
    """The candle of a single tick."""
    price = tick.price
    return Candle(
        tick.symbol,
        tick.ts_event_ns // BUCKET_WIDTH_NS,
        price,
        price,
        price,
        price,
        tick.size,
        1,
        tick.ts_event_ns,
        tick.seq,
        tick.ts_event_ns,
        tick.seq,
    )


def merge(a: Candle, b: Candle) -> Candle:
    """Combine two partial candles of one symbol and bucket; the order of a and b is irrelevant."""
    if (a.symbol, a.bucket_s) != (b.symbol, b.bucket_s):
        raise ValueError(f"cannot merge {a.symbol}@{a.bucket_s} with {b.symbol}@{b.bucket_s}")
    first = a if (a.open_ts_ns, a.open_seq) <= (b.open_ts_ns, b.open_seq) else b
    last = a if (a.close_ts_ns, a.close_seq) >= (b.close_ts_ns, b.close_seq) else b
    return Candle(
        a.symbol,
        a.bucket_s,
        first.open,
        max(a.high, b.high),
        min(a.low, b.low),
        last.close,
        a.volume + b.volume,
        a.trade_count + b.trade_count,
        first.open_ts_ns,
        first.open_seq,
        last.close_ts_ns,
        last.close_seq,
    )


def rollup(candles: Sequence[Candle], width_s: int) -> list[Candle]:
    """The ``width_s`` candles of base ``candles``, sorted by (symbol, bucket)."""
    out: dict[tuple[str, int], Candle] = {}
    for c in candles:
        bucket_s = c.bucket_s - c.bucket_s % width_s
        key = (c.symbol, bucket_s)
        wide = replace(c, bucket_s=bucket_s)
        seen = out.get(key)
        out[key] = wide if seen is None else merge(seen, wide)
    return [out[k] for k in sorted(out)]


class CandleBuilder:
    """The candles of one batch, keyed by (symbol, bucket)."""

    __slots__ = ("_candles",)

    def __init__(self) -> None:
        self._candles: dict[tuple[str, int], Candle] = {}

    def __len__(self) -> int:
        return len(self._candles)

    def add(self, tick: Tick) -> None:
        """Count one tick into its candle (the hot path: no allocation for a known candle)."""
        ts = tick.ts_event_ns
        key = (tick.symbol, ts // BUCKET_WIDTH_NS)
        c = self._candles.get(key)
        if c is None:
            self._candles[key] = candle_of(tick)
            return
        price = tick.price
        if price > c.high:
            c.high = price
        if price < c.low:
            c.low = price
        c.volume += tick.size
        c.trade_count += 1
        seq = tick.seq
        if ts > c.close_ts_ns or (ts == c.close_ts_ns and seq > c.close_seq):
            c.close, c.close_ts_ns, c.close_seq = price, ts, seq
        elif ts < c.open_ts_ns or (ts == c.open_ts_ns and seq < c.open_seq):
            c.open, c.open_ts_ns, c.open_seq = price, ts, seq

    def candles(self) -> list[Candle]:
        """The candles, sorted by (symbol, bucket) so concurrent writers lock rows in one order."""
        return [self._candles[k] for k in sorted(self._candles)]


@dataclass(frozen=True, slots=True)
class PartitionCursor:
    """What one partition has applied to the candles table so far."""

    last_offset: int = -1  # -1: nothing yet
    stream_time_ns: int = 0  # the newest exchange time applied from this partition


@dataclass(frozen=True, slots=True)
class Reject:
    """A message to dead-letter, and why."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: BrokerError


def apply_partition(
    partition: int,
    items: list[Item],
    cursor: PartitionCursor,
    grace_ns: int,
    known_symbols: set[str],
    builder: CandleBuilder,
    rejects: list[Reject],
) -> PartitionCursor:
    """Count a partition's messages past ``cursor`` into ``builder``; return the new cursor.

    Messages at or below the cursor's offset were applied by an earlier transaction (this is a
    replay) and are skipped without a trace. Bad, unknown-symbol and late ticks go to ``rejects``.
    """
    last_offset = cursor.last_offset
    stream_time = cursor.stream_time_ns
    add = builder.add
    for offset, key, value, tick in items:
        if offset <= last_offset:
            continue
        last_offset = offset
        if isinstance(tick, ContractError):
            rejects.append(Reject(partition, offset, key, value, tick))
            continue
        if tick.symbol not in known_symbols:
            error: BrokerError = UnknownSymbolError(f"unknown symbol {tick.symbol!r}")
            rejects.append(Reject(partition, offset, key, value, error))
            continue
        ts = tick.ts_event_ns
        window_end_ns = (ts // BUCKET_WIDTH_NS + 1) * BUCKET_WIDTH_NS
        if window_end_ns + grace_ns <= stream_time:
            error = LateTickError(
                f"tick of {tick.symbol} at {ts} ns (seq {tick.seq}) is late: its 1 s candle"
                f" closed at {window_end_ns + grace_ns} ns (grace {grace_ns // 1_000_000} ms),"
                f" the partition's stream time is {stream_time} ns"
            )
            rejects.append(Reject(partition, offset, key, value, error))
            continue
        if ts > stream_time:
            stream_time = ts
        add(tick)
    return PartitionCursor(last_offset, stream_time)
