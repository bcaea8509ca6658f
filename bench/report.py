"""Benchmark records, the ratio to a ceiling, and their JSON and Markdown outputs.

Every figure the project publishes is a ratio to a ceiling measured in the same run: a raw tool
(pgbench, a bare confluent-kafka consumer) on the same machine at the same moment. A later
benchmark measures its ceiling, measures itself, and calls ``publish`` with both::

    ceiling = kafka_ceiling.measure(settings, messages=1_000_000)
    mine = Result.now("streams.candles", 123_456.0, "msgs/s", {"messages": 1_000_000}, host)
    publish([Row(ceiling), Row(mine, ceiling)], docs_path=DOCS_PATH)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

from core.settings import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
DOCS_PATH = PROJECT_ROOT / "docs" / "BENCHMARKS.md"

Scalar: TypeAlias = str | int | float
Figure: TypeAlias = int | float

TABLE_HEADER = (
    "| date (UTC) | benchmark | figure | unit | ceiling | ratio | conditions |\n"
    "| --- | --- | ---: | --- | --- | ---: | --- |\n"
)

DOCS_INTRO = """# Benchmarks

Speed is measured here, never in timed tests. The method:

- Every figure is a **ratio to a ceiling measured in the same run**, on the same machine, at the
  same moment, beside the absolute figure. A ratio survives a change of machine; an absolute
  figure alone does not.
- The ceilings are what the raw tools reach with nothing of ours in the path:
  - `pgbench.tpcb` - pgbench's built-in TPC-B-like transaction (`pgbench -i -s SCALE`, then
    `pgbench -c C -j J -T SECONDS -M prepared`) against the project's PostgreSQL;
  - `pgbench.transfer` - pgbench running `bench/sql/transfer.sql`, a money transfer between two
    wallets (rows locked in id order, two balance updates, two ledger entries summing to zero);
  - `kafka.consume` - a bare confluent-kafka consumer reading N messages of ~100 bytes from a
    12-partition topic with `consume(num_messages=..., timeout=...)` batches, its prefetch
    raised as its conditions say (the producer rate that filled the topic is recorded as
    information, not as a ceiling).
- Each ceiling row lists its conditions (clients, threads, duration, scale, messages, sizes) and
  each run heading lists the host (cores, CPU, PostgreSQL, Kafka and librdkafka versions).
- `python -m bench` measures the ceilings and appends a section below; raw JSON goes to
  `bench/results/` (not in git). A later benchmark records itself beside its ceiling with
  `bench.report.publish`.
- A ratio is `figure / ceiling` in the ceiling's unit: for throughput, 0.80 means 80 % of what
  the raw tool reaches.
"""


@dataclass(frozen=True)
class HostInfo:
    """The machine and software versions a result was measured on."""

    nproc: int
    cpu_model: str
    versions: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for a Markdown heading: cores, CPU and versions."""
        versions = ", ".join(f"{name} {version}" for name, version in sorted(self.versions.items()))
        return f"{self.nproc} cores, {self.cpu_model}; {versions}"


@dataclass(frozen=True)
class Result:
    """One measured figure with the conditions it was measured under.

    ``value`` is the headline figure in ``unit``; ``details`` holds secondary figures of the same
    measurement (latency, counts, durations) that are reported but not compared.
    """

    name: str
    value: float
    unit: str
    conditions: Mapping[str, Scalar]
    timestamp: str
    host: HostInfo
    details: Mapping[str, Figure] = field(default_factory=dict)

    @classmethod
    def now(
        cls,
        name: str,
        value: float,
        unit: str,
        conditions: Mapping[str, Scalar],
        host: HostInfo,
        details: Mapping[str, Figure] | None = None,
    ) -> Result:
        """A result stamped with the current UTC time."""
        return cls(name, value, unit, dict(conditions), utc_now(), host, dict(details or {}))


# A ceiling is a result measured by a raw tool; the alias names the role, not another shape.
Ceiling: TypeAlias = Result


