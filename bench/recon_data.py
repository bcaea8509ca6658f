"""Synthetic trading days for the reconciliation benchmark, built vectorised in Polars.

The broker's fills and the exchange's report of them come from one frame of true fills; a
given number of fills is then dropped from the report, given another quantity, or joined by a
trade the broker never made, as the exchange simulator injects them. Both sides are ready in
seconds even at ten million rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.schema import INTERNAL_SCHEMA, MONEY, REPORT_COLUMNS, TIME

SYMBOLS = 500
USERS = 10_000
FILLS_PER_ORDER = 3
SESSION_START_UTC = time(3, 45)
SESSION_US = 6 * 3600 * 1_000_000 + 15 * 60 * 1_000_000


@dataclass(frozen=True, slots=True)
class Day:
    """One synthetic day: the broker's fills, the report file, and the breaks put into it."""

    internal: pl.DataFrame
    report_path: Path
    dropped: list[str]
    changed_qty: list[str]
    extra: list[str]


def true_fills(rows: int, day: date, seed: int) -> pl.DataFrame:
    """``rows`` fills of one day in the internal schema (``INTERNAL_SCHEMA``)."""
    start = datetime.combine(day, SESSION_START_UTC, tzinfo=UTC)
    index = pl.int_range(0, rows, dtype=pl.Int64, eager=True).alias("n")
    frame = pl.DataFrame(index).with_columns(h=pl.col("n").hash(seed))
    ticks = 1_000 + (pl.col("h") // 1_048_576) % 100_000  # cents: 10.00 .. 1009.99
    return frame.select(
        pl.format("E{}-{}", pl.lit(day.strftime("%Y%m%d")), pl.col("n")).alias("exec_id"),
        pl.format("O{}", pl.col("n") // FILLS_PER_ORDER).alias("cl_ord_id"),
        pl.format("SIM{}", (pl.col("h") % SYMBOLS).cast(pl.String).str.zfill(5)).alias("symbol"),
        pl.when((pl.col("h") // 512) % 2 == 0)
        .then(pl.lit("BUY"))
        .otherwise(pl.lit("SELL"))
        .alias("side"),
        (1 + (pl.col("h") // 1024) % 500).cast(pl.Int64).alias("qty"),
        (ticks.cast(MONEY) / 100).cast(MONEY).alias("price"),
        (pl.lit(start) + pl.duration(microseconds=(pl.col("n") * SESSION_US) // max(rows, 1)))
        .cast(TIME)
        .alias("exec_time"),
        ((pl.col("n") // FILLS_PER_ORDER) % USERS).cast(pl.Int64).alias("user_id"),
    ).cast(INTERNAL_SCHEMA)  # type: ignore[arg-type]


def make_day(
    folder: Path, rows: int, day: date, seed: int, *, drop: int, change_qty: int, extra: int
) -> Day:
    """Write the day's report into ``folder`` with the breaks asked for; return both sides."""
    internal = true_fills(rows, day, seed)
    rng = np.random.default_rng(seed)
    picked = rng.choice(rows, size=drop + change_qty, replace=False)
    dropped_at, changed_at = picked[:drop], picked[drop:]
    flags = pl.DataFrame(
        {
            "n": np.arange(rows, dtype=np.int64),
            "dropped": np.isin(np.arange(rows), dropped_at),
            "changed": np.isin(np.arange(rows), changed_at),
        }
    )
    report = (
        pl.concat([internal, flags], how="horizontal")
        .filter(~pl.col("dropped"))
        .with_columns(
            pl.when(pl.col("changed")).then(pl.col("qty") + 1).otherwise(pl.col("qty")).alias("qty")
        )
    )
    extras = true_fills(extra, day, seed + 1).with_columns(
        pl.format("XTRA-{}", pl.col("exec_id")).alias("exec_id"),
        pl.format("XO-{}", pl.col("cl_ord_id")).alias("cl_ord_id"),
    )
    written = pl.concat([report.select(REPORT_COLUMNS), extras.select(REPORT_COLUMNS)])
    path = folder / f"trade_report_{day.isoformat()}.csv"
    written.with_columns(
        pl.col("price").cast(pl.String), pl.col("exec_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    ).write_csv(path)
    exec_ids = internal["exec_id"]
    return Day(
        internal=internal,
        report_path=path,
        dropped=exec_ids.gather(dropped_at).to_list(),
        changed_qty=exec_ids.gather(changed_at).to_list(),
        extra=extras["exec_id"].to_list(),
    )
