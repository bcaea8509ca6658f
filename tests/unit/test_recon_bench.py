"""The benchmark's synthetic day and its pandas reference agree with the pipeline."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bench import recon, recon_pandas
from bench.recon_data import make_day
from bench.report import Result, Row
from pipelines.compare import compare
from pipelines.trade_report import load_trade_report

DAY = date(2024, 9, 16)


def test_the_synthetic_day_holds_exactly_the_injected_breaks(tmp_path: Path) -> None:
    day = make_day(tmp_path, 2_000, DAY, seed=3, drop=3, change_qty=2, extra=4)

    result = compare(load_trade_report(day.report_path).rows, day.internal)

    found = {k: sorted(v) for k, v in result.breaks.group_by("kind").agg("exec_id").iter_rows()}
    assert found == {
        "MISSING_EXTERNAL": sorted(day.dropped),
        "QTY_MISMATCH": sorted(day.changed_qty),
        "MISSING_INTERNAL": sorted(day.extra),
    }
    assert result.matched == 2_000 - 3 - 2


def test_pandas_finds_the_same_breaks_and_sets_aside_the_same_rows(tmp_path: Path) -> None:
    day = make_day(tmp_path, 500, DAY, seed=4, drop=2, change_qty=2, extra=1)
    with day.report_path.open("a") as out:
        out.write("BAD1,o,ACME,BUY,x,1.00,2024-09-16T04:00:00.000000Z\n")
        out.write("BAD2,o,ACME,BUY,1,1.000001,2024-09-16T04:00:00.000000Z\n")

    polars_report = load_trade_report(day.report_path)
    rows, rejected = recon_pandas.load(day.report_path)
    matched, breaks = recon_pandas.compare(rows, recon._internal_for_pandas(day))
    expected = compare(polars_report.rows, day.internal)

    assert sorted(rejected["line"]) == sorted(polars_report.rejected["line"].to_list())
    assert matched == expected.matched
    assert sorted(zip(breaks["kind"], breaks["exec_id"], strict=True)) == sorted(
        expected.breaks.select("kind", "exec_id").rows()
    )
    ticks = sorted(int(v) for v in breaks["cash_impact"])
    assert ticks == sorted(int(v * recon_pandas.SCALE) for v in expected.breaks["cash_impact"])


def test_goal_line_says_whether_ten_million_rows_took_twenty_seconds_or_less() -> None:
    host = recon.recon_host()
    conditions = {"report_rows": recon.GOAL_ROWS, "breaks": 15}
    ceiling = Result.now("recon.pandas", 1.0, "rows/s", conditions, host, {"seconds": 90.0})
    fast = Result.now("recon.polars", 2.0, "rows/s", conditions, host, {"seconds": 12.5})
    slow = Result.now("recon.polars", 2.0, "rows/s", conditions, host, {"seconds": 25.0})

    assert recon.goals([Row(fast, ceiling)])[0].endswith("goal 20 s met")
    assert recon.goals([Row(slow, ceiling)])[0].endswith("goal 20 s NOT met")
