"""Orders through the HTTP API beside pgbench running the same SQL, on the same database.

For each concurrency level C, in one run:

- the API (``python -m api``, its own process) takes ``POST /v1/orders`` LIMIT BUYs from C
  closed-loop clients (bench/orders_http.py: HTTP/1.1 keep-alive, one connection per client),
  each request with a fresh ``X-Idempotency-Key``, users taken round-robin so that concurrent
  requests lock different wallets; figures: orders/s (2xx only) and p50/p90/p99 latency;
- pgbench runs ``bench/sql/place_order.sql`` (the same call of ``order_place`` the API sends
  for one order, alone in autocommit mode) with C clients, prepared statements,
  for the same duration;
- pgbench runs ``bench/sql/lean_order.sql`` (bench/orders_lean.py: the fewest statements that
  keep the design's guarantees) the same way: the ceiling, in orders/s. Both figures above are
  reported as ratios to it.

Then a paced pass sends orders at half of the API's peak rate (open loop, latency measured from
each request's scheduled time, so a stall is not hidden) to report p99 at half of peak load.
Any non-2xx answer fails the run, and every invariant query must be empty afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop

from bench import orders_lean
from bench.exceptions import BenchError
from bench.orders_history import History
from bench.orders_http import Answer, Connection, HttpError, encode_request
from bench.orders_setup import (
    BENCH_SYMBOL,
    BenchDatabase,
    BenchUser,
    api_server,
    bench_database,
    free_port,
    invariant_violations,
)
from bench.pg_ceiling import PgbenchLoad
from bench.report import Ceiling, HostInfo, Result, Row
from core.settings import Settings

log = logging.getLogger(__name__)

PLACE_ORDER_SCRIPT = Path(__file__).resolve().parent / "sql" / "place_order.sql"
ORDERS_PATH = "/v1/orders"
UNIT = "orders/s"
PLACE_NAME = "pgbench.place_order"
API_NAME = "api.orders"
HALF_PEAK_NAME = "api.orders.half_peak"
SYMBOL = BENCH_SYMBOL
PRICE = Decimal("100.00")  # on ACME's 0.05 tick
QUANTITY = 1
ORDER_BODY = b'{"symbol":"ACME","side":"BUY","quantity":1,"type":"LIMIT","price":"100.00"}'
HTTP_TIMEOUT_S = 30.0
FAILURE_BODY_CHARS = 300
HALF_PEAK = 0.5
# The goals, printed beside the figures (never asserted: speed is not tested): the API and
# order_place as fractions of the lean order, p99 at half of the API's peak.
GOAL_RATIO_MIN = 0.5
GOAL_PLACE_RATIO_MIN = 0.8
GOAL_P99_MS_MAX = 50.0
COLOCATED = "load generator, API and PostgreSQL share the host's cores"
LOAD_GENERATOR = (
    "bench/orders_http.py on uvloop (asyncio streams + httptools), HTTP/1.1 keep-alive,"
    " one connection per client"
)


@dataclass(frozen=True)
class OrdersPlan:
    """What one benchmark run does: levels, duration per level and per tool, users, pool."""

    concurrency_levels: tuple[int, ...]
    duration_s: int
    users: int
    warmup_s: float = 2.0
    pool_size_max: int = 20
    half_peak_pass: bool = True
    api_workers: int = 1
    # Past users and orders loaded before the run (bench/orders_history.py); None: a fresh database.
    history: History | None = None

    def __post_init__(self) -> None:
        if not self.concurrency_levels or min(self.concurrency_levels) < 1:
            raise ValueError(f"concurrency levels must be positive: {self.concurrency_levels}")
        if min(self.duration_s, self.users, self.pool_size_max, self.api_workers) < 1:
            raise ValueError(f"duration, users, pool size and API workers must be positive: {self}")
        if self.warmup_s < 0:
            raise ValueError(f"warm-up must not be negative: {self.warmup_s}")


@dataclass(frozen=True)
class LoadFigures:
    """What one load pass measured: throughput of 2xx answers, latency, failures."""

    orders: int
    non_2xx: int
    errors: int
    elapsed_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    first_failure: str = ""

    @property
    def orders_per_s(self) -> float:
        """Accepted orders per second of the pass."""
        return self.orders / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def details(self) -> dict[str, int | float]:
        """Secondary figures for a result row."""
        return {
            "p50_ms": round(self.p50_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "orders": self.orders,
            "non_2xx": self.non_2xx,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class Tally:
    """Answers collected during a pass (one event loop, so no locking)."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    first_failure: str = ""

    def answer(self, answer: Answer, latency_s: float) -> None:
        """Count one HTTP answer; only 2xx answers count as orders and latencies."""
        self.statuses[answer.status] += 1
        if answer.is_success:
            self.latencies_ms.append(latency_s * 1000.0)
        elif not self.first_failure:
            text = answer.body.decode("utf-8", errors="replace")
            self.first_failure = f"HTTP {answer.status}: {text[:FAILURE_BODY_CHARS]}"

    def error(self, exc: HttpError) -> None:
        """Count a request that got no answer (timeout, connection refused or reset)."""
        self.errors += 1
        if not self.first_failure:
            self.first_failure = f"{type(exc).__name__}: {exc}"

    def figures(self, elapsed_s: float) -> LoadFigures:
        """The pass's figures over ``elapsed_s``."""
        ordered = sorted(self.latencies_ms)
        non_2xx = sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
        return LoadFigures(
            orders=len(ordered),
            non_2xx=non_2xx,
            errors=self.errors,
            elapsed_s=elapsed_s,
            p50_ms=percentile(ordered, 0.50),
            p90_ms=percentile(ordered, 0.90),
            p99_ms=percentile(ordered, 0.99),
            max_ms=ordered[-1] if ordered else math.nan,
            first_failure=self.first_failure,
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ascending values; NaN when empty."""
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class RoundRobin:
    """Users in turn, each request with a fresh idempotency key."""

    def __init__(self, users: Sequence[BenchUser]) -> None:
        if not users:
            raise ValueError("round-robin needs at least one user")
        self._headers = [u.headers | {"Content-Type": "application/json"} for u in users]
        self._turn: Iterator[int] = itertools.count()

    def next_headers(self) -> dict[str, str]:
        """Headers of the next user's request, with a new X-Idempotency-Key."""
        base = self._headers[next(self._turn) % len(self._headers)]
        return base | {"X-Idempotency-Key": uuid.uuid4().hex}


@dataclass(frozen=True)
class Target:
    """Where the orders go: the API's host and port, and how long to wait for an answer."""

    host: str
    port: int
    timeout_s: float = HTTP_TIMEOUT_S
    tls: ssl.SSLContext | None = None

    def connection(self) -> Connection:
        """A new keep-alive connection to the API (opened by its first request)."""
        return Connection(self.host, self.port, self.timeout_s, self.tls)


def target(url: str, tls: ssl.SSLContext | None = None) -> Target:
    """The ``Target`` of a base URL such as ``http://127.0.0.1:8001`` (https needs ``tls``)."""
    if url.startswith("https://") and tls is None:
        raise ValueError(f"{url} needs a TLS context")
    host, _, port = url.removeprefix("https://").removeprefix("http://").rstrip("/").rpartition(":")
    return Target(host, int(port), tls=tls)


async def _place(
    conn: Connection, host: str, users: RoundRobin, tally: Tally, since: float | None = None
) -> None:
    """POST one order; latency counts from ``since`` (its scheduled time) when given."""
    request = encode_request(host, "POST", ORDERS_PATH, users.next_headers(), ORDER_BODY)
    started = time.perf_counter() if since is None else since
    try:
        answer = await conn.send(request)
    except HttpError as exc:
        tally.error(exc)
        return
    tally.answer(answer, time.perf_counter() - started)


async def _closed_loop(
    to: Target, conns: Sequence[Connection], users: RoundRobin, duration_s: float
) -> LoadFigures:
    tally = Tally()
    start = time.perf_counter()
    deadline = start + duration_s

    async def worker(conn: Connection) -> None:
        while time.perf_counter() < deadline:
            await _place(conn, to.host, users, tally)

    await asyncio.gather(*(worker(conn) for conn in conns))
    return tally.figures(time.perf_counter() - start)


async def closed_loop(
    url: str,
    users: Sequence[BenchUser],
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    tls: ssl.SSLContext | None = None,
) -> LoadFigures:
    """``concurrency`` clients each placing orders back to back for ``duration_s``."""
    turns, to = RoundRobin(users), target(url, tls)
    conns = [to.connection() for _ in range(concurrency)]
    try:
        if warmup_s > 0:
            # Opens the connections and lets psycopg prepare its statements; not counted.
            await _closed_loop(to, conns, turns, warmup_s)
        return await _closed_loop(to, conns, turns, duration_s)
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))


