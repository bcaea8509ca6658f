"""Load the exchange's end-of-day trade report: types enforced, unparseable rows set aside.

Every column is read as text first and then cast, so one bad row never refuses the whole file:
a row whose field does not parse (or that has the wrong number of fields) goes to ``rejected``
with the reason. Rows that parse but make no sense (a negative quantity, an empty exec id) stay
in ``rows``: the asset checks are what reports them, by line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.exceptions import ReportFormatError
from pipelines.schema import MONEY, REJECTED_SCHEMA, REPORT_COLUMNS, REPORT_SCHEMA, TIME

# The header is line 1, so the first data row is line 2 (as an editor numbers it).
FIRST_DATA_LINE = 2
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
# At most 4 decimal places: casting would round a fifth silently.
PRICE_PATTERN = r"^\s*-?[0-9]+(\.[0-9]{1,4})?\s*$"


@dataclass(frozen=True, slots=True)
class LoadedReport:
    """The typed rows of a report and the rows set aside, each with its reason."""

    rows: pl.DataFrame
    rejected: pl.DataFrame


def load_trade_report(path: Path) -> LoadedReport:
    """Read one trade report CSV; raise ReportFormatError when its header is not the contract."""
    header = _header(path)
    if header != list(REPORT_COLUMNS):
        raise ReportFormatError(f"{path.name}: header {header} is not {list(REPORT_COLUMNS)}")
    raw = pl.scan_csv(
        path,
        schema=dict.fromkeys(REPORT_COLUMNS, pl.String()),
        has_header=True,
        truncate_ragged_lines=True,
        row_index_name="line",
        row_index_offset=FIRST_DATA_LINE,
    )
    return parse_rows(raw)


def parse_rows(raw: pl.LazyFrame) -> LoadedReport:
    """Cast text rows (``line`` + report columns) to the report schema, setting bad rows aside."""
    typed = raw.with_columns(
        pl.col("line").cast(pl.Int64),
        _cast("qty", pl.Int64()).alias("_qty"),
        pl.when(pl.col("price").str.contains(PRICE_PATTERN))
        .then(_cast("price", MONEY))
        .otherwise(None)
        .alias("_price"),
        pl.col("exec_time").str.strptime(TIME, TIME_FORMAT, strict=False).alias("_exec_time"),
    )
    reason = (
        pl.when(pl.col("exec_time").is_null())
        .then(pl.lit("missing fields"))
        .when(pl.col("_qty").is_null() & pl.col("qty").is_not_null())
        .then(pl.lit("qty is not a whole number"))
        .when(pl.col("_price").is_null() & pl.col("price").is_not_null())
        .then(pl.lit("price is not a decimal with at most 4 places"))
        .when(pl.col("_exec_time").is_null())
        .then(pl.lit("exec_time is not ISO 8601 UTC"))
        .otherwise(None)
        .alias("reason")
    )
    frame = typed.with_columns(reason).collect()
    bad = frame.filter(pl.col("reason").is_not_null())
    good = frame.filter(pl.col("reason").is_null())
    rows = good.select(
        "line",
        *REPORT_COLUMNS[:4],
        pl.col("_qty").alias("qty"),
        pl.col("_price").alias("price"),
        pl.col("_exec_time").alias("exec_time"),
    )
    return LoadedReport(
        rows=rows.cast(REPORT_SCHEMA),  # type: ignore[arg-type]
        rejected=bad.select(list(REJECTED_SCHEMA)).cast(REJECTED_SCHEMA),  # type: ignore[arg-type]
    )


def _cast(column: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(column).str.strip_chars().cast(dtype, strict=False)


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportFormatError(f"cannot read {path}: {exc}") from exc
    return [name.strip() for name in first.rstrip("\r\n").split(",")]
