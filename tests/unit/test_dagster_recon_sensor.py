"""The report sensor's choice of trading days from the landing folder's file names."""

from __future__ import annotations

from datetime import date

from dagster_project.recon_automation import report_days


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
