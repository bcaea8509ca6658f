"""The comparison: every kind of break, its impacts, and the simulator's injected breaks."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from core.contracts import Side
from fixbridge.simulator.matching import Fill
from fixbridge.simulator.trade_report import Injection, write_trade_report
from pipelines.compare import compare
from pipelines.schema import INTERNAL_SCHEMA, REPORT_SCHEMA
from pipelines.trade_report import load_trade_report

T = datetime(2024, 9, 16, 4, 0, tzinfo=UTC)


def report(*rows: tuple[str, str, str, int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            (n + 2, e, f"o-{e}", s, side, q, Decimal(p), T)
            for n, (e, s, side, q, p) in enumerate(rows)
        ],
        schema=REPORT_SCHEMA,
        orient="row",
    )


def internal(*rows: tuple[str, str, str, int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [(e, f"o-{e}", s, side, q, Decimal(p), T, 7) for e, s, side, q, p in rows],
        schema=INTERNAL_SCHEMA,
        orient="row",
    )


def kinds(breaks: pl.DataFrame) -> list[tuple[str, str, Decimal, int]]:
    return sorted(breaks.select("kind", "exec_id", "cash_impact", "position_impact").rows())


def test_identical_sides_match_without_breaks() -> None:
    fills = [("E1", "ACME", "BUY", 10, "100.05"), ("E2", "ACME", "SELL", 3, "99.5")]

    result = compare(report(*fills), internal(*fills))

    assert result.matched == 2
    assert result.breaks.is_empty()


def test_each_kind_of_break_with_its_cash_and_position_impact() -> None:
    exchange = report(
        ("E1", "ACME", "BUY", 10, "100.00"),  # missing internally
        ("E3", "ACME", "BUY", 12, "100.10"),  # quantity and price differ
        ("E4", "ACME", "SELL", 5, "10.00"),  # side differs
        ("E5", "ALPHA", "BUY", 1, "10.00"),  # symbol differs
    )
    broker = internal(
        ("E2", "ACME", "SELL", 7, "3.00"),  # missing at the exchange
        ("E3", "ACME", "BUY", 10, "100.05"),
        ("E4", "ACME", "BUY", 5, "10.00"),
        ("E5", "ACME", "BUY", 1, "10.00"),
    )

    result = compare(exchange, broker)

    assert result.matched == 0
    assert kinds(result.breaks) == sorted(
        [
            ("MISSING_INTERNAL", "E1", Decimal("-1000.0000"), 10),
            # Booked a sale the exchange never made: undoing it takes the cash back, returns shares.
            ("MISSING_EXTERNAL", "E2", Decimal("-21.0000"), 7),
            ("QTY_MISMATCH", "E3", Decimal("-200.1000"), 2),
            ("PRICE_MISMATCH", "E3", Decimal("-0.6000"), 0),
            ("SIDE_MISMATCH", "E4", Decimal("100.0000"), -10),
            ("SYMBOL_MISMATCH", "E5", Decimal("0.0000"), 0),
        ]
    )


def test_a_different_cl_ord_id_is_a_break_on_both_sides() -> None:
    exchange = report(("E1", "ACME", "BUY", 10, "100.00"))
    broker = internal(("E1", "ACME", "BUY", 10, "100.00")).with_columns(cl_ord_id=pl.lit("other"))

    result = compare(exchange, broker)

    assert sorted(result.breaks["kind"].to_list()) == ["MISSING_EXTERNAL", "MISSING_INTERNAL"]


def true_fills(count: int) -> list[Fill]:
    start = int(T.timestamp()) * 1_000_000_000
    return [
        Fill(
            f"E-{n}",
            f"order-{n // 2}",
            "ACME",
            Side.BUY if n % 3 else Side.SELL,
            10 + n,
            Decimal("100.05") + n,
            start + n * 1_000_000,
        )
        for n in range(count)
    ]


def test_the_simulators_injected_breaks_are_found_exactly(tmp_path: Path) -> None:
    fills = true_fills(40)
    broker = pl.DataFrame(
        [
            (
                f.exec_id,
                f.cl_ord_id,
                f.symbol,
                f.side.value,
                f.qty,
                f.price,
                datetime.fromtimestamp(f.ts_exec_ns / 1e9, UTC),
                1,
            )
            for f in fills
        ],
        schema=INTERNAL_SCHEMA,
        orient="row",
    )
    files = write_trade_report(fills, date(2024, 9, 16), tmp_path, Injection(3, 2, 4), seed=9)
    injected = json.loads(files.breaks_path.read_text())["breaks"]
    names = {"dropped_fill": "MISSING_EXTERNAL", "changed_qty": "QTY_MISMATCH"}
    names["extra_trade"] = "MISSING_INTERNAL"
    expected = sorted((names[b["kind"]], b["exec_id"]) for b in injected)

    result = compare(load_trade_report(files.csv_path).rows, broker)

    assert sorted(result.breaks.select("kind", "exec_id").rows()) == expected
    assert result.matched == 40 - 3 - 2
