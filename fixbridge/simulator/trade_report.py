"""The end-of-day trade report: a CSV per trading day in the landing folder, with known breaks.

One row per execution: ``exec_id, cl_ord_id, symbol, side, qty, price, exec_time`` (ISO 8601,
UTC, microseconds). Discrepancies can be injected on purpose (a dropped fill, a changed quantity,
an extra trade) so the reconciliation has something to find; what was injected is written to a
sidecar ``<report>.breaks.json``. Both files are written whole (temporary file, then rename), the
sidecar first, so a reader that sees the CSV also sees its sidecar. The injection is seeded by the
day, so writing a day's report again gives the same file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from core.contracts.enums import Side
from core.timestamps import utc_of_ns
from fixbridge.exceptions import TradeReportError
from fixbridge.simulator.matching import Fill

COLUMNS = ("exec_id", "cl_ord_id", "symbol", "side", "qty", "price", "exec_time")
KIND_DROPPED = "dropped_fill"
KIND_CHANGED_QTY = "changed_qty"
KIND_EXTRA = "extra_trade"
# The price of an extra trade on a day without any real fill to copy.
EXTRA_PRICE_DEFAULT = Decimal("100.00")


@dataclass(frozen=True, slots=True)
class Injection:
    """How many discrepancies of each kind to put into a report."""

    drop_fills: int = 0
    change_qty: int = 0
    extra_trades: int = 0

    @property
    def any(self) -> bool:
        """Whether anything is to be injected."""
        return self.drop_fills + self.change_qty + self.extra_trades > 0


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where a day's report and its sidecar were written, and what they hold."""

    csv_path: Path
    breaks_path: Path
    rows: int
    breaks: int


def report_path(folder: Path, day: date) -> Path:
    """The trade report file of ``day``."""
    return folder / f"trade_report_{day.isoformat()}.csv"


def breaks_path(csv_path: Path) -> Path:
    """The sidecar listing the injected breaks of a report."""
    return csv_path.with_suffix(".breaks.json")


def exec_time(ts_ns: int) -> str:
    """An execution time as ISO 8601 UTC with microseconds, e.g. 2024-09-16T03:45:00.123456Z."""
    return utc_of_ns(ts_ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _row(fill: Fill) -> dict[str, str]:
    return {
        "exec_id": fill.exec_id,
        "cl_ord_id": fill.cl_ord_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": str(fill.qty),
        "price": str(fill.price),
        "exec_time": exec_time(fill.ts_exec_ns),
    }


def inject(
    fills: Sequence[Fill], injection: Injection, day: date, seed: int
) -> tuple[list[Fill], list[dict[str, object]]]:
    """Apply ``injection`` to the true fills; return the reported fills and the breaks made."""
    rng = random.Random(f"{seed}:{day.isoformat()}")  # noqa: S311 - test data, not secrets
    picked = rng.sample(
        range(len(fills)), min(len(fills), injection.drop_fills + injection.change_qty)
    )
    dropped = set(picked[: injection.drop_fills])
    changed = set(picked[injection.drop_fills :])
    reported: list[Fill] = []
    breaks: list[dict[str, object]] = []
    for index, fill in enumerate(fills):
        if index in dropped:
            breaks.append({"kind": KIND_DROPPED, "exec_id": fill.exec_id, "expected": _row(fill)})
        elif index in changed:
            wrong = _replace_qty(fill, fill.qty + 1 + rng.randrange(fill.qty))
            reported.append(wrong)
            breaks.append(
                {
                    "kind": KIND_CHANGED_QTY,
                    "exec_id": fill.exec_id,
                    "qty_true": fill.qty,
                    "qty_reported": wrong.qty,
                }
            )
        else:
            reported.append(fill)
    for number in range(injection.extra_trades):
        extra = _extra_trade(fills, day, number, rng)
        reported.append(extra)
        breaks.append({"kind": KIND_EXTRA, "exec_id": extra.exec_id, "reported": _row(extra)})
    return reported, breaks


def _replace_qty(fill: Fill, qty: int) -> Fill:
    return Fill(
        fill.exec_id, fill.cl_ord_id, fill.symbol, fill.side, qty, fill.price, fill.ts_exec_ns
    )


def _extra_trade(fills: Sequence[Fill], day: date, number: int, rng: random.Random) -> Fill:
    """A trade the broker never made: an unknown ClOrdID, on a symbol and price seen that day."""
    model = rng.choice(fills) if fills else None
    midday_ns = int(datetime(day.year, day.month, day.day, 6, tzinfo=UTC).timestamp()) * 10**9
    return Fill(
        exec_id=f"XTRA-{day.strftime('%Y%m%d')}-{number + 1}",
        cl_ord_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        symbol=model.symbol if model else "SIM00000",
        side=model.side if model else Side.BUY,
        qty=1 + rng.randrange(100),
        price=model.price if model else EXTRA_PRICE_DEFAULT,
        ts_exec_ns=model.ts_exec_ns + 1 if model else midday_ns,
    )


def _write_atomic(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` whole: a temporary file in the same folder, fsync, rename."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_trade_report(
    fills: Sequence[Fill], day: date, folder: Path, injection: Injection, seed: int
) -> ReportFiles:
    """Write the day's report (with any injected breaks) and its sidecar into ``folder``."""
    reported, breaks = inject(fills, injection, day, seed)
    csv_path = report_path(folder, day)
    sidecar = breaks_path(csv_path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_row(fill) for fill in reported)
    meta = {
        "trading_day": day.isoformat(),
        "report": csv_path.name,
        "rows": len(reported),
        "true_fills": len(fills),
        "seed": seed,
        "requested": {
            "drop_fills": injection.drop_fills,
            "change_qty": injection.change_qty,
            "extra_trades": injection.extra_trades,
        },
        "breaks": breaks,
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(sidecar, json.dumps(meta, indent=2) + "\n")
        _write_atomic(csv_path, buffer.getvalue())
    except OSError as exc:
        raise TradeReportError(f"cannot write the trade report into {folder}: {exc}") from exc
    return ReportFiles(csv_path, sidecar, len(reported), len(breaks))
