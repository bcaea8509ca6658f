"""Benchmark: the nightly reconciliation of N report rows in Polars, beside pandas doing the same.

Per size, one synthetic day (bench/recon_data.py: the broker's fills in memory, the exchange's
CSV report on disk with a few injected breaks) is reconciled twice in the same run: by the
project's Polars functions (load the CSV with types enforced, compare, impacts) and by the same
steps in pandas (bench/recon_pandas.py). The figure is report rows per second; pandas is the
ceiling the ratio is taken against. Both must find the same breaks, or the run fails.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path

import pandas as pd
import polars as pl

from bench import recon_pandas
from bench.exceptions import BenchError
from bench.host import cpu_model
from bench.recon_data import Day, make_day
from bench.report import HostInfo, Result, Row, against_ceilings
from pipelines.compare import compare
from pipelines.trade_report import load_trade_report

log = logging.getLogger("bench.recon")

DAY = date(2024, 9, 16)
SEED = 20240916
GOAL_ROWS = 10_000_000
GOAL_SECONDS = 20.0
# Breaks injected per day: a handful, as on a real day.
DROPS, CHANGES, EXTRAS = 5, 5, 5


@dataclass(frozen=True)
class ReconLoad:
    """Report sizes to reconcile, one pass each."""

    sizes: tuple[int, ...] = (1_000_000, 10_000_000)


def recon_host() -> HostInfo:
    """Cores, CPU model and the versions that matter here."""
    return HostInfo(
        nproc=os.cpu_count() or 1,
        cpu_model=cpu_model(),
        versions={
            "polars": pl.__version__,
            "pandas": pd.__version__,
            "numpy": metadata.version("numpy"),
            "python": platform.python_version(),
        },
    )


def _internal_for_pandas(day: Day) -> pd.DataFrame:
    frame = day.internal.with_columns(
        (pl.col("price") * recon_pandas.SCALE).cast(pl.Int64).alias("price")
    )
    return pd.DataFrame(
        {name: frame[name].to_numpy() for name in frame.columns if name != "exec_time"}
    )


def _polars_pass(day: Day) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    loaded = load_trade_report(day.report_path)
    comparison = compare(loaded.rows, day.internal)
    elapsed = time.perf_counter() - started
    kinds = dict(comparison.breaks.group_by("kind").len().iter_rows())
    return elapsed, {str(k): int(v) for k, v in kinds.items()}


def _pandas_pass(day: Day, internal: pd.DataFrame) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    rows, _rejected = recon_pandas.load(day.report_path)
    _matched, breaks = recon_pandas.compare(rows, internal)
    elapsed = time.perf_counter() - started
    return elapsed, {str(k): int(v) for k, v in breaks["kind"].value_counts().items()}


def measure(load: ReconLoad, workdir: Path | None = None) -> list[Row]:
    """One pandas ceiling row and one Polars row per size."""
    host = recon_host()
    rows: list[Row] = []
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="bench-recon-") as folder:
        for size in load.sizes:
            log.info("recon: generating %d rows", size)
            day = make_day(
                Path(folder), size, DAY, SEED, drop=DROPS, change_qty=CHANGES, extra=EXTRAS
            )
            internal = _internal_for_pandas(day)
            expected = {"MISSING_EXTERNAL": DROPS, "QTY_MISMATCH": CHANGES}
            expected["MISSING_INTERNAL"] = EXTRAS
            log.info("recon: pandas pass")
            pandas_s, pandas_kinds = _pandas_pass(day, internal)
            del internal
            log.info("recon: polars pass")
            polars_s, polars_kinds = _polars_pass(day)
            if polars_kinds != expected or pandas_kinds != expected:
                raise BenchError(
                    f"recon {size}: expected {expected}, polars {polars_kinds},"
                    f" pandas {pandas_kinds}"
                )
            conditions = {"report_rows": size, "breaks": DROPS + CHANGES + EXTRAS}
            ceiling = Result.now(
                "recon.pandas", size / pandas_s, "rows/s", conditions, host, {"seconds": pandas_s}
            )
            mine = Result.now(
                "recon.polars", size / polars_s, "rows/s", conditions, host, {"seconds": polars_s}
            )
            rows += [Row(ceiling), Row(mine, ceiling)]
            day.report_path.unlink()
    return rows


def goals(rows: Sequence[Row]) -> list[str]:
    """The issue's goal: 10M report rows reconciled in 20 s or less."""
    lines = []
    for result, _, ratio in against_ceilings(rows):
        size = int(result.conditions["report_rows"])
        seconds = float(result.details["seconds"])
        line = f"recon {size:,} rows: {seconds:.1f} s, {ratio:.2f}x pandas"
        if size == GOAL_ROWS:
            verdict = "met" if seconds <= GOAL_SECONDS else "NOT met"
            line += f"; goal {GOAL_SECONDS:.0f} s {verdict}"
        lines.append(line)
    return lines
