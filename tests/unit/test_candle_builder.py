"""Candle aggregation without I/O: OHLCV, order-independent merges, late ticks, replays."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from core.contracts import TICKS, Tick
from core.exceptions import ContractError
from streams.candle_builder import (
    NS_PER_S,
    Candle,
    CandleBuilder,
    PartitionCursor,
    Reject,
    apply_partition,
    candle_of,
    merge,
    rollup,
)
from streams.tick_input import Item, LateTickError, UnknownSymbolError, decode_values

T0_NS = 1_726_000_000 * NS_PER_S
GRACE_NS = 2 * NS_PER_S
NOTHING_APPLIED = PartitionCursor()


def tick(symbol: str, price: str, size: int, ts_ns: int, seq: int) -> Tick:
    return Tick(symbol=symbol, price=Decimal(price), size=size, ts_event_ns=ts_ns, seq=seq)


def naive_candles(ticks: list[Tick], width_s: int = 1) -> list[Candle]:
    """The obvious definition, one bucket at a time."""
    buckets: dict[tuple[str, int], list[Tick]] = {}
    for t in ticks:
        bucket_s = t.ts_event_ns // NS_PER_S // width_s * width_s
        buckets.setdefault((t.symbol, bucket_s), []).append(t)
    out = []
    for (symbol, bucket), group in sorted(buckets.items()):
        by_time = sorted(group, key=lambda t: (t.ts_event_ns, t.seq))
        first, last = by_time[0], by_time[-1]
        out.append(
            Candle(
                symbol,
                bucket,
                first.price,
                max(t.price for t in group),
                min(t.price for t in group),
                last.price,
                sum(t.size for t in group),
                len(group),
                first.ts_event_ns,
                first.seq,
                last.ts_event_ns,
                last.seq,
            )
        )
    return out


def random_ticks(
    rng: random.Random, n: int, symbols: tuple[str, ...] = ("ACME", "ZEPHYR")
) -> list[Tick]:
    seqs = dict.fromkeys(symbols, 0)
    ticks = []
    for _ in range(n):
        symbol = rng.choice(symbols)
        seqs[symbol] += 1
        ts = T0_NS + rng.randrange(0, 5 * NS_PER_S, 1_000_000)  # several buckets, ties in ts
        price = f"{rng.randint(9_000, 11_000) / 100:.2f}"
        ticks.append(tick(symbol, price, rng.randint(1, 500), ts, seqs[symbol]))
    return ticks


def build(ticks: list[Tick]) -> list[Candle]:
    builder = CandleBuilder()
    for t in ticks:
        builder.add(t)
    return builder.candles()


def test_a_single_tick_is_its_own_candle() -> None:
    t = tick("ACME", "100.25", 7, T0_NS + 500_000_000, 3)
    assert build([t]) == [
        Candle(
            "ACME",
            T0_NS // NS_PER_S,
            *(Decimal("100.25"),) * 4,
            7,
            1,
            t.ts_event_ns,
            3,
            t.ts_event_ns,
            3,
        )
    ]


def test_ohlcv_follows_exchange_time_not_arrival_order() -> None:
    # Arrival order: the close first, then the open, then the high and the low.
    ticks = [
        tick("ACME", "101", 1, T0_NS + 900, 4),
        tick("ACME", "100", 2, T0_NS + 100, 1),
        tick("ACME", "105", 3, T0_NS + 300, 2),
        tick("ACME", "99", 4, T0_NS + 600, 3),
    ]
    [c] = build(ticks)
    assert (c.open, c.high, c.low, c.close) == (
        Decimal(100),
        Decimal(105),
        Decimal(99),
        Decimal(101),
    )
    assert (c.volume, c.trade_count) == (10, 4)


def test_equal_exchange_times_are_ordered_by_sequence() -> None:
    ticks = [
        tick("ACME", "102", 1, T0_NS, 8),
        tick("ACME", "101", 1, T0_NS, 7),
        tick("ACME", "103", 1, T0_NS, 9),
    ]
    [c] = build(ticks)
    assert (c.open, c.close) == (Decimal(101), Decimal(103))


def test_builder_matches_the_naive_definition() -> None:
    ticks = random_ticks(random.Random(1), 5_000)
    assert build(ticks) == naive_candles(ticks)


@pytest.mark.parametrize("seed", range(5))
def test_merging_partial_candles_in_any_order_gives_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    ticks = random_ticks(rng, 2_000, ("ACME",))
    cuts = sorted(rng.sample(range(1, len(ticks)), 4))
    chunks = [ticks[a:b] for a, b in zip([0, *cuts], [*cuts, len(ticks)], strict=True)]
    rng.shuffle(chunks)
    merged: dict[int, Candle] = {}
    for chunk in chunks:
        for c in build(chunk):
            merged[c.bucket_s] = merge(merged[c.bucket_s], c) if c.bucket_s in merged else c
    assert [merged[b] for b in sorted(merged)] == naive_candles(ticks)


@pytest.mark.parametrize("width_s", [60, 86_400])
def test_rollups_of_the_1s_candles_are_the_wider_candles_of_the_ticks(width_s: int) -> None:
    rng = random.Random(width_s)
    midnight_ns = T0_NS // (86_400 * NS_PER_S) * 86_400 * NS_PER_S
    ticks = [
        # Minutes either side of a UTC midnight: several 1 m and two 1 d buckets.
        tick("ACME", f"{rng.randint(9_000, 11_000) / 100:.2f}", 1, ts, seq)
        for seq, ts in enumerate(
            midnight_ns + rng.randrange(-300, 300) * NS_PER_S + rng.randrange(NS_PER_S)
            for _ in range(3_000)
        )
    ]
    rng.shuffle(ticks)
    assert rollup(build(ticks), width_s) == naive_candles(ticks, width_s)


def test_merge_refuses_different_buckets() -> None:
    a = candle_of(tick("ACME", "1", 1, T0_NS, 1))
    b = candle_of(tick("ACME", "1", 1, T0_NS + NS_PER_S, 2))
    with pytest.raises(ValueError, match="cannot merge"):
        merge(a, b)


def items_of(ticks: list[Tick | bytes], first_offset: int = 0) -> list[Item]:
    """Messages as the agent sees them, through the real decoder."""
    raw = [t if isinstance(t, bytes) else TICKS.encode(t) for t in ticks]
    batch = decode_values("md.ticks", [(0, first_offset + i, b"k", v) for i, v in enumerate(raw)])
    return batch.by_partition[0]


def run(
    ticks: list[Tick | bytes],
    cursor: PartitionCursor = NOTHING_APPLIED,
    known: set[str] | None = None,
) -> tuple[list[Candle], PartitionCursor, list[Reject]]:
    builder = CandleBuilder()
    rejects: list[Reject] = []
    after = apply_partition(
        0, items_of(ticks), cursor, GRACE_NS, known or {"ACME", "ZEPHYR"}, builder, rejects
    )
    return builder.candles(), after, rejects


def test_a_late_tick_within_the_grace_period_corrects_its_candle() -> None:
    on_time = tick("ACME", "100", 1, T0_NS + 100, 1)
    newer = tick("ACME", "101", 1, T0_NS + NS_PER_S + 500_000_000, 3)  # next bucket
    # Exchange time earlier than `newer`, but its window (+ grace) is still open.
    late = tick("ACME", "98", 5, T0_NS + 900_000_000, 2)
    candles, cursor, rejects = run([on_time, newer, late])
    assert rejects == []
    assert candles[0].low == Decimal(98) and candles[0].close == Decimal(98)
    assert candles[0].volume == 6
    assert cursor == PartitionCursor(2, newer.ts_event_ns)


def test_a_tick_after_its_window_and_grace_goes_to_the_dlq() -> None:
    old = tick("ACME", "98", 5, T0_NS, 1)
    # The stream time is past old's window end (T0 + 1 s) plus the grace period.
    now = tick("ZEPHYR", "10", 1, T0_NS + NS_PER_S + GRACE_NS, 1)
    candles, cursor, rejects = run([now, old])
    assert [c.symbol for c in candles] == ["ZEPHYR"]
    assert [(r.offset, type(r.error)) for r in rejects] == [(1, LateTickError)]
    assert "late" in str(rejects[0].error)
    assert cursor.last_offset == 1  # the late tick's offset is consumed, not retried


def test_the_window_closes_exactly_at_its_end_plus_grace() -> None:
    just_open = tick("ACME", "1", 1, T0_NS, 1)
    clock = tick("ACME", "1", 1, T0_NS + NS_PER_S + GRACE_NS - 1, 2)
    assert run([clock, just_open])[2] == []
    clock = tick("ACME", "1", 1, T0_NS + NS_PER_S + GRACE_NS, 2)
    assert len(run([clock, just_open])[2]) == 1


def test_poison_and_unknown_symbols_are_rejected_and_the_rest_counted() -> None:
    good = tick("ACME", "100", 1, T0_NS, 1)
    unknown = tick("NOPE", "100", 1, T0_NS, 1)
    candles, cursor, rejects = run([b"\xff\xfe", good, b'{"type":"tick.v1"}', unknown])
    assert [c.trade_count for c in candles] == [1]
    assert [(r.offset, type(r.error)) for r in rejects] == [
        (0, ContractError),
        (2, ContractError),
        (3, UnknownSymbolError),
    ]
    assert rejects[0].value == b"\xff\xfe" and rejects[0].key == b"k"
    assert cursor.last_offset == 3


def test_offsets_already_applied_are_skipped_without_a_trace() -> None:
    ticks: list[Tick | bytes] = [tick("ACME", "100", 1, T0_NS + i, i) for i in range(10)]
    ticks[3] = b"poison"
    cursor = PartitionCursor(last_offset=5, stream_time_ns=T0_NS + 5)
    candles, after, rejects = run(ticks, cursor)
    assert rejects == []  # the poison at offset 3 was dead-lettered the first time
    assert [c.trade_count for c in candles] == [4]
    assert candles[0].open_seq == 6
    assert after == PartitionCursor(9, T0_NS + 9)


def test_a_full_replay_changes_nothing() -> None:
    ticks: list[Tick | bytes] = [tick("ACME", "100", 1, T0_NS + i, i) for i in range(10)]
    first = run(ticks)
    again = run(ticks, first[1])
    assert again == ([], first[1], [])
