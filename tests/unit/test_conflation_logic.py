"""Conflation without I/O: latest wins, at most one update per symbol per interval, never stale."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from core.contracts import Tick
from streams.conflation import Conflator, floor_of_ts_us

MS = 1_000_000
INTERVAL_NS = 250 * MS
T0_NS = 1_726_000_000_000_000_000


def tick(price: str, ts_ns: int, seq: int, symbol: str = "ACME") -> Tick:
    return Tick(symbol=symbol, price=Decimal(price), size=1, ts_event_ns=ts_ns, seq=seq)


def test_the_latest_tick_of_an_interval_wins() -> None:
    c = Conflator(INTERVAL_NS)
    for i in range(10):
        c.offer(tick(f"{100 + i}", T0_NS + i, i))
    assert [t.price for t in c.due(0)] == [Decimal(109)]
    assert c.due(10 * INTERVAL_NS) == []  # nothing new, nothing sent


def test_latest_is_by_exchange_time_and_sequence_not_arrival() -> None:
    c = Conflator(INTERVAL_NS)
    assert c.offer(tick("101", T0_NS + 2, 2))
    assert not c.offer(tick("100", T0_NS + 1, 1))  # arrives later, is older
    assert not c.offer(tick("101", T0_NS + 2, 2))  # a duplicate
    assert c.offer(tick("102", T0_NS + 2, 3))  # same time, later sequence
    assert [t.seq for t in c.due(0)] == [3]


def test_at_most_one_update_per_symbol_per_interval() -> None:
    c = Conflator(INTERVAL_NS)
    c.offer(tick("1", T0_NS + 1, 1))
    assert len(c.due(1_000 * MS)) == 1
    c.offer(tick("2", T0_NS + 2, 2))
    assert c.due(1_000 * MS + INTERVAL_NS - 1) == []  # too soon: stays pending
    assert c.pending_count() == 1
    c.offer(tick("3", T0_NS + 3, 3))
    assert [t.price for t in c.due(1_000 * MS + INTERVAL_NS)] == [Decimal(3)]


def test_symbols_have_their_own_intervals() -> None:
    c = Conflator(INTERVAL_NS)
    c.offer(tick("1", T0_NS, 1, "ACME"))
    assert len(c.due(0)) == 1
    c.offer(tick("2", T0_NS, 1, "ZEPHYR"))
    c.offer(tick("3", T0_NS + 1, 2, "ACME"))
    assert [t.symbol for t in c.due(INTERVAL_NS // 2)] == ["ZEPHYR"]


def test_never_a_stale_price_after_a_newer_one_under_random_arrival() -> None:
    rng = random.Random(7)
    c = Conflator(INTERVAL_NS)
    ticks = [tick(f"{100 + i % 50}", T0_NS + i * MS, i) for i in range(5_000)]
    shuffled = ticks[:]
    # Mostly in order, with local reordering (as when partitions or producers race).
    for i in range(0, len(shuffled) - 5, 5):
        window = shuffled[i : i + 5]
        rng.shuffle(window)
        shuffled[i : i + 5] = window
    emitted: list[Tick] = []
    now = 0
    for t in shuffled:
        c.offer(t)
        now += rng.randrange(0, 2 * MS)
        emitted.extend(c.due(now))
    emitted.extend(c.due(now + INTERVAL_NS))
    keys = [(t.ts_event_ns, t.seq) for t in emitted]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert emitted[-1] == ticks[-1]
    assert len(emitted) <= now // INTERVAL_NS + 2


def test_a_floor_from_last_prices_suppresses_older_ticks() -> None:
    c = Conflator(INTERVAL_NS)
    ts_us = (T0_NS + 5_000) // 1000
    c.seed("ACME", floor_of_ts_us(ts_us))
    assert not c.offer(tick("1", T0_NS + 4_000, 1))
    assert not c.offer(tick("1", T0_NS + 5_999, 9))  # the same microsecond: treated as seen
    assert c.offer(tick("2", T0_NS + 6_000, 10))
    assert c.unseeded({"ACME", "ZEPHYR"}) == ["ZEPHYR"]


def test_a_late_floor_drops_a_pending_tick_it_covers() -> None:
    c = Conflator(INTERVAL_NS)
    c.offer(tick("1", T0_NS + 1_000, 1))
    c.seed("ACME", floor_of_ts_us(T0_NS // 1000 + 2))
    assert c.due(0) == []


def test_forgetting_floors_asks_for_them_again() -> None:
    c = Conflator(INTERVAL_NS)
    c.seed("ACME", None)
    assert c.unseeded({"ACME"}) == []
    c.forget_floors()
    assert c.unseeded({"ACME"}) == ["ACME"]


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Conflator(0)
