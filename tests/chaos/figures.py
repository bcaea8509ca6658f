"""Per-kill figures of a chaos run: failed orders, p99 latency after the kill, time to serve again.

Written as a Markdown table (for a person) and JSON (for a program) into a given folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos.load import OrderRecord, Outcome, p99_latency_s

WINDOW_S = 10.0
MARKDOWN_NAME = "chaos_figures.md"
JSON_NAME = "chaos_figures.json"


@dataclass(frozen=True)
class KillEvent:
    """A service killed at ``killed_at`` that served again at ``served_again_at`` (epoch s)."""

    service: str
    killed_at: float
    served_again_at: float | None  # None: it never served again during the run


@dataclass(frozen=True)
class KillFigures:
    """What one kill cost the clients."""

    service: str
    killed_at: float
    failed: int  # orders in flight during the outage window that failed after every retry
    orders_in_window: int  # orders first tried in the window_s after the kill
    p99_ms_in_window: float | None  # their p99 latency; None when there were none
    serves_again_after_s: float | None  # None: never served again


def _overlaps(record: OrderRecord, start: float, end: float) -> bool:
    return record.started_at < end and record.finished_at >= start


def kill_figures(
    kills: Iterable[KillEvent], records: Sequence[OrderRecord], window_s: float = WINDOW_S
) -> list[KillFigures]:
    """The figures of each kill, in kill order.

    A failed order counts against a kill when its attempts overlap the outage: from the kill
    until the service served again, and at least ``window_s`` (a retry budget's worth).
    """
    out: list[KillFigures] = []
    for kill in sorted(kills, key=lambda k: k.killed_at):
        recovered = kill.served_again_at
        outage_end = max(kill.killed_at + window_s, recovered or kill.killed_at)
        in_window = [
            r for r in records if kill.killed_at <= r.started_at < kill.killed_at + window_s
        ]
        p99 = p99_latency_s(records, kill.killed_at, window_s)
        out.append(
            KillFigures(
                service=kill.service,
                killed_at=kill.killed_at,
                failed=sum(
                    1
                    for r in records
                    if r.outcome is Outcome.FAILED and _overlaps(r, kill.killed_at, outage_end)
                ),
                orders_in_window=len(in_window),
                p99_ms_in_window=None if p99 is None else round(p99 * 1000, 1),
                serves_again_after_s=(
                    None if recovered is None else round(recovered - kill.killed_at, 3)
                ),
            )
        )
    return out


def _utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%H:%M:%S.%f")[:-3]


def _cell(value: float | None, unit: str = "") -> str:
    return "never" if value is None and unit == "s" else ("-" if value is None else f"{value}")


def markdown_table(figures: Sequence[KillFigures], window_s: float = WINDOW_S) -> str:
    """The figures as a Markdown table, one row per kill."""
    window = f"{window_s:g} s"
    lines = [
        f"| service | killed at (UTC) | failed after retries | orders in {window} after"
        f" | p99 ms in {window} after | serves again after (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {f.service} | {_utc(f.killed_at)} | {f.failed} | {f.orders_in_window}"
        f" | {_cell(f.p99_ms_in_window)} | {_cell(f.serves_again_after_s, 's')} |"
        for f in figures
    ]
    return "\n".join(lines) + "\n"


def write_figures(
    kills: Iterable[KillEvent],
    records: Sequence[OrderRecord],
    folder: Path,
    window_s: float = WINDOW_S,
) -> tuple[Path, Path]:
    """Write the per-kill figures as Markdown and JSON under ``folder``; return both paths."""
    figures = kill_figures(kills, records, window_s)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = folder / MARKDOWN_NAME
    markdown.write_text(markdown_table(figures, window_s), encoding="utf-8")
    data = folder / JSON_NAME
    payload = {"window_s": window_s, "kills": [asdict(f) for f in figures]}
    data.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return markdown, data
