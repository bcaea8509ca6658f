"""The Great Expectations suites: they pass on good data and name the rows that break them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl

from pipelines import expectations
from pipelines.candles import CANDLE_SCHEMA, minute_gaps, price_ranges
from pipelines.schema import REJECTED_SCHEMA, REPORT_SCHEMA

T = datetime(2024, 9, 16, 4, 0, tzinfo=UTC)


def report(*rows: tuple[str | None, int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [(n + 2, e, "o", "ACME", "BUY", q, Decimal(p), T) for n, (e, q, p) in enumerate(rows)],
        schema=REPORT_SCHEMA,
        orient="row",
    )


def lines(outcome: expectations.CheckOutcome) -> set[str]:
    return {row["line"] for failure in outcome.failures for row in failure.rows if "line" in row}


def test_good_report_passes_every_suite() -> None:
    rows = report(("E1", 10, "100.00"), ("E2", 5, "101.00"))
    no_rejects = pl.DataFrame(schema=REJECTED_SCHEMA)

    assert expectations.report_schema(rows, no_rejects).passed
    assert expectations.report_keys(rows).passed
    assert expectations.report_positive(rows).passed


def test_a_missing_exec_id_fails_the_key_suite_naming_its_line() -> None:
    outcome = expectations.report_keys(report(("E1", 10, "1.00"), (None, 10, "1.00")))

    assert not outcome.passed
    assert lines(outcome) == {"3"}


def test_a_negative_quantity_and_a_zero_price_fail_naming_their_lines() -> None:
    rows = report(("E1", 10, "1.00"), ("E2", -4, "1.00"), ("E3", 1, "0"))

    outcome = expectations.report_positive(rows)

    assert not outcome.passed
    assert lines(outcome) == {"3", "4"}


def test_rows_set_aside_fail_the_schema_suite_with_their_reason() -> None:
    rejected = pl.DataFrame(
        [(7, "E9", "o", "ACME", "BUY", "x", "1", "t", "qty is not a whole number")],
        schema=REJECTED_SCHEMA,
        orient="row",
    )

    outcome = expectations.report_schema(report(("E1", 1, "1.00")), rejected)

    assert not outcome.passed
    assert outcome.failures[-1].rows == [{"line": "7", "reason": "qty is not a whole number"}]


def candles(*rows: tuple[int, str, str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            ("ACME", T.replace(minute=m), Decimal(o), Decimal(h), Decimal(lo), Decimal(c))
            for m, o, h, lo, c in rows
        ],
        schema=CANDLE_SCHEMA,
        orient="row",
    )


def test_a_price_outside_the_days_candles_fails_naming_its_line() -> None:
    day = candles((0, "10", "12", "9", "11"), (1, "11", "13", "10", "12"))

    outcome = expectations.report_within_candles(
        report(("E1", 1, "12.50"), ("E2", 1, "13.50"), ("E3", 1, "8.99")), price_ranges(day)
    )

    assert lines(outcome) == {"3", "4"}


def test_a_candle_whose_high_is_below_its_close_fails() -> None:
    outcome = expectations.candles_consistent(candles((0, "10", "10.5", "9", "11")))

    assert not outcome.passed
    assert outcome.failures[0].rows[0]["symbol"] == "ACME"


def test_a_missing_minute_in_the_session_is_a_gap() -> None:
    day = candles(
        (0, "10", "11", "9", "10"), (1, "10", "11", "9", "10"), (3, "10", "11", "9", "10")
    )
    session = (T, T.replace(hour=10))

    outcome = expectations.candles_without_gaps(minute_gaps(day, *session))
    whole = expectations.candles_without_gaps(minute_gaps(day.head(2), *session))

    assert not outcome.passed
    assert outcome.failures[0].unexpected_count == 1
    assert whole.passed
