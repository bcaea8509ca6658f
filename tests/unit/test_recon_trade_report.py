"""Loading the trade report: types enforced, unparseable rows set aside with their reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.exceptions import ReportFormatError
from pipelines.trade_report import load_trade_report

HEADER = "exec_id,cl_ord_id,symbol,side,qty,price,exec_time\n"
GOOD = "E1,o1,ACME,BUY,10,100.05,2024-09-16T03:35:00.001000Z\n"


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "trade_report_2024-09-16.csv"
    path.write_text(header + body)
    return path


def test_a_good_row_is_typed_with_its_line_number(tmp_path: Path) -> None:
    loaded = load_trade_report(write(tmp_path, GOOD))

    assert loaded.rejected.is_empty()
    row = loaded.rows.row(0, named=True)
    assert row["line"] == 2
    assert (row["qty"], row["price"]) == (10, Decimal("100.05"))
    assert row["exec_time"].isoformat() == "2024-09-16T03:35:00.001000+00:00"


def test_rows_that_do_not_parse_are_set_aside_with_the_reason(tmp_path: Path) -> None:
    body = (
        GOOD
        + "E2,o2,ACME,SELL,ten,1,2024-09-16T03:35:00.000000Z\n"
        + "E3,o3,ACME,BUY,5,1.23456,2024-09-16T03:35:00.000000Z\n"
        + "E4,o4,ACME,BUY,5,1.25,yesterday\n"
        + "E5,o5\n"
    )

    loaded = load_trade_report(write(tmp_path, body))

    assert loaded.rows["exec_id"].to_list() == ["E1"]
    assert dict(loaded.rejected.select("line", "reason").iter_rows()) == {
        3: "qty is not a whole number",
        4: "price is not a decimal with at most 4 places",
        5: "exec_time is not ISO 8601 UTC",
        6: "missing fields",
    }


def test_rows_that_parse_but_make_no_sense_are_kept_for_the_checks(tmp_path: Path) -> None:
    body = ",o2,ACME,BUY,-5,1.25,2024-09-16T03:35:00.000000Z\n"

    loaded = load_trade_report(write(tmp_path, body))

    assert loaded.rejected.is_empty()
    assert loaded.rows.select("exec_id", "qty").row(0) == (None, -5)


def test_a_file_with_another_header_is_refused_whole(tmp_path: Path) -> None:
    with pytest.raises(ReportFormatError, match="header"):
        load_trade_report(write(tmp_path, GOOD, header="id,order,symbol,side,qty,px,time\n"))
