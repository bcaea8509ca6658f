"""Candles on both back ends in one run: TimescaleDB beside plain PostgreSQL.

The bench starts two private PostgreSQL 15 clusters on free ports (``pg_ha=False``, as the tests
do; a running ``make up`` is never touched), one preloading TimescaleDB and one plain, migrates a
database in each and loads the same candles into both, as the candles agent stores them:

- ``days`` sessions (09:15-15:30 IST, every calendar day) for ``symbols`` symbols: stored 1 m
  rows for every day but the last, 1 s rows for the last day (its 1 m rows rolled up from them),
  and the 1 d rows of every day (``candles_rebuild_rollups``, migration 0017); with the defaults
  6.84M 1 m rows, 1.125M 1 s rows and 18,250 1 d rows, about 8M base rows in all;
- TimescaleDB then refreshes its continuous aggregates bottom-up over the whole range and
  compresses the chunks older than 7 days before the last day, so what is measured is the
  steady state. Its jobs are paused first: their windows are relative to now, not to the
  data's dates, and a job starting during a measurement would be noise.

Each query runs through ``candles_between`` in pgbench (one client, prepared, per-transaction
log; p99 by nearest rank), after a warm-up, ``queries`` times or, when the warm-up says that
would take longer than ``query_budget_s``, for that long (rows say how many ran). The queries:
a day of 1 m, a month of 1 h and a year of 1 d, for one symbol and for every symbol at once (one
call of the many-symbol ``candles_between``, migration 0033: the symbols as an array, one query
planned once). Both back ends answer each query identically or the row says not.

The ceiling of each query is its floor: the answer's rows, computed once and stored in a table
of their own with their key (on the plain cluster), read back in order by pgbench the same way.
No back end can answer faster than reading and sending the rows it answers, so the ratio of
each back end's p99 to the floor's is what its computing costs; a floor above 10 ms says the
goal is out of reach on this host whatever the back end. For the storage rows plain
PostgreSQL's table stands in the ceiling column as the baseline: the ratio is TimescaleDB /
plain, below 1 when TimescaleDB is smaller.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from bench.candles_query import (
    LAST_DAY,
    SESSION_OPEN_UTC,
    SESSION_SECONDS,
    pgbench_latencies_ms,
)
from bench.host import host_info
from bench.orders_api import percentile
from bench.orders_setup import free_port
from bench.report import RESULTS_DIR, HostInfo, Result, Row, against_ceilings
from bench.streams_ticks import migrated_database
from core.instruments import instrument_universe
from core.settings import Settings
from infra import postgres

log = logging.getLogger(__name__)

BENCH_DATABASE = "bench_candles_backends"
TIMESCALEDB = "timescaledb"
PLAIN = "postgresql"
# The ceiling rows: each query's answer read back from a table holding just those rows.
FLOOR = "floor"
GOAL_TIMESCALEDB_P99_MS = 10.0
# The queries TimescaleDB should answer faster than plain PostgreSQL: those reading many rows.
LONG_RANGES = ("month_of_1h", "year_of_1d")
SESSION_MINUTES = SESSION_SECONDS // 60
# Rows per load statement stay bounded: a month of days per INSERT and per rollup.
LOAD_DAYS_PER_STATEMENT = 31
COMPRESS_AFTER = timedelta(days=7)
# Each level reads the one before it (migration 0028), so they are refreshed in this order.
AGGREGATES = ("candles_5m", "candles_15m", "candles_1h", "candles_1d")
MB = 1024 * 1024
# auto_explain of a query that misses a goal: every plan, nested ones too, to the client.
EXPLAIN_SETTINGS = {
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_level": "notice",
    "client_min_messages": "notice",
}

# Prices differ per symbol and day and move within the day; volumes and trade counts vary.
_FILL_MINUTES = """
INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close, volume,
                     trade_count)
SELECT s.symbol, interval '1 minute', t.at, p.price, p.price + 0.10, p.price - 0.10,
       p.price + 0.05, 6000 + (m %% 50) * 60, 60 + m %% 7
FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz, interval '1 day') AS d,
     generate_series(0, %(minutes)s - 1) AS m,
     unnest(%(symbols)s::text[]) WITH ORDINALITY AS s (symbol, n),
     LATERAL (SELECT d + %(open)s::interval + m * interval '1 minute' AS at) AS t,
     LATERAL (SELECT (100 + 10 * s.n + extract(doy FROM d)::int %% 97 + (m %% 60) / 10.0)
                     ::numeric(18,4) AS price) AS p
ORDER BY t.at, s.n
"""
_FILL_SECONDS = """
INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close, volume,
                     trade_count)
SELECT s.symbol, interval '1 second', %(open)s::timestamptz + sec * interval '1 second',
       p.price, p.price + 0.10, p.price - 0.10, p.price + 0.05, 100 + sec %% 50, 1 + sec %% 7
FROM generate_series(0, %(seconds)s - 1) AS sec,
     unnest(%(symbols)s::text[]) WITH ORDINALITY AS s (symbol, n),
     LATERAL (SELECT (100 + 10 * s.n + (sec %% 600) / 100.0)::numeric(18,4) AS price) AS p
ORDER BY sec, s.n
"""


@dataclass(frozen=True)
class BackendsPlan:
    """Symbols and days stored, and pgbench transactions per query (after a warm-up)."""

    symbols: int = 50
    days: int = 365
    queries: int = 200
    warmup_queries: int = 5
    # Per query and back end: the slowest (plain PostgreSQL over 50 symbols) run this long
    # instead of ``queries`` times, and say how many they ran.
    query_budget_s: int = 60

    def __post_init__(self) -> None:
        figures = (self.symbols, self.days, self.queries, self.warmup_queries, self.query_budget_s)
        if min(figures) < 1:
            raise ValueError(f"every candles-backends figure must be positive: {self}")


@dataclass(frozen=True)
class Query:
    """One measured query: a range of one width, for one symbol or every symbol at once."""

    name: str
    width_sql: str
    start: datetime
    end: datetime
    all_symbols: bool

    def statement(self, symbols: Sequence[str]) -> str:
        """The SQL pgbench runs: ``candles_between`` of one symbol, or of the symbols' array."""
        between = (
            f"interval '{self.width_sql}', '{self.start.isoformat()}', '{self.end.isoformat()}'"
        )
        if not self.all_symbols:
            return f"SELECT * FROM candles_between('{symbols[0]}', {between});"
        listed = ", ".join(f"'{symbol}'" for symbol in symbols)
        return f"SELECT * FROM candles_between(ARRAY[{listed}]::text[], {between});"


@dataclass(frozen=True)
class Backend:
    """One loaded back end: its cluster, database, load times (s) and sizes (bytes)."""

    name: str
    cluster: Settings
    dsn: str
    load_s: dict[str, float] = field(default_factory=dict)
    size_bytes: dict[str, int] = field(default_factory=dict)


def queries(plan: BackendsPlan) -> list[Query]:
    """The six measured queries, each range ending with the last day stored."""
    end = LAST_DAY + timedelta(days=1)
    ranges = [
        ("day_of_1m", "1 minute", LAST_DAY),
        ("month_of_1h", "1 hour", end - timedelta(days=30)),
        ("year_of_1d", "1 day", end - timedelta(days=plan.days)),
    ]
    single = [Query(name, width, start, end, all_symbols=False) for name, width, start in ranges]
    every = [
        Query(f"{name}_x{plan.symbols}", width, start, end, all_symbols=True)
        for name, width, start in ranges
    ]
    return single + every


