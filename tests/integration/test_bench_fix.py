"""The FIX round-trip and tick-feed benchmarks run tiny: structure and positive figures only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fix_roundtrip, sim_ticks
from bench.host import host_info
from bench.report import Row, publish
from core.settings import Settings

pytestmark = pytest.mark.integration

TINY_FIX = fix_roundtrip.FixLoad(orders=40, window=4, warmup_orders=5, echo_round_trips=200)
TINY_TICKS = sim_ticks.TickLoad(workers=(1,), duration_s=1.0, warmup_s=0.5)


def _names(rows: list[Row]) -> list[str]:
    return [row.result.name for row in rows]


def test_fix_round_trips_beside_the_tcp_echo(running_stack: Settings, tmp_path: Path) -> None:
    settings = running_stack.model_copy(update={"state_dir": tmp_path / "state"})
    rows = fix_roundtrip.measure(settings, host_info(settings), TINY_FIX)

    assert _names(rows) == [
        "tcp.echo.closed",
        "fix.roundtrip.closed",
        "tcp.echo.pipelined",
        "fix.roundtrip.pipelined",
    ]
    closed, piped = rows[1], rows[3]
    assert (closed.ceiling, piped.ceiling) == (rows[0].result, rows[2].result)
    for row in rows:
        assert row.result.value > 0
        assert row.result.unit == "round trips/s"
    assert closed.ratio is not None and closed.ratio > 0
    assert piped.ratio is not None and piped.ratio > 0
    details = closed.result.details
    assert 0 < details["latency_us_p50"] <= details["latency_us_p99"] <= details["latency_us_max"]
    assert details["latency_p50_x_echo"] > 0
    assert rows[0].result.details["latency_us_p50"] > 0
    assert closed.result.conditions["orders"] == 40
    assert piped.result.conditions["in_flight"] == 4
    # The simulator's state folder went with the run.
    assert not list((tmp_path / "state" / "bench").glob("fix-*"))


def test_feed_ticks_beside_the_raw_producer(running_stack: Settings, tmp_path: Path) -> None:
    rows = sim_ticks.measure(running_stack, host_info(running_stack), TINY_TICKS)

    assert _names(rows) == ["kafka.produce.x1", "sim.ticks.x1"]
    ceiling, feed = rows
    assert feed.ceiling == ceiling.result
    for row in rows:
        assert row.result.unit == "ticks/s"
        assert row.result.value > 0
        assert row.result.details["ticks_in_window"] > 0
        assert row.result.conditions["processes"] == 1
        assert row.result.conditions["message_bytes"] == ceiling.result.conditions["message_bytes"]
    assert feed.ratio is not None and feed.ratio > 0
    [goal] = sim_ticks.goals(rows)
    assert goal.startswith("sim.ticks.x1: ")

    path = publish(rows, label="ticks", results_dir=tmp_path, docs_path=tmp_path / "B.md")
    assert json.loads(path.read_text())["rows"][1]["ceiling"]["name"] == "kafka.produce.x1"
    assert "`sim.ticks.x1`" in (tmp_path / "B.md").read_text()
