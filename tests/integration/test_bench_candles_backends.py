"""The candles benchmark on both back ends, tiny: two private clusters, loaded, measured, gone."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import candles_backends
from bench.candles_backends import BackendsPlan
from core.settings import Settings

pytestmark = pytest.mark.integration

# 20 days: the 7-day chunks wholly older than the last week are compressed (at least one).
TINY = BackendsPlan(symbols=2, days=20, queries=5, warmup_queries=1)
QUERIES = [
    "day_of_1m",
    "month_of_1h",
    "year_of_1d",
    "day_of_1m_x2",
    "month_of_1h_x2",
    "year_of_1d_x2",
]
# 09:15-15:30 IST is 03:45-10:00 UTC: minutes 375, hours 03 to 09.
CANDLES = {"day_of_1m": 375, "month_of_1h": 20 * 7, "year_of_1d": 20}


def _processes_naming(path: Path) -> list[str]:
    """Command lines of live processes that name ``path`` (a server's data folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if str(path) in text:
            found.append(text)
    return found


@pytest.fixture
def state(settings: Settings) -> Iterator[Path]:
    """A folder in the session's state folder, which the server's OS user can reach (tmp_path
    may not be); removed after."""
    folder = settings.state_dir / f"cb{uuid.uuid4().hex[:4]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder)
    if not any(settings.state_dir.iterdir()):  # no stack of this session's lives there
        settings.state_dir.rmdir()


def test_both_backends_answer_alike_and_timescaledb_compresses(
    settings: Settings, state: Path, tmp_path: Path
) -> None:
    local = settings.model_copy(update={"state_dir": state})

    rows = candles_backends.measure(local, TINY, plans_dir=tmp_path / "plans")

    names = [row.result.name for row in rows]
    assert names == [
        f"{backend}.candles_{query}_p99"
        for query in QUERIES
        for backend in ("floor", "postgresql", "timescaledb")
    ] + [
        "postgresql.candles_storage",
        "timescaledb.candles_storage_uncompressed",
        "timescaledb.candles_storage_compressed",
        "timescaledb.candles_storage_with_aggregates",
    ]
    query_rows, storage = rows[:18], rows[18:]
    floors, plains, timescales = query_rows[::3], query_rows[1::3], query_rows[2::3]
    for floor, plain, timescale in zip(floors, plains, timescales, strict=True):
        # Each back end is measured against its query's floor: the answer's rows read back.
        assert floor.ceiling is None
        assert plain.ceiling == floor.result and timescale.ceiling == floor.result
        assert floor.result.details["candles"] == plain.result.details["candles"]
        query = str(plain.result.conditions["query"])
        symbols = 2 if query.endswith("_x2") else 1
        assert plain.result.conditions["same_answer"] == "yes", query
        assert plain.result.details["candles"] == CANDLES[query.removesuffix("_x2")] * symbols
        assert plain.result.conditions["rows_1m"] == 20 * 375 * 2
        assert plain.result.conditions["rows_1s"] == 22_500 * 2
        assert plain.result.conditions["rows_1d"] == 20 * 2
        for row in (floor, plain, timescale):
            assert row.result.details["queries_run"] == 5
            assert (
                0 < row.result.details["p50_ms"] <= row.result.value <= row.result.details["max_ms"]
            )
    sizes = {row.result.name.split(".")[1]: row.result.value for row in storage}
    assert all(size > 0 for size in sizes.values())
    assert sizes["candles_storage_compressed"] < sizes["candles_storage_uncompressed"]
    assert storage[0].result.details["timescaledb_refresh_s"] > 0
    # The clusters were stopped and their files removed.
    assert not list((state / "bench").glob("cb-*"))
    assert _processes_naming(state) == []

    # The plans of the queries that missed a goal were written, and only then.
    misses = [
        candles_backends.missed(timescale.result, plain.result)
        for plain, timescale in zip(plains, timescales, strict=True)
    ]
    assert bool(list((tmp_path / "plans").glob("*-plans.txt"))) == any(misses)
    lines = candles_backends.goals(rows)
    assert len(lines) == 6 + 3
    assert all("ANSWERS DIFFER" not in line for line in lines)