async def paced(
    url: str, users: Sequence[BenchUser], rate_per_s: float, concurrency: int, duration_s: float
) -> LoadFigures:
    """Orders sent at ``rate_per_s`` on a fixed schedule by up to ``concurrency`` connections.

    Latency runs from each order's scheduled send time, so time spent waiting for a free
    connection behind a slow answer counts (no coordinated omission).
    """
    if rate_per_s <= 0:
        raise ValueError(f"rate must be positive, got {rate_per_s}")
    turns, tally, tickets, to = RoundRobin(users), Tally(), itertools.count(), target(url)
    interval_s = 1.0 / rate_per_s
    conns = [to.connection() for _ in range(concurrency)]
    start = time.perf_counter()
    end = start + duration_s

    async def worker(conn: Connection) -> None:
        while (scheduled := start + next(tickets) * interval_s) < end:
            delay_s = scheduled - time.perf_counter()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            await _place(conn, to.host, turns, tally, since=scheduled)

    try:
        await asyncio.gather(*(worker(conn) for conn in conns))
        return tally.figures(time.perf_counter() - start)
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))


def run(load: Coroutine[Any, Any, LoadFigures]) -> LoadFigures:
    """Run a load pass on a fresh uvloop event loop (less client CPU on a shared host)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(load)


def check_load(name: str, figures: LoadFigures) -> None:
    """Raise ``BenchError`` when any request of the pass failed: the run is then invalid."""
    if figures.non_2xx or figures.errors or not figures.orders:
        raise BenchError(
            f"{name}: {figures.orders} orders, {figures.non_2xx} non-2xx answers,"
            f" {figures.errors} failed requests; first failure: {figures.first_failure}"
        )


def pgbench_threads(clients: int, nproc: int) -> int:
    """The most pgbench threads up to ``nproc`` that divide ``clients`` evenly."""
    return max(t for t in range(1, min(clients, nproc) + 1) if clients % t == 0)


def pgbench_variables(db: BenchDatabase) -> dict[str, str]:
    """The ``-D`` variables of place_order.sql: users, a run tag, the order, the API's limits."""
    settings = db.settings
    user_min, user_max = db.user_id_range
    return {
        "user_min": str(user_min),
        "user_max": str(user_max),
        "run": uuid.uuid4().hex[:12],
        "symbol": SYMBOL,
        "price": str(PRICE),
        "qty": str(QUANTITY),
        "band_bps": str(settings.market_protection_band_bps),
        "fee_rate_bps": str(settings.fee_rate_bps),
        "value_max": str(settings.order_value_max),
        "rate_max": str(settings.orders_per_minute_max),
        "currency": settings.currency,
        "topic": settings.topic_orders,
    }