@contextmanager
def private_cluster(settings: Settings, root: Path, backend: str) -> Iterator[Settings]:
    """A PostgreSQL cluster of its own on a free port, stopped and removed afterwards."""
    cluster = settings.model_copy(
        update={
            "state_dir": root / backend[:2],
            "pg_port": free_port(),
            "pg_ha": False,
            "pg_timescaledb": backend == TIMESCALEDB,
        }
    )
    try:
        postgres.start(cluster)
        yield cluster
    finally:
        postgres.stop(cluster)
        home = postgres.home(cluster)
        if home.is_symlink():  # its files live outside the checkout (infra/postgres.py)
            shutil.rmtree(home.resolve(), ignore_errors=True)
        shutil.rmtree(cluster.state_dir, ignore_errors=True)


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(dsn, autocommit=True)
    # Days are added in UTC: a zone with summer time would move a session by an hour.
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def _blocks(first: datetime, days: int) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) ranges of whole days, at most LOAD_DAYS_PER_STATEMENT each."""
    for offset in range(0, days, LOAD_DAYS_PER_STATEMENT):
        span = min(LOAD_DAYS_PER_STATEMENT, days - offset)
        start = first + timedelta(days=offset)
        yield start, start + timedelta(days=span)


def fill(dsn: str, symbols: Sequence[str], days: int) -> dict[str, float]:
    """Write the candles as the agent stores them; the seconds each step took."""
    first = LAST_DAY - timedelta(days=days - 1)
    timings: dict[str, float] = {}
    with _connect(dsn) as conn:
        began = time.monotonic()
        for start, end in _blocks(first, days):
            last = min(end, LAST_DAY) - timedelta(days=1)  # the last day is written in 1 s
            if last < start:
                continue
            params: dict[str, object] = {"first": start, "last": last, "minutes": SESSION_MINUTES}
            conn.execute(
                _FILL_MINUTES, params | {"open": SESSION_OPEN_UTC, "symbols": list(symbols)}
            )
        seconds: dict[str, object] = {
            "open": LAST_DAY + SESSION_OPEN_UTC,
            "seconds": SESSION_SECONDS,
        }
        conn.execute(_FILL_SECONDS, seconds | {"symbols": list(symbols)})
        timings["insert_s"] = time.monotonic() - began
        began = time.monotonic()
        for start, end in _blocks(first, days):
            conn.execute("SELECT candles_rebuild_rollups(%s, %s)", (start, end))
        timings["rollups_s"] = time.monotonic() - began
    return timings


def pause_jobs(dsn: str) -> None:
    """Stop TimescaleDB's scheduler from starting the database's own jobs."""
    with _connect(dsn) as conn:
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
            " WHERE job_id >= 1000"  # ours; below 1000 are TimescaleDB's housekeeping
        )


def materialize(dsn: str, days: int) -> dict[str, float]:
    """Refresh every aggregate bottom-up, then compress the older chunks; seconds of each."""
    first = LAST_DAY - timedelta(days=days - 1)
    timings: dict[str, float] = {}
    with _connect(dsn) as conn:
        began = time.monotonic()
        for aggregate in AGGREGATES:
            for start, end in _blocks(first, days):
                conn.execute(
                    sql.SQL("CALL refresh_continuous_aggregate({}, {}, {})").format(
                        sql.Literal(aggregate), sql.Literal(start), sql.Literal(end)
                    )
                )
        timings["refresh_s"] = time.monotonic() - began
        began = time.monotonic()
        older_than = LAST_DAY + timedelta(days=1) - COMPRESS_AFTER
        chunks = conn.execute(
            "SELECT c::text FROM show_chunks('candles', older_than => %s::timestamptz) AS c",
            (older_than,),
        ).fetchall()
        for (chunk,) in chunks:  # one transaction each, as the compression policy does
            conn.execute("SELECT compress_chunk(%s::regclass)", (chunk,))
        timings["compress_s"] = time.monotonic() - began
    return timings


def vacuum(dsn: str) -> float:
    """VACUUM ANALYZE the candles (hint bits set, statistics fresh); the seconds it took."""
    began = time.monotonic()
    with _connect(dsn) as conn:
        conn.execute("VACUUM ANALYZE candles")
    return time.monotonic() - began


def _one_int(conn: psycopg.Connection[tuple[object, ...]], query: str) -> int:
    row = conn.execute(query).fetchone()
    if row is None:
        raise ValueError(f"no row from {query}")
    return int(str(row[0]))


def aggregate_sizes(dsn: str) -> dict[str, int]:
    """Bytes of each continuous aggregate's materialization hypertable."""
    with _connect(dsn) as conn:
        rows = conn.execute(
            "SELECT view_name, hypertable_size(format('%I.%I', materialization_hypertable_schema,"
            " materialization_hypertable_name)::regclass)"
            " FROM timescaledb_information.continuous_aggregates ORDER BY view_name"
        ).fetchall()
    return {str(name): int(str(size)) for name, size in rows}