def utc_now() -> str:
    """The current UTC time in ISO 8601, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def ratio(result: Result, ceiling: Ceiling) -> float:
    """The measured figure as a fraction of its ceiling (same unit required)."""
    if result.unit != ceiling.unit:
        raise ValueError(f"cannot compare {result.unit!r} with a ceiling in {ceiling.unit!r}")
    if not (math.isfinite(ceiling.value) and ceiling.value > 0):
        raise ValueError(f"ceiling {ceiling.name} must be a positive figure, got {ceiling.value}")
    return result.value / ceiling.value


@dataclass(frozen=True)
class Row:
    """A result as published: a ceiling alone, or a benchmark beside its ceiling."""

    result: Result
    ceiling: Ceiling | None = None

    @property
    def ratio(self) -> float | None:
        """The ratio to the ceiling, or ``None`` for a ceiling row."""
        return None if self.ceiling is None else ratio(self.result, self.ceiling)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: the result, its ceiling's name and value, and the ratio."""
        out: dict[str, object] = {"result": asdict(self.result), "ratio": self.ratio}
        if self.ceiling is not None:
            out["ceiling"] = {"name": self.ceiling.name, "value": self.ceiling.value}
        return out


def against_ceilings(rows: Iterable[Row]) -> Iterator[tuple[Result, Ceiling, float]]:
    """Each measured row's result, its ceiling and their ratio; ceiling rows are left out."""
    for row in rows:
        if row.ceiling is not None:
            yield row.result, row.ceiling, ratio(row.result, row.ceiling)


def format_figure(value: float) -> str:
    """A figure with thousands separators and precision that suits its size."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.3f}"


def _format_scalar(value: Scalar) -> str:
    if isinstance(value, float):
        return format_figure(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:_}"
    return str(value)


def format_conditions(conditions: Mapping[str, Scalar]) -> str:
    """``key=value`` pairs in the order given, separated by commas."""
    return ", ".join(f"{key}={_format_scalar(value)}" for key, value in conditions.items())


def markdown_row(row: Row) -> str:
    """One Markdown table row: date, benchmark, figure, unit, ceiling, ratio, conditions."""
    result = row.result
    if row.ceiling is None:
        ceiling_cell, ratio_cell = "(is the ceiling)", "1.00"
    else:
        ceiling_cell = f"{row.ceiling.name} = {format_figure(row.ceiling.value)}"
        ratio_cell = f"{row.ratio:.2f}"
    conditions = format_conditions(result.conditions)
    if result.details:
        conditions += "; measured: " + format_conditions(result.details)
    cells = [
        result.timestamp.replace("+00:00", "Z"),
        f"`{result.name}`",
        format_figure(result.value),
        result.unit,
        ceiling_cell,
        ratio_cell,
        conditions.replace("|", "\\|"),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown_section(rows: Sequence[Row], title: str) -> str:
    """A run's heading (with its host), the table header and one line per row."""
    if not rows:
        raise ValueError("a section needs at least one row")
    host = rows[0].result.host.describe()
    lines = [f"## {title}", "", f"Host: {host}", "", TABLE_HEADER.rstrip("\n")]
    lines += [markdown_row(row) for row in rows]
    return "\n".join(lines) + "\n"


def append_markdown(rows: Sequence[Row], docs_path: Path, title: str) -> None:
    """Append a run's section to the benchmarks page, creating the page with its intro."""
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    if not docs_path.exists():
        docs_path.write_text(DOCS_INTRO, encoding="utf-8")
    with docs_path.open("a", encoding="utf-8") as out:
        out.write("\n" + markdown_section(rows, title))


def write_json(rows: Sequence[Row], results_dir: Path, label: str) -> Path:
    """Write a run's rows to ``results_dir/<UTC time>-<label>.json``; return the path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"{stamp}-{label}.json"
    payload = {"label": label, "rows": [row.to_json() for row in rows]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def publish(
    rows: Sequence[Row],
    *,
    label: str,
    results_dir: Path = RESULTS_DIR,
    docs_path: Path | None = DOCS_PATH,
) -> Path:
    """Record a run: JSON under ``results_dir`` always, a Markdown section unless no docs path."""
    path = write_json(rows, results_dir, label)
    if docs_path is not None:
        append_markdown(rows, docs_path, title=f"{utc_now().replace('+00:00', 'Z')} {label}")
    return path