def pgbench_place_order(db: BenchDatabase, host: HostInfo, load: PgbenchLoad) -> Ceiling:
    """pgbench running place_order.sql on the benchmark database, in orders/s."""
    return orders_lean.pgbench_orders(
        db, host, load, PLACE_ORDER_SCRIPT, pgbench_variables(db), PLACE_NAME
    )


def server_name(workers: int) -> str:
    """How the API was served, for a result's conditions."""
    if workers == 1:
        return "python -m api (uvicorn, 1 worker)"
    return f"uvicorn api.main:create_app --factory --workers {workers}"


def _api_result(plan: OrdersPlan, host: HostInfo, concurrency: int, figures: LoadFigures) -> Result:
    conditions: dict[str, str | int | float] = {
        "concurrency": concurrency,
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "users": plan.users,
        "order": f"LIMIT BUY {QUANTITY} {SYMBOL} @ {PRICE}",
        "server": server_name(plan.api_workers),
        "pg_pool_size_max": plan.pool_size_max,
        "load_generator": LOAD_GENERATOR,
        "host": COLOCATED,
    }
    return Result.now(API_NAME, figures.orders_per_s, UNIT, conditions, host, figures.details())


def _half_peak_result(
    plan: OrdersPlan, host: HostInfo, peak: Result, rate_per_s: float, figures: LoadFigures
) -> Result:
    conditions: dict[str, str | int | float] = {
        "method": "paced open loop at half of the API's peak rate, latency from scheduled time",
        "target_rate_per_s": round(rate_per_s, 1),
        "peak_at_concurrency": peak.conditions["concurrency"],
        "connections_max": max(plan.concurrency_levels),
        "duration_s": plan.duration_s,
        "users": plan.users,
        "host": COLOCATED,
    }
    return Result.now(
        HALF_PEAK_NAME, figures.orders_per_s, UNIT, conditions, host, figures.details()
    )


