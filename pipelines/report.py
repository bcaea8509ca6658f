"""The reconciliation's outputs for people: a Parquet of every break and a Markdown summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.compare import Comparison
from pipelines.schema import MONEY, BreakKind


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where the day's breaks and summary were written."""

    breaks_path: Path
    summary_path: Path


def value_at_risk(breaks: pl.DataFrame) -> Decimal:
    """The sum of the absolute cash impacts of every break."""
    if breaks.is_empty():
        return Decimal(0)
    total = breaks.select(pl.col("cash_impact").abs().sum().cast(MONEY)).item()
    return Decimal(total)


def counts_by_kind(breaks: pl.DataFrame) -> dict[str, int]:
    """Breaks per kind, every kind listed (zero included)."""
    found = dict(breaks.group_by("kind").len().iter_rows())
    return {kind.value: int(found.get(kind.value, 0)) for kind in BreakKind}


def top_breaks(breaks: pl.DataFrame, limit: int) -> pl.DataFrame:
    """The ``limit`` breaks of largest absolute cash impact."""
    return breaks.sort(pl.col("cash_impact").abs(), descending=True, nulls_last=True).head(limit)


def summary_markdown(day: date, comparison: Comparison, rejected_rows: int, top_limit: int) -> str:
    """A summary ops can act on: counts per kind, value at risk, the largest breaks."""
    breaks = comparison.breaks
    lines = [
        f"# Reconciliation {day.isoformat()}",
        "",
        f"- matched fills: {comparison.matched}",
        f"- breaks: {breaks.height}",
        f"- report rows set aside (unparseable): {rejected_rows}",
        f"- value at risk (sum of |cash impact|): {value_at_risk(breaks)}",
        "",
        "| kind | breaks |",
        "| --- | ---: |",
        *(f"| {kind} | {count} |" for kind, count in counts_by_kind(breaks).items()),
        "",
        f"## Top {top_limit} breaks by cash impact",
        "",
    ]
    top = top_breaks(breaks, top_limit)
    if top.is_empty():
        lines.append("No breaks.")
    else:
        lines += [
            "| kind | exec id | ClOrdID | exchange | broker | cash impact | position impact |",
            "| --- | --- | --- | --- | --- | ---: | ---: |",
        ]
        for row in top.iter_rows(named=True):
            lines.append(
                f"| {row['kind']} | {row['exec_id']} | {row['cl_ord_id']} | {_side(row, 'ex_')}"
                f" | {_side(row, 'in_')} | {row['cash_impact']} | {row['position_impact']} |"
            )
    return "\n".join(lines) + "\n"


def _side(row: dict[str, object], prefix: str) -> str:
    if row[f"{prefix}qty"] is None:
        return "-"
    side, qty, symbol, price = (row[prefix + name] for name in ("side", "qty", "symbol", "price"))
    return f"{side} {qty} {symbol} @ {price}"


def write_report(
    folder: Path, day: date, comparison: Comparison, rejected_rows: int, top_limit: int
) -> ReportFiles:
    """Write ``breaks_<day>.parquet`` and ``summary_<day>.md`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    breaks_path = folder / f"breaks_{day.isoformat()}.parquet"
    summary_path = folder / f"summary_{day.isoformat()}.md"
    comparison.breaks.write_parquet(breaks_path)
    summary_path.write_text(
        summary_markdown(day, comparison, rejected_rows, top_limit), encoding="utf-8"
    )
    return ReportFiles(breaks_path, summary_path)
