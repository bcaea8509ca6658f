"""The streams benchmarks run small against the real stack: they run, and their rows carry the
ratio to the ceiling measured in the same run. No timing is asserted (speed belongs in bench/)."""

from __future__ import annotations

import pytest

from bench import streams_fills, streams_ticks
from bench.report import HostInfo
from core.settings import Settings

pytestmark = pytest.mark.integration

HOST = HostInfo(nproc=2, cpu_model="test")


def test_the_fills_benchmark_settles_every_fill_and_reports_its_ratio_to_pgbench(
    running_stack: Settings,
) -> None:
    load = streams_fills.FillsLoad(
        fills=600, users=5, partitions=2, pgbench_clients=2, pgbench_seconds=1
    )
    rows = streams_fills.measure(running_stack, HOST, load)

    assert [row.result.name for row in rows] == ["pgbench.settle_fills", "streams.fills.settled"]
    ceiling, agent = rows
    assert ceiling.ceiling is None and ceiling.result.value > 0
    assert agent.ceiling == ceiling.result
    assert agent.ratio is not None and agent.ratio > 0
    assert agent.result.unit == "fills/s"
    assert agent.result.conditions["fills"] == 600
    # measure() refuses a run that did not settle every fill once with every invariant holding,
    # so a row at all proves the agent's work was checked.
    assert agent.result.details["fills_measured"] > 0
    assert streams_fills.goals(rows)[0].startswith("streams.fills.settled: ")


def test_the_ticks_benchmark_reports_one_worker_beside_both_consumer_ceilings(
    running_stack: Settings,
) -> None:
    load = streams_ticks.TicksLoad(ticks=100_000, partitions=4, symbols=10, workers=(1,), rounds=1)
    rows = streams_ticks.measure(running_stack, HOST, load)

    names = [(row.result.name, row.ceiling.name if row.ceiling else None) for row in rows]
    assert names == [
        ("aiokafka.getmany", None),
        ("kafka.consume", None),
        ("streams.ticks.1w.per_worker", "aiokafka.getmany"),
        ("streams.ticks.1w.per_worker", "kafka.consume"),
    ]
    assert all(row.result.value > 0 for row in rows)
    assert all(row.ratio is not None and row.ratio > 0 for row in rows[2:])
    assert rows[2].result.details["rounds"] == 1
    assert str(rows[2].result.conditions["placement"]).startswith("symbols dealt round")