def load_timescaledb(cluster: Settings, dsn: str, symbols: Sequence[str], days: int) -> Backend:
    """Load, materialize and compress the TimescaleDB back end, measuring its sizes."""
    pause_jobs(dsn)
    timings = fill(dsn, symbols, days)
    with _connect(dsn) as conn:
        uncompressed = _one_int(conn, "SELECT hypertable_size('candles')")
    timings |= materialize(dsn, days)
    timings["vacuum_s"] = vacuum(dsn)
    with _connect(dsn) as conn:
        compressed = _one_int(conn, "SELECT hypertable_size('candles')")
    sizes = {"uncompressed": uncompressed, "compressed": compressed} | aggregate_sizes(dsn)
    return Backend(TIMESCALEDB, cluster, dsn, timings, sizes)


def load_plain(cluster: Settings, dsn: str, symbols: Sequence[str], days: int) -> Backend:
    """Load the plain PostgreSQL back end and measure its size."""
    timings = fill(dsn, symbols, days)
    with _connect(dsn) as conn:  # as loaded, like TimescaleDB's uncompressed size
        size = _one_int(conn, "SELECT pg_total_relation_size('candles')")
    timings["vacuum_s"] = vacuum(dsn)
    return Backend(PLAIN, cluster, dsn, timings, {"table": size})


def stored_rows(dsn: str) -> dict[str, int]:
    """Stored candles per width (``rows_1m`` ...), counted on the plain back end."""
    with _connect(dsn) as conn:
        rows = conn.execute(
            "SELECT bucket_width, count(*) FROM candles GROUP BY bucket_width ORDER BY 1"
        ).fetchall()
    names = {timedelta(seconds=1): "rows_1s", timedelta(minutes=1): "rows_1m"}
    names[timedelta(days=1)] = "rows_1d"
    counts: dict[str, int] = {}
    for width, count in rows:
        key = names.get(width, str(width)) if isinstance(width, timedelta) else str(width)
        counts[key] = int(str(count))
    return counts


def answer(dsn: str, statement: str) -> list[tuple[object, ...]]:
    """The rows a statement returns, to compare the back ends' answers."""
    with _connect(dsn) as conn:
        return conn.execute(statement).fetchall()


def explain(dsn: str, statement: str) -> str:
    """The plans a statement ran, nested ones included (auto_explain, sent back as notices).

    ``candles_between`` plans its query inside (EXECUTE), which EXPLAIN of the call would not
    show; auto_explain logs each statement's plan with its actual times.
    """
    notices: list[str] = []
    with _connect(dsn) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for name, value in EXPLAIN_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        conn.execute(statement).fetchall()
    return "\n".join(notices)


def measure_statement(
    backend: Backend, name: str, statement: str, plan: BackendsPlan, workdir: Path
) -> tuple[float, dict[str, float]]:
    """p99 (ms) of a statement on one back end, and p50 and max beside it."""
    warm = pgbench_latencies_ms(
        backend.cluster, BENCH_DATABASE, f"{name}-warmup", statement, plan.warmup_queries, workdir
    )
    # A query slow enough to take longer than the budget runs for the budget instead.
    expected_s = percentile(warm, 0.5) * plan.queries / 1000
    budget_s = plan.query_budget_s if expected_s > plan.query_budget_s else None
    latencies = pgbench_latencies_ms(
        backend.cluster, BENCH_DATABASE, name, statement, plan.queries, workdir, budget_s
    )
    figures = {
        "p50_ms": percentile(latencies, 0.5),
        "max_ms": latencies[-1],
        "queries_run": len(latencies),
    }
    return percentile(latencies, 0.99), figures


def measure_query(
    backend: Backend, query: Query, symbols: Sequence[str], plan: BackendsPlan, workdir: Path
) -> tuple[float, dict[str, float]]:
    """p99 (ms) of the query on one back end, and p50 and max beside it."""
    statement = query.statement(symbols)
    return measure_statement(backend, f"{backend.name}-{query.name}", statement, plan, workdir)


