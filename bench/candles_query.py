"""Candles query p99: one day of 1m candles and one year of 1d candles, API beside pgbench.

A fresh database (bench_candles) holds ``days`` sessions of candles for one symbol (09:15 to
15:30 IST), laid out as the candles agent writes them: 22,500 1 s rows a day, and their stored
1 m (375) and 1 d (1) rollups (SQL: candles_rebuild_rollups, migration 0017). For each query:

- ceiling: pgbench (-c 1, -t queries, per-transaction log) running the same SQL the API runs,
  ``SELECT * FROM candles_between(...)``: the database's own cost, no HTTP, no Python;
- result: GET /v1/market/candles through a real API process (``python -m api``), one request at
  a time over one keep-alive connection, timed at the client; p99 = nearest rank.
The ratio is API p99 / pgbench p99 (lower is better; >= 1 by construction).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from api.security.tokens import issue_access_token
from bench.orders_api import percentile
from bench.orders_setup import api_server_process, free_port, served_settings
from bench.pg_ceiling import _run_pgbench
from bench.report import HostInfo, Result, Row, against_ceilings
from bench.streams_ticks import migrated_database
from core.instruments import instrument_universe
from core.settings import Settings

log = logging.getLogger(__name__)

BENCH_DATABASE = "bench_candles"
GOAL_DAY_OF_1M_P99_MS = 10.0
# Fewer runs of a year of 1d (it was the slow one when it read every 1 s row).
YEAR_QUERIES_SHARE = 200
SESSION_OPEN_UTC = timedelta(hours=3, minutes=45)  # 09:15 IST
SESSION_SECONDS = 22_500  # 09:15 - 15:30
LAST_DAY = datetime(2026, 9, 18, tzinfo=UTC)
PGBENCH_TIMEOUT_S = 3_600.0

# One INSERT per day keeps each statement's memory small.
_FILL_DAY = """
INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close, volume,
                     trade_count)
SELECT %(symbol)s, interval '1 second', %(open)s + s * interval '1 second',
       p, p + 0.10, p - 0.10, p + 0.05, 100 + s %% 50, 1 + s %% 7
FROM generate_series(0, %(seconds)s - 1) AS s,
     LATERAL (SELECT (1000 + %(day)s %% 97 + (s %% 600) / 100.0)::numeric(18,4) AS p) AS price
"""
_ROLLUP_DAY = "SELECT candles_rebuild_rollups(%(open)s, %(open)s + interval '1 second')"


@dataclass(frozen=True)
class CandlesPlan:
    """Queries per measurement and the days of candles stored."""

    queries: int = 2_000
    days: int = 365

    def __post_init__(self) -> None:
        if min(self.queries, self.days) < 1:
            raise ValueError(f"queries and days must be positive: {self}")


@dataclass(frozen=True)
class Query:
    """One measured query: its name, the API's parameters and the same SQL."""

    name: str
    interval: str
    width_sql: str
    start: datetime
    end: datetime


def fill(dsn: str, symbol: str, days: int) -> int:
    """Write ``days`` sessions (1 s rows, their 1 m and 1 d rollups); returns the 1 s rows."""
    with psycopg.connect(dsn) as conn:
        for day in range(days):
            session = LAST_DAY - timedelta(days=days - 1 - day) + SESSION_OPEN_UTC
            params = {"symbol": symbol, "open": session, "seconds": SESSION_SECONDS, "day": day}
            conn.execute(_FILL_DAY, params)
            conn.execute(_ROLLUP_DAY, params)
            conn.commit()
        conn.execute("ANALYZE candles")
    return days * SESSION_SECONDS


def pgbench_latencies_ms(
    settings: Settings,
    database: str,
    name: str,
    statement: str,
    queries: int,
    workdir: Path,
    duration_s: int | None = None,
) -> list[float]:
    """Run ``statement`` in pgbench (one client, prepared) ``queries`` times, or for
    ``duration_s`` when given; the latency of each run in ms, sorted."""
    script = workdir / f"{name}.sql"
    script.write_text(statement + "\n")
    prefix = workdir / f"pgbench-{name}"
    limit = ["-t", str(queries)] if duration_s is None else ["-T", str(duration_s)]
    args = ["-n", "-c", "1", *limit, "-M", "prepared", "-f", str(script)]
    args += ["--log", f"--log-prefix={prefix}", database]
    _run_pgbench(settings, args, PGBENCH_TIMEOUT_S)
    latencies: list[float] = []
    for path in workdir.glob(f"pgbench-{name}.*"):
        for line in path.read_text().splitlines():
            latencies.append(int(line.split()[2]) / 1000)  # column 3: latency in microseconds
    return sorted(latencies)