def _measure_level(
    db: BenchDatabase,
    url: str,
    host: HostInfo,
    plan: OrdersPlan,
    concurrency: int,
    lean_variables: dict[str, str],
) -> list[Row]:
    """The level's rows: the lean order's ceiling, then order_place and the API beside it."""
    log.info("API: %d clients for %d s", concurrency, plan.duration_s)
    figures = run(closed_loop(url, db.users, concurrency, plan.duration_s, plan.warmup_s))
    check_load(f"API at concurrency {concurrency}", figures)
    log.info("API: %.0f orders/s, p99 %.1f ms", figures.orders_per_s, figures.p99_ms)
    load = PgbenchLoad(concurrency, pgbench_threads(concurrency, host.nproc), plan.duration_s)
    place = pgbench_place_order(db, host, load)
    log.info("pgbench order_place: %.0f orders/s", place.value)
    lean = orders_lean.pgbench_lean_order(db, host, load, lean_variables)
    log.info("pgbench lean order: %.0f orders/s", lean.value)
    return [Row(lean), Row(place, lean), Row(_api_result(plan, host, concurrency, figures), lean)]


def _measure_half_peak(
    db: BenchDatabase, url: str, host: HostInfo, plan: OrdersPlan, peak: Result
) -> Result:
    rate_per_s = peak.value * HALF_PEAK
    connections = max(plan.concurrency_levels)
    log.info("API: paced at %.0f orders/s for %d s", rate_per_s, plan.duration_s)
    figures = run(paced(url, db.users, rate_per_s, connections, plan.duration_s))
    check_load("API at half of peak", figures)
    return _half_peak_result(plan, host, peak, rate_per_s, figures)


def measure(settings: Settings, host: HostInfo, plan: OrdersPlan, server_log: Path) -> list[Row]:
    """Run the whole benchmark on a fresh database: per level the lean order, order_place, the API.

    Raises ``BenchError`` if any request failed or any invariant query returns rows after.
    """
    with bench_database(
        settings, users=plan.users, pool_size_max=plan.pool_size_max, history=plan.history
    ) as db:
        served = db.settings.model_copy(update={"api_port": free_port()})
        served_db = BenchDatabase(db.name, served, db.users)
        rows: list[Row] = []
        lean_variables = orders_lean.pgbench_variables(served_db, SYMBOL, QUANTITY, PRICE)
        with (
            orders_lean.lean_tables(served_db),
            api_server(served, server_log, plan.api_workers) as url,
        ):
            for concurrency in plan.concurrency_levels:
                rows += _measure_level(served_db, url, host, plan, concurrency, lean_variables)
            if plan.half_peak_pass:
                peak = max(_named(rows, API_NAME), key=lambda r: r.value)
                rows.append(Row(_measure_half_peak(served_db, url, host, plan, peak), peak))
        check_invariants(db.dsn)
    return rows if plan.history is None else [with_history(row, plan.history) for row in rows]


def with_history(row: Row, history: History) -> Row:
    """The row with the history named in its conditions; the lean order's own tables have none."""
    if row.result.name == orders_lean.NAME:
        note = "none: the lean order's own tables start empty"
    else:
        note = history.describe()
    return replace(
        row, result=replace(row.result, conditions={**row.result.conditions, "history": note})
    )


def check_invariants(dsn: str) -> None:
    """Raise ``BenchError`` naming every invariant query that returns rows."""
    broken = {name: n for name, n in invariant_violations(dsn).items() if n}
    if broken:
        raise BenchError(f"invariants broken after the orders benchmark: {broken}")


def _named(rows: Sequence[Row], name: str) -> list[Result]:
    return [row.result for row in rows if row.result.name == name]


def goals(rows: Sequence[Row]) -> list[str]:
    """Lines comparing the run with the goals: order_place and the API against the lean order
    at their peaks, p99 at half of the API's peak."""
    lines: list[str] = []
    lean = _named(rows, orders_lean.NAME)
    if lean:
        lean_peak = max(r.value for r in lean)
        for name, label, goal in (
            (PLACE_NAME, "pgbench order_place", GOAL_PLACE_RATIO_MIN),
            (API_NAME, "API", GOAL_RATIO_MIN),
        ):
            peak = max((r.value for r in _named(rows, name)), default=0.0)
            ratio = peak / lean_peak
            verdict = "met" if ratio >= goal else "NOT met"
            lines.append(
                f"peak {label} {peak:,.0f} orders/s / peak lean order {lean_peak:,.0f}"
                f" = {ratio:.2f} (goal >= {goal:.2f}: {verdict})"
            )
    for result in _named(rows, HALF_PEAK_NAME):
        p99_ms = float(result.details["p99_ms"])
        verdict = "met" if p99_ms <= GOAL_P99_MS_MAX else "NOT met"
        lines.append(
            f"p99 at half of peak ({result.value:,.0f} orders/s): {p99_ms:.1f} ms"
            f" (goal <= {GOAL_P99_MS_MAX:.0f} ms: {verdict})"
        )
    return lines
