"""The summary for ops (counts, value at risk, largest breaks) and the Parquet beside it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.compare import compare
from pipelines.report import value_at_risk, write_report
from pipelines.schema import INTERNAL_SCHEMA, REPORT_SCHEMA

T = datetime(2024, 9, 16, 4, 0, tzinfo=UTC)
DAY = date(2024, 9, 16)


def sides() -> tuple[pl.DataFrame, pl.DataFrame]:
    exchange = pl.DataFrame(
        [
            (2, "E1", "o1", "ACME", "BUY", 10, Decimal("100.00"), T),
            (3, "E2", "o2", "ACME", "BUY", 1, Decimal("5.00"), T),
        ],
        schema=REPORT_SCHEMA,
        orient="row",
    )
    broker = pl.DataFrame(
        [("E2", "o2", "ACME", "BUY", 2, Decimal("5.00"), T, 1)],
        schema=INTERNAL_SCHEMA,
        orient="row",
    )
    return exchange, broker


def test_summary_counts_kinds_and_lists_the_largest_break_first(tmp_path: Path) -> None:
    comparison = compare(*sides())

    files = write_report(tmp_path, DAY, comparison, rejected_rows=4, top_limit=1)

    text = files.summary_path.read_text()
    assert "| MISSING_INTERNAL | 1 |" in text and "| QTY_MISMATCH | 1 |" in text
    assert "| SIDE_MISMATCH | 0 |" in text
    assert "value at risk (sum of |cash impact|): 1005.0000" in text
    assert "set aside (unparseable): 4" in text
    top = text.split("## Top 1 breaks")[1]
    assert "E1" in top and "E2" not in top
    assert pl.read_parquet(files.breaks_path).height == 2


def test_a_day_without_breaks_says_so(tmp_path: Path) -> None:
    exchange, _ = sides()
    broker = exchange.drop("line").with_columns(user_id=pl.lit(1, pl.Int64))

    comparison = compare(exchange, broker)
    files = write_report(tmp_path, DAY, comparison, rejected_rows=0, top_limit=5)

    assert value_at_risk(comparison.breaks) == Decimal(0)
    assert "No breaks." in files.summary_path.read_text()