def pgbench_p99(
    settings: Settings, query: Query, symbol: str, queries: int, workdir: Path
) -> float:
    """p99 (ms) of pgbench running the API's SQL, from its per-transaction log."""
    statement = (
        f"SELECT * FROM candles_between('{symbol}', interval '{query.width_sql}',"
        f" '{query.start.isoformat()}', '{query.end.isoformat()}');"
    )
    latencies = pgbench_latencies_ms(
        settings, BENCH_DATABASE, query.name, statement, queries, workdir
    )
    return percentile(latencies, 0.99)


def api_p99(url: str, token: str, query: Query, symbol: str, queries: int) -> tuple[float, int]:
    """p99 (ms) of GET /v1/market/candles, and the candles one answer holds."""
    params: dict[str, str | int] = {
        "symbol": symbol,
        "interval": query.interval,
        "start": query.start.isoformat(),
        "end": query.end.isoformat(),
        "limit": 5_000,
    }
    latencies: list[float] = []
    count = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(queries):
            began = time.perf_counter()
            answer = http.get("/v1/market/candles", params=params)
            latencies.append((time.perf_counter() - began) * 1000)
            answer.raise_for_status()
            count = len(answer.json()["candles"])
    return percentile(sorted(latencies), 0.99), count


def measure(settings: Settings, host: HostInfo, plan: CandlesPlan) -> list[Row]:
    """Fill the database, then per query: the pgbench ceiling and the API beside it."""
    instrument = instrument_universe(1)[0]
    workdir = settings.state_dir / "bench" / f"candles-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True, exist_ok=True)
    day = LAST_DAY + SESSION_OPEN_UTC
    queries = [
        Query("day_of_1m", "1m", "1 minute", LAST_DAY, LAST_DAY + timedelta(days=1)),
        Query(
            "year_of_1d",
            "1d",
            "1 day",
            LAST_DAY - timedelta(days=plan.days - 1),
            LAST_DAY + timedelta(days=1),
        ),
    ]
    rows: list[Row] = []
    with migrated_database(settings, BENCH_DATABASE, [instrument]) as dsn:
        started = time.monotonic()
        stored = fill(dsn, instrument.symbol, plan.days)
        log.info(
            "%d 1 s candles (and their 1 m and 1 d rollups) written in %.0f s (session of %s)",
            stored,
            time.monotonic() - started,
            day,
        )
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "INSERT INTO users (email, password_hash) VALUES ('candles@bench.local', 'b')"
                " RETURNING id"
            ).fetchone()
        assert row is not None
        served = served_settings(settings, BENCH_DATABASE, pool_size_max=4).model_copy(
            update={"api_port": free_port()}
        )
        token = issue_access_token(served, int(row[0]), two_factor=False)
        with api_server_process(served, workdir / "api.log"):
            url = f"http://{served.api_host}:{served.api_port}"
            logging.getLogger("httpx").setLevel(logging.WARNING)
            for query in queries:
                runs = (
                    plan.queries
                    if query.name == "day_of_1m"
                    else max(10, plan.queries // YEAR_QUERIES_SHARE)
                )
                conditions: dict[str, str | int] = {
                    "query": query.name,
                    "days_stored": plan.days,
                    "rows_1s_stored": stored,
                    "stored_widths": "1s,1m,1d",
                    "queries": runs,
                    "clients": 1,
                }
                floor = pgbench_p99(settings, query, instrument.symbol, runs, workdir)
                ceiling = Result.now(
                    f"pgbench.candles_{query.name}_p99", floor, "ms", conditions, host
                )
                p99, candles = api_p99(url, token, query, instrument.symbol, runs)
                result = Result.now(
                    f"api.candles_{query.name}_p99",
                    p99,
                    "ms",
                    conditions,
                    host,
                    {"candles": candles},
                )
                rows += [Row(ceiling), Row(result, ceiling)]
    return rows


def goals(rows: Sequence[Row]) -> list[str]:
    """The issue's goal: one day of 1m candles in <= 10 ms at p99; a year of 1d reported."""
    lines = []
    for r, ceiling, ratio in against_ceilings(rows):
        goal = ""
        if "day_of_1m" in r.name:
            met = r.value <= GOAL_DAY_OF_1M_P99_MS
            goal = f", goal {GOAL_DAY_OF_1M_P99_MS:.0f} ms {'met' if met else 'NOT met'}"
        lines.append(
            f"{r.name}: {r.value:.1f} ms ({ratio:.2f}x pgbench's {ceiling.value:.1f} ms){goal}"
        )
    return lines
