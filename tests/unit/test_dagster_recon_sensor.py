"""The report sensor: a run per report file that lands, for the trading day in its name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from dagster import RunRequest, SkipReason, build_sensor_context

from core.settings import get_settings
from dagster_project.definitions import defs
from dagster_project.recon_automation import report_days, trade_report_sensor
from dagster_project.resources import LandingResource


def test_only_report_files_of_partition_days_are_picked() -> None:
    names = [
        "trade_report_2024-09-16.csv",
        "trade_report_2024-09-16.breaks.json",
        ".trade_report_2024-09-17.csv.abc.tmp",
        "trade_report_2024-02-30.csv",
        "trade_report_2023-12-29.csv",
        "trade_report_2030-01-01.csv",
        "notes.txt",
    ]

    days = list(report_days(names, today=date(2024, 9, 20), first=date(2024, 1, 1)))

    assert days == [date(2024, 9, 16)]


def test_a_landed_report_requests_a_run_of_its_day(tmp_path: Path) -> None:
    (tmp_path / "trade_report_2024-09-16.csv").write_text("exec_id\n")
    (tmp_path / "trade_report_2024-09-16.breaks.json").write_text("{}")
    landing = LandingResource(reports_dir=str(tmp_path), output_dir=str(tmp_path / "out"))

    with build_sensor_context(resources={"landing": landing}) as context:
        requests = list(cast(Iterator[RunRequest | SkipReason], trade_report_sensor(context)))

    runs = [r for r in requests if isinstance(r, RunRequest)]
    assert [r.partition_key for r in runs] == ["2024-09-16"]
    run_key = runs[0].run_key
    assert isinstance(run_key, str) and run_key.startswith("trade_report_2024-09-16.csv:")


def test_an_empty_landing_folder_skips(tmp_path: Path) -> None:
    landing = LandingResource(reports_dir=str(tmp_path), output_dir=str(tmp_path / "out"))

    with build_sensor_context(resources={"landing": landing}) as context:
        requests = list(cast(Iterator[RunRequest | SkipReason], trade_report_sensor(context)))

    assert [type(r) for r in requests] == [SkipReason]


def test_todays_report_runs_the_same_evening(tmp_path: Path) -> None:
    today = datetime.now(ZoneInfo(get_settings().market_tz)).date().isoformat()
    (tmp_path / f"trade_report_{today}.csv").write_text("exec_id\n")
    landing = LandingResource(reports_dir=str(tmp_path), output_dir=str(tmp_path / "out"))

    # Evaluated with the definitions, as the daemon does: each run request's partition key is
    # resolved against the job's partitions, and an unknown one raises.
    with build_sensor_context(resources={"landing": landing}, definitions=defs) as context:
        result = trade_report_sensor.evaluate_tick(context)

    assert [r.partition_key for r in result.run_requests or []] == [today]
    assert result.skip_message is None
