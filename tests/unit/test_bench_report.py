"""The benchmark harness without services: pgbench parsing, ratios, Markdown and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import pgbench_threads
from bench.exceptions import ToolError
from bench.pg_ceiling import PgbenchLoad, parse_pgbench_output
from bench.report import (
    DOCS_INTRO,
    TABLE_HEADER,
    HostInfo,
    Result,
    Row,
    against_ceilings,
    append_markdown,
    markdown_row,
    ratio,
    write_json,
)

# Captured from `pgbench -c 2 -j 2 -T 2 -M prepared` (PostgreSQL 15.18) on the dev stack.
PGBENCH_15_OUTPUT = """\
pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 1
query mode: prepared
number of clients: 2
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 1885
number of failed transactions: 0 (0.000%)
latency average = 2.113 ms
initial connection time = 12.798 ms
tps = 946.378733 (without initial connection time)
"""

# The wording of PostgreSQL 13 and older, which print tps twice.
PGBENCH_13_OUTPUT = """\
number of transactions actually processed: 5000
latency average = 4.000 ms
tps = 480.5 (including connections establishing)
tps = 500.25 (excluding connections establishing)
"""

HOST = HostInfo(nproc=2, cpu_model="Test CPU", versions={"postgresql": "15.18"})


def _result(name: str, value: float, unit: str = "msgs/s") -> Result:
    return Result(
        name=name,
        value=value,
        unit=unit,
        conditions={"messages": 2_000_000, "mode": "a|b"},
        timestamp="2026-01-02T03:04:05+00:00",
        host=HOST,
        details={"duration_s": 10.5},
    )


def test_parses_tps_latency_and_counts_from_real_pgbench_15_output() -> None:
    figures = parse_pgbench_output(PGBENCH_15_OUTPUT)

    assert figures.tps == pytest.approx(946.378733)
    assert figures.latency_ms_avg == pytest.approx(2.113)
    assert figures.transactions == 1885
    assert figures.failed == 0


def test_takes_the_tps_that_excludes_connection_time_from_older_pgbench() -> None:
    figures = parse_pgbench_output(PGBENCH_13_OUTPUT)

    assert figures.tps == pytest.approx(500.25)
    assert figures.transactions == 5000


def test_output_without_figures_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="lacks"):
        parse_pgbench_output("pgbench: error: connection to server failed\n")


def test_ratio_is_measured_over_ceiling() -> None:
    assert ratio(_result("mine", 150_000.0), _result("ceiling", 600_000.0)) == pytest.approx(0.25)


@pytest.mark.parametrize("ceiling_value", [0.0, -1.0, float("nan")])
def test_ratio_refuses_a_ceiling_that_is_not_positive(ceiling_value: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        ratio(_result("mine", 1.0), _result("ceiling", ceiling_value))


def test_ratio_refuses_different_units() -> None:
    with pytest.raises(ValueError, match="compare"):
        ratio(_result("mine", 1.0, "tps"), _result("ceiling", 1.0, "msgs/s"))


def test_against_ceilings_leaves_ceiling_rows_out_and_gives_each_ratio() -> None:
    ceiling = _result("kafka.consume", 600_000.0)
    mine = _result("streams.candles", 150_000.0)

    [(result, of, share)] = against_ceilings([Row(ceiling), Row(mine, ceiling)])

    assert (result, of) == (mine, ceiling)
    assert share == pytest.approx(0.25)


def test_row_of_a_ceiling_has_no_ratio_and_says_it_is_the_ceiling() -> None:
    row = Row(_result("kafka.consume", 612_345.6))

    assert row.ratio is None
    assert markdown_row(row) == (
        "| 2026-01-02T03:04:05Z | `kafka.consume` | 612,346 | msgs/s | (is the ceiling) | 1.00 "
        "| messages=2_000_000, mode=a\\|b; measured: duration_s=10.5 |"
    )


def test_row_of_a_benchmark_shows_its_ceiling_and_ratio() -> None:
    row = Row(_result("streams.candles", 153_086.4), _result("kafka.consume", 612_345.6))

    cells = [cell.strip() for cell in markdown_row(row).strip("|").split(" | ")]

    assert cells[1:6] == [
        "`streams.candles`",
        "153,086",
        "msgs/s",
        "kafka.consume = 612,346",
        "0.25",
    ]


def test_markdown_page_is_created_with_its_intro_once_then_appended(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "BENCHMARKS.md"

    append_markdown([Row(_result("kafka.consume", 1.0))], docs, title="run one")
    append_markdown([Row(_result("kafka.consume", 2.0))], docs, title="run two")

    text = docs.read_text(encoding="utf-8")
    assert text.startswith(DOCS_INTRO)
    assert text.count("# Benchmarks") == 1
    assert text.count(TABLE_HEADER) == 2
    assert "## run one" in text and "## run two" in text
    assert "Host: 2 cores, Test CPU; postgresql 15.18" in text


def test_json_holds_every_row_with_its_ratio(tmp_path: Path) -> None:
    ceiling = _result("kafka.consume", 200.0)
    path = write_json([Row(ceiling), Row(_result("mine", 50.0), ceiling)], tmp_path, "unit")

    payload = json.loads(path.read_text(encoding="utf-8"))
    assert path.name.endswith("-unit.json")
    assert [row["ratio"] for row in payload["rows"]] == [None, 0.25]
    assert payload["rows"][1]["ceiling"] == {"name": "kafka.consume", "value": 200.0}
    assert payload["rows"][0]["result"]["host"]["nproc"] == 2


@pytest.mark.parametrize(
    ("clients", "nproc", "threads"), [(4, 2, 2), (3, 2, 1), (1, 8, 1), (8, 8, 8)]
)
def test_pgbench_threads_divide_clients_and_stay_within_cores(
    clients: int, nproc: int, threads: int
) -> None:
    assert pgbench_threads(clients, nproc) == threads


def test_pgbench_load_refuses_clients_not_divisible_by_threads() -> None:
    with pytest.raises(ValueError, match="divisible"):
        PgbenchLoad(clients=3, threads=2, duration_s=1)
