"""The end-of-day trade report: one row per fill, written whole, with known injected breaks."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from core.contracts.enums import Side
from fixbridge.simulator.journal import FillJournal
from fixbridge.simulator.matching import Fill
from fixbridge.simulator.trade_report import (
    COLUMNS,
    KIND_CHANGED_QTY,
    KIND_DROPPED,
    KIND_EXTRA,
    Injection,
    write_trade_report,
)

DAY = date(2024, 9, 16)
T0 = 1_726_457_700_000_000_000  # 2024-09-16 09:05 Asia/Kolkata


def fills(count: int = 10) -> list[Fill]:
    return [
        Fill(
            f"E-{n}",
            f"order-{n}",
            "ACME",
            Side.BUY if n % 2 else Side.SELL,
            10 + n,
            Decimal("100.05"),
            T0 + n * 1_000_000,
        )
        for n in range(count)
    ]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_one_row_per_fill_without_injection(tmp_path: Path) -> None:
    files = write_trade_report(fills(), DAY, tmp_path, Injection(), seed=1)
    assert files.csv_path.name == "trade_report_2024-09-16.csv"
    rows = read_rows(files.csv_path)
    assert list(rows[0]) == list(COLUMNS)
    assert [r["exec_id"] for r in rows] == [f"E-{n}" for n in range(10)]
    assert rows[1] == {
        "exec_id": "E-1",
        "cl_ord_id": "order-1",
        "symbol": "ACME",
        "side": "BUY",
        "qty": "11",
        "price": "100.05",
        "exec_time": "2024-09-16T03:35:00.001000Z",
    }
    sidecar = json.loads(files.breaks_path.read_text())
    assert sidecar["breaks"] == [] and sidecar["true_fills"] == 10
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_injected_breaks_are_in_the_file_and_listed_in_the_sidecar(tmp_path: Path) -> None:
    true = fills()
    files = write_trade_report(true, DAY, tmp_path, Injection(2, 1, 3), seed=5)
    rows = {r["exec_id"]: r for r in read_rows(files.csv_path)}
    breaks = json.loads(files.breaks_path.read_text())["breaks"]
    kinds = [b["kind"] for b in breaks]
    assert sorted(kinds) == sorted([KIND_DROPPED] * 2 + [KIND_CHANGED_QTY] + [KIND_EXTRA] * 3)
    by_id = {f.exec_id: f for f in true}
    for item in breaks:
        if item["kind"] == KIND_DROPPED:
            assert item["exec_id"] not in rows
        elif item["kind"] == KIND_CHANGED_QTY:
            assert int(rows[item["exec_id"]]["qty"]) == item["qty_reported"]
            assert item["qty_true"] == by_id[item["exec_id"]].qty != item["qty_reported"]
        else:
            assert item["exec_id"] in rows and item["exec_id"] not in by_id
    assert len(rows) == 10 - 2 + 3 == files.rows


def test_rewriting_a_day_gives_the_same_files(tmp_path: Path) -> None:
    first = write_trade_report(fills(), DAY, tmp_path, Injection(1, 1, 1), seed=9)
    csv_text, sidecar = first.csv_path.read_text(), first.breaks_path.read_text()
    write_trade_report(fills(), DAY, tmp_path, Injection(1, 1, 1), seed=9)
    assert first.csv_path.read_text() == csv_text and first.breaks_path.read_text() == sidecar


def test_more_breaks_than_fills_injects_what_it_can(tmp_path: Path) -> None:
    files = write_trade_report(fills(2), DAY, tmp_path, Injection(5, 5, 0), seed=1)
    # Both fills are dropped; no fill is left to change.
    assert (files.rows, files.breaks) == (0, 2)


def test_journal_round_trips_fills_by_trading_day(tmp_path: Path) -> None:
    journal = FillJournal(tmp_path, ZoneInfo("Asia/Kolkata"))
    journal.append(fills(3))
    journal.append(fills(5)[3:])
    with journal.path_for(DAY).open("a") as out:
        out.write('{"exec_id": "torn"')  # a crash mid-line
    assert journal.read_day(DAY) == fills(5)
    assert journal.read_day(date(2024, 9, 17)) == []