def floor_statement(backend: Backend, query: Query, symbols: Sequence[str]) -> str:
    """Store the query's answer in a table of its own with its key; the read of it, in order."""
    table = sql.Identifier(f"floor_{query.name}")
    key = sql.SQL("symbol, bucket_start" if query.all_symbols else "bucket_start")
    with _connect(backend.dsn) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        answer_sql = sql.SQL(query.statement(symbols).rstrip(";"))
        conn.execute(sql.SQL("CREATE TABLE {} AS {}").format(table, answer_sql))
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(table, key))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
        return sql.SQL("SELECT * FROM {} ORDER BY {};").format(table, key).as_string(conn)


def missed(timescale: Result, plain: Result) -> bool:
    """True when TimescaleDB's p99 misses 10 ms, or a long range is not faster than plain."""
    long_range = str(timescale.conditions["query"]).split("_x")[0] in LONG_RANGES
    too_slow = timescale.value > GOAL_TIMESCALEDB_P99_MS
    return too_slow or (long_range and timescale.value >= plain.value)


def query_rows(
    backends: tuple[Backend, Backend],
    plan: BackendsPlan,
    symbols: Sequence[str],
    host: HostInfo,
    workdir: Path,
    plans: list[str],
) -> list[Row]:
    """Per query: the floor's p99 (the ceiling), then plain PostgreSQL's and TimescaleDB's.

    The plans of each query that misses a goal are appended to ``plans``.
    """
    timescale, plain = backends
    counts = stored_rows(plain.dsn)
    rows: list[Row] = []
    for query in queries(plan):
        statement = query.statement(symbols)
        answers = [answer(b.dsn, statement) for b in (timescale, plain)]
        conditions: dict[str, str | int] = {
            "query": query.name,
            "width": query.width_sql,
            "symbols_per_query": len(symbols) if query.all_symbols else 1,
            "symbols_stored": plan.symbols,
            "days_stored": plan.days,
            **counts,
            "queries": plan.queries,
            "query_budget_s": plan.query_budget_s,
            "warmup_queries": plan.warmup_queries,
            "clients": 1,
            "timing": "pgbench -M prepared, per-transaction log, p99 nearest rank",
            "same_answer": "yes" if answers[0] == answers[1] else "NO",
        }
        floor = floor_statement(plain, query, symbols)
        p99, figures = measure_statement(plain, f"{FLOOR}-{query.name}", floor, plan, workdir)
        ceiling = Result.now(
            f"{FLOOR}.candles_{query.name}_p99",
            p99,
            "ms",
            conditions | {"backend": f"{plain.name}, the answer's rows stored with their key"},
            host,
            figures | {"candles": len(answers[0])},
        )
        results = []
        for backend in (plain, timescale):
            p99, figures = measure_query(backend, query, symbols, plan, workdir)
            details = figures | {"candles": len(answers[0])}
            results.append(
                Result.now(
                    f"{backend.name}.candles_{query.name}_p99",
                    p99,
                    "ms",
                    conditions | {"backend": backend.name},
                    host,
                    details,
                )
            )
        rows += [Row(ceiling), Row(results[0], ceiling), Row(results[1], ceiling)]
        if missed(results[1], results[0]):
            for backend in (timescale, plain):
                plans.append(f"-- {backend.name} {query.name}")
                plans.append(explain(backend.dsn, statement))
    return rows


def storage_rows(backends: tuple[Backend, Backend], host: HostInfo) -> list[Row]:
    """The candles' size on disk: plain PostgreSQL's table, TimescaleDB's before and after."""
    timescale, plain = backends
    load = {f"{plain.name}_{k}": v for k, v in plain.load_s.items()}
    load |= {f"{timescale.name}_{k}": v for k, v in timescale.load_s.items()}
    aggregates = {k: v for k, v in timescale.size_bytes.items() if k in AGGREGATES}
    conditions: dict[str, str | int] = {
        "measured_by": "pg_total_relation_size (plain), hypertable_size (TimescaleDB)",
        "compression": "chunks older than 7 days, segmentby symbol+bucket_width",
    }
    baseline = Result.now(
        f"{plain.name}.candles_storage",
        plain.size_bytes["table"] / MB,
        "MB",
        conditions | {"what": "candles table with its indexes"},
        host,
        load,
    )
    measured = [
        ("candles_storage_uncompressed", timescale.size_bytes["uncompressed"], "candles, loaded"),
        ("candles_storage_compressed", timescale.size_bytes["compressed"], "candles, compressed"),
        (
            "candles_storage_with_aggregates",
            timescale.size_bytes["compressed"] + sum(aggregates.values()),
            "candles compressed + the 4 continuous aggregates",
        ),
    ]
    rows = [Row(baseline)]
    for name, size, what in measured:
        details = {f"{k}_mb": v / MB for k, v in aggregates.items()}
        result = Result.now(
            f"{timescale.name}.{name}", size / MB, "MB", conditions | {"what": what}, host, details
        )
        rows.append(Row(result, baseline))
    return rows


