"""The exchange's own record of every fill, one JSON line per fill, one file per trading day.

The end-of-day trade report is built from this journal, not from memory, so a simulator that
restarts mid-day still reports every fill of the day. A torn last line (a crash mid-write) is
skipped when read back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from core.contracts.enums import Side
from core.timestamps import utc_of_ns
from fixbridge.simulator.matching import Fill

log = logging.getLogger(__name__)


def trading_day(ts_ns: int, tz: ZoneInfo) -> date:
    """The exchange's calendar date of an instant (exchange time zone)."""
    return utc_of_ns(ts_ns).astimezone(tz).date()


class FillJournal:
    """Appends fills to ``<folder>/<YYYY-MM-DD>.jsonl`` by their trading day; thread-safe."""

    def __init__(self, folder: Path, tz: ZoneInfo) -> None:
        self._folder = folder
        self._tz = tz
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, day: date) -> Path:
        """The journal file of ``day``."""
        return self._folder / f"{day.isoformat()}.jsonl"

    def append(self, fills: Iterable[Fill]) -> None:
        """Write ``fills`` durably enough for a restart (flushed, not fsynced per fill)."""
        by_day: dict[date, list[str]] = {}
        for fill in fills:
            line = json.dumps(
                {
                    "exec_id": fill.exec_id,
                    "cl_ord_id": fill.cl_ord_id,
                    "symbol": fill.symbol,
                    "side": fill.side.value,
                    "qty": fill.qty,
                    "price": str(fill.price),
                    "ts_exec_ns": fill.ts_exec_ns,
                }
            )
            by_day.setdefault(trading_day(fill.ts_exec_ns, self._tz), []).append(line)
        with self._lock:
            for day, lines in by_day.items():
                with self.path_for(day).open("a", encoding="utf-8") as out:
                    out.write("\n".join(lines) + "\n")

    def read_day(self, day: date) -> list[Fill]:
        """Every fill journaled for ``day``, in the order they happened."""
        path = self.path_for(day)
        if not path.exists():
            return []
        with self._lock:
            text = path.read_text(encoding="utf-8")
        fills: list[Fill] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                fills.append(
                    Fill(
                        exec_id=row["exec_id"],
                        cl_ord_id=row["cl_ord_id"],
                        symbol=row["symbol"],
                        side=Side(row["side"]),
                        qty=int(row["qty"]),
                        price=Decimal(row["price"]),
                        ts_exec_ns=int(row["ts_exec_ns"]),
                    )
                )
            except (ValueError, KeyError) as exc:
                log.warning("skipping journal line %s:%d: %s", path, number, exc)
        return fills
