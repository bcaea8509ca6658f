"""How the ticks benchmark lays out its topic and turns rounds of runs into scaling figures."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import scaling
from bench.streams_ticks import TicksLoad, make_ticks, symbol_partitions
from core.contracts import TICKS
from core.instruments import instrument_universe


def test_worker_counts_alternate_their_order_from_round_to_round() -> None:
    assert [scaling.round_order((1, 2), r) for r in range(3)] == [[1, 2], [2, 1], [1, 2]]


def test_scaling_compares_each_round_with_its_own_single_worker_run() -> None:
    # The host is a third slower in round 2: both counts drop together, the round's ratio holds.
    single = [scaling.RoundFigures(100.0, 1.0, 1.1), scaling.RoundFigures(66.0, 1.0, 1.1)]
    double = [scaling.RoundFigures(180.0, 1.8, 1.9), scaling.RoundFigures(120.0, 1.6, 1.9)]

    figures = scaling.summary(2, double, single)

    assert figures["scaling_min"] == pytest.approx(1.8)
    assert figures["scaling_max"] == pytest.approx(120 / 66)
    assert figures["scaling_vs_1_worker"] == pytest.approx((1.8 + 120 / 66) / 2)
    assert figures["per_worker"] == pytest.approx(75.0)  # median of 90 and 60
    assert figures["per_core_vs_1_worker"] == pytest.approx((1.0 + 75 / 66) / 2)


def test_one_slow_round_moves_the_median_scaling_less_than_the_mean() -> None:
    single = [scaling.RoundFigures(v, 1.0, 1.0) for v in (100.0, 100.0, 100.0)]
    double = [scaling.RoundFigures(v, 2.0, 2.0) for v in (185.0, 120.0, 180.0)]

    figures = scaling.summary(2, double, single)

    assert figures["scaling_vs_1_worker"] == pytest.approx(1.80)
    assert figures["scaling_min"] == pytest.approx(1.20)
    assert figures["rounds"] == 3


def test_a_single_worker_summary_has_no_scaling() -> None:
    figures = scaling.summary(1, [scaling.RoundFigures(100.0, 1.0, 1.1)], None)

    assert "scaling_vs_1_worker" not in figures
    assert figures["ticks_per_s_per_busy_worker_core"] == pytest.approx(100.0)


def test_rounds_of_different_lengths_are_refused() -> None:
    one = [scaling.RoundFigures(100.0, 1.0, 1.0)]
    with pytest.raises(ValueError, match="rounds"):
        scaling.summary(2, one + one, one)


def test_every_partition_gets_the_same_number_of_ticks_and_each_symbol_one_partition() -> None:
    load = TicksLoad(ticks=12_001, partitions=12, symbols=100)
    instruments = instrument_universe(load.symbols)
    placement = symbol_partitions(load, instruments)

    ticks = make_ticks(load, instruments, placement)

    per_partition = Counter(placement[key] for key, _ in ticks)
    assert sorted(per_partition) == list(range(12))
    assert max(per_partition.values()) - min(per_partition.values()) <= 1
    assert all(TICKS.decode(value).symbol.encode() == key for key, value in ticks[:100])


def test_a_load_with_fewer_symbols_than_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer symbols"):
        TicksLoad(ticks=10, partitions=12, symbols=5)