def _host(cluster: Settings, dsn: str) -> HostInfo:
    host = host_info(cluster)
    with _connect(dsn) as conn:
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    version = str(row[0]) if row else "not loaded"
    return replace(host, versions={**host.versions, "timescaledb": version})


def measure(settings: Settings, plan: BackendsPlan, plans_dir: Path = RESULTS_DIR) -> list[Row]:
    """Start both clusters, load them alike, then measure each query on each, and the sizes.

    The plans of the queries that miss a goal go to ``plans_dir`` (a file named in the log).
    """
    instruments = instrument_universe(plan.symbols)
    symbols = [i.symbol for i in instruments]
    # Short: the server's socket path, under it, must fit in 107 bytes.
    root = settings.state_dir / "bench" / f"cb-{uuid.uuid4().hex[:6]}"
    root.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            loaded: list[Backend] = []
            for name, load in ((TIMESCALEDB, load_timescaledb), (PLAIN, load_plain)):
                cluster = stack.enter_context(private_cluster(settings, root, name))
                dsn = stack.enter_context(migrated_database(cluster, BENCH_DATABASE, instruments))
                began = time.monotonic()
                loaded.append(load(cluster, dsn, symbols, plan.days))
                log.info(
                    "%s loaded in %.0f s (%s), bytes: %s",
                    name,
                    time.monotonic() - began,
                    loaded[-1].load_s,
                    loaded[-1].size_bytes,
                )
            backends = (loaded[0], loaded[1])
            host = _host(backends[0].cluster, backends[0].dsn)
            plans: list[str] = []
            rows = query_rows(backends, plan, symbols, host, root, plans)
            if plans:
                plans_dir.mkdir(parents=True, exist_ok=True)
                path = plans_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-candles-backends-plans.txt"
                path.write_text("\n".join(plans) + "\n", encoding="utf-8")
                log.warning("queries missed a goal; their plans are in %s", path)
            return rows + storage_rows(backends, host)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def goals(rows: Sequence[Row]) -> list[str]:
    """Every TimescaleDB p99 <= 10 ms; TimescaleDB ahead of plain on the long ranges.

    Beside each: the floor's p99 (reading the answer's rows alone), which says whether 10 ms
    is within reach on this host at all.
    """
    by_name = {row.result.name: row.result for row in rows}
    lines = []
    for result, ceiling, ratio in against_ceilings(rows):
        if not result.name.startswith(f"{TIMESCALEDB}."):
            continue
        if result.unit != "ms":
            lines.append(
                f"{result.name}: {result.value:,.0f} MB ({ratio:.2f}x plain's"
                f" {ceiling.value:,.0f} MB)"
            )
            continue
        query = str(result.conditions["query"])
        plain = by_name[f"{PLAIN}.candles_{query}_p99"]
        met = result.value <= GOAL_TIMESCALEDB_P99_MS
        line = (
            f"{result.name}: {result.value:.2f} ms ({ratio:.2f}x the floor's"
            f" {ceiling.value:.2f} ms; plain {plain.value:.2f} ms),"
            f" goal {GOAL_TIMESCALEDB_P99_MS:.0f} ms {'met' if met else 'NOT met'}"
        )
        if not met and ceiling.value > GOAL_TIMESCALEDB_P99_MS:
            line += " (the floor itself is over it on this host)"
        if query.split("_x")[0] in LONG_RANGES:
            line += f", ahead of plain {'met' if result.value < plain.value else 'NOT met'}"
        if result.conditions["same_answer"] != "yes":
            line += ", ANSWERS DIFFER between the back ends"
        lines.append(line)
    return lines
