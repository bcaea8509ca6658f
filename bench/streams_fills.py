"""Fills/s through the settle agent, beside pgbench running the settlement SQL of a batch.

One run: a dedicated database (``bench_streams_fills``: created, migrated, dropped afterwards)
with funded users and BUY orders prepared in bulk (working, no reserve: each fill is paid from
available cash, the same statements as a reserved fill), and fresh topics.

- The ceiling: pgbench running bench/sql/settle_fills.sql (the statements
  streams/settlement_batch.py sends for one lane's batch: the locks, then one settle_apply call)
  with as many fills per transaction as a lane of the agent settles at once (the batch size over
  ``settle_concurrency``), on pgbench's own orders of the same database, one client per lane.
- The agent: N execution reports (``fills_per_order`` fills per order, the last one FILLED) are
  produced to the reports topic, then real worker processes (``faust worker`` of the app with
  only streams.settle) settle them. The run is timed from the moment the worker's group is
  stable to the moment its committed offsets reach the end of the topic (the agent commits a
  batch after settling it); every fill must then be settled in PostgreSQL, once, every order
  FILLED and every invariant query empty, or the run is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import psycopg

from bench.exceptions import BenchError
from bench.orders_api import pgbench_threads
from bench.orders_setup import funded_user
from bench.pg_ceiling import PgbenchLoad, _run_pgbench, parse_pgbench_output
from bench.report import HostInfo, Result, Row, against_ceilings
from bench.streams_ticks import (
    end_offsets,
    measure_group,
    migrated_database,
    produce_messages,
    running_workers,
    stream_topics,
)
from core.contracts import EXECUTION_REPORTS, ExecType, ExecutionReport, OrderStatus, Side
from core.instruments import instrument_universe
from core.money import notional
from core.settings import PROJECT_ROOT, Settings
from infra.migrate import load_invariants
from streams.settlement_rules import fill_fee

log = logging.getLogger(__name__)

BENCH_DATABASE = "bench_streams_fills"
SETTLE_FILLS_SCRIPT = PROJECT_ROOT / "bench" / "sql" / "settle_fills.sql"
GOAL_FILLS_PER_S = 5_000
FILL_QTY = 10
FILL_PX = Decimal("100.00")
PGBENCH_MARGIN_S = 60.0
SETTLE_MODULES = ("streams.settle",)


@dataclass(frozen=True)
class FillsLoad:
    """How many fills, over how many users and orders, and the pgbench ceiling's load."""

    fills: int
    fills_per_order: int = 2
    users: int = 200
    partitions: int = 6
    pgbench_clients: int = 4  # one per lane: settle_concurrency's default
    pgbench_seconds: int = 15
    deadline_s: float = 900.0

    def __post_init__(self) -> None:
        if min(self.fills, self.fills_per_order, self.users, self.partitions) < 1:
            raise ValueError(f"every fills load figure must be positive: {self}")
        if self.fills % self.fills_per_order:
            raise ValueError(f"fills ({self.fills}) must be a multiple of fills_per_order")

    @property
    def orders(self) -> int:
        """How many orders the agent's fills complete."""
        return self.fills // self.fills_per_order


@dataclass(frozen=True)
class Prepared:
    """The prepared orders: the agent's (uuid -> user) and the symbol they trade."""

    orders: dict[uuid.UUID, int]
    symbol: str


def pgbench_batch(settings: Settings, load: FillsLoad) -> int:
    """Fills per pgbench transaction: what one lane settles at once, whole orders only."""
    per_lane = -(-settings.streams_batch_max // settings.settle_concurrency)
    return max(1, per_lane // load.fills_per_order) * load.fills_per_order


async def prepare_orders(dsn: str, settings: Settings, load: FillsLoad, symbol: str) -> Prepared:
    """Users with cash, holdings rows, the agent's orders and pgbench's, all in bulk."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        user_ids = [await funded_user(conn, settings) for _ in range(load.users)]
        await conn.commit()
        orders = {uuid.uuid4(): user_ids[i % len(user_ids)] for i in range(load.orders)}
        quantity = FILL_QTY * load.fills_per_order
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type,"
                " quantity, price, status, reserved_amount)"
                " VALUES (%s, %s, %s, %s, 'BUY', 'LIMIT', %s, %s, 'SENT', 0)",
                [(oid, uid, str(oid), symbol, quantity, FILL_PX) for oid, uid in orders.items()],
            )
            # pgbench's orders never fill up; client c has its own, of its own users (a lane).
            per_client = pgbench_batch(settings, load) // load.fills_per_order
            users_per_client = max(1, load.users // load.pgbench_clients)
            await cur.executemany(
                "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type,"
                " quantity, price, status, reserved_amount)"
                " VALUES (md5(%s)::uuid, %s, %s, %s, 'BUY', 'LIMIT', 1000000000, %s, 'SENT', 0)",
                [
                    (
                        f"pgbench-fill-{c}-{k}",
                        user_ids[(c + load.pgbench_clients * (k % users_per_client)) % load.users],
                        f"pgbench-fill-{c}-{k}",
                        symbol,
                        FILL_PX,
                    )
                    for c in range(load.pgbench_clients)
                    for k in range(per_client)
                ],
            )
            await cur.execute(
                "INSERT INTO holdings (user_id, symbol, quantity, avg_buy_price)"
                " SELECT u, %s, 0, 0 FROM unnest(%s::bigint[]) AS u",
                (symbol, user_ids),
            )
        await conn.commit()
    return Prepared(orders, symbol)


def make_reports(prepared: Prepared, load: FillsLoad) -> list[tuple[bytes, bytes]]:
    """(key, value) of every fill: ``fills_per_order`` per order, the last one FILLED."""
    out: list[tuple[bytes, bytes]] = []
    quantity = FILL_QTY * load.fills_per_order
    now_ns = time.time_ns()
    for n, order_id in enumerate(prepared.orders):
        for k in range(1, load.fills_per_order + 1):
            done = k == load.fills_per_order
            report = ExecutionReport(
                exec_id=f"bench-{order_id.hex}-{k}",
                order_id=str(order_id),
                exec_type=ExecType.FILL if done else ExecType.PARTIAL_FILL,
                order_status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
                symbol=prepared.symbol,
                side=Side.BUY,
                last_qty=FILL_QTY,
                last_px=FILL_PX,
                cum_qty=FILL_QTY * k,
                leaves_qty=quantity - FILL_QTY * k,
                avg_px=FILL_PX,
                ts_transact_ns=now_ns + n,
            )
            out.append((report.kafka_key(), EXECUTION_REPORTS.encode(report)))
    return out


def pgbench_settle_fills(
    settings: Settings, database: str, host: HostInfo, load: FillsLoad, nproc: int
) -> Result:
    """pgbench running settle_fills.sql on pgbench's orders: the ceiling, in fills/s."""
    threads = pgbench_threads(load.pgbench_clients, nproc)
    pg_load = PgbenchLoad(load.pgbench_clients, threads, load.pgbench_seconds)
    cost = notional(FILL_QTY, FILL_PX)
    batch = pgbench_batch(settings, load)
    variables = {
        "batch": str(batch),
        "per_order": str(load.fills_per_order),
        "run": uuid.uuid4().hex[:12],
        "qty": str(FILL_QTY),
        "px": str(FILL_PX),
        "cost": str(cost),
        "fee": str(fill_fee(cost, settings.fee_rate_bps)),
        "currency": settings.currency,
    }
    output = _run_pgbench(
        settings,
        [
            *("-c", str(pg_load.clients), "-j", str(pg_load.threads)),
            *("-T", str(pg_load.duration_s), "-M", "prepared", "-n"),
            *("-f", str(SETTLE_FILLS_SCRIPT)),
            *[arg for k, v in variables.items() for arg in ("-D", f"{k}={v}")],
            database,
        ],
        pg_load.duration_s + PGBENCH_MARGIN_S,
    )
    figures = parse_pgbench_output(output)
    if figures.failed:
        raise BenchError(f"pgbench settle_fills.sql: {figures.failed} transactions failed")
    conditions: dict[str, str | int] = {
        "mode": "custom script bench/sql/settle_fills.sql",
        "query_mode": "prepared",
        "fills_per_txn": batch,
        "fills_per_order": load.fills_per_order,
        "clients": pg_load.clients,
        "threads": pg_load.threads,
        "duration_s": pg_load.duration_s,
    }
    details = {
        "latency_ms_avg": figures.latency_ms_avg,
        "transactions": figures.transactions,
    }
    return Result.now(
        "pgbench.settle_fills", figures.tps * batch, "fills/s", conditions, host, details
    )


def _check_settled(dsn: str, prepared: Prepared, load: FillsLoad) -> None:
    """Every fill settled once, every order FILLED, every invariant holds; else BenchError."""
    ids = list(prepared.orders)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(settled_at) FROM executions WHERE order_id = ANY(%s)", (ids,)
        ).fetchone()
        filled = conn.execute(
            "SELECT count(*) FROM orders WHERE id = ANY(%s) AND status = 'FILLED'", (ids,)
        ).fetchone()
        broken = {
            name: len(conn.execute(query).fetchall()) for name, query in load_invariants().items()
        }
    if row is None or (int(row[0]), int(row[1])) != (load.fills, load.fills):
        raise BenchError(f"settled fills {row} are not {load.fills}")
    if filled is None or int(filled[0]) != load.orders:
        raise BenchError(f"{filled} orders FILLED, not {load.orders}")
    broken = {k: v for k, v in broken.items() if v}
    if broken:
        raise BenchError(f"invariants broken after the run: {broken}")


def measure(settings: Settings, host: HostInfo, load: FillsLoad) -> list[Row]:
    """The pgbench ceiling, then fills/s through one settle worker, on one database."""
    deadline = time.monotonic() + load.deadline_s
    instruments = instrument_universe(1)
    symbol = instruments[0].symbol
    with (
        migrated_database(settings, BENCH_DATABASE, instruments) as dsn,
        stream_topics(settings, ticks_partitions=1, reports_partitions=load.partitions) as made,
    ):
        prepared = asyncio.run(prepare_orders(dsn, settings, load, symbol))
        ceiling = pgbench_settle_fills(settings, BENCH_DATABASE, host, load, host.nproc)
        log.info("pgbench settle_fills: %.0f fills/s", ceiling.value)
        messages = make_reports(prepared, load)
        message_bytes = round(sum(len(v) for _, v in messages) / len(messages))
        produce_messages(settings, made.execution_reports, messages, deadline)
        del messages
        total = sum(end_offsets(settings, made.execution_reports, load.partitions).values())
        if total != load.fills:
            raise BenchError(f"the reports topic holds {total:_} reports, not {load.fills:_}")
        with running_workers(
            settings,
            count=1,
            modules=SETTLE_MODULES,
            database=BENCH_DATABASE,
            made=made,
            watch_topic=made.execution_reports,
        ) as group:
            run = measure_group(
                settings, group, made.execution_reports, load.partitions, total, deadline
            )
        _check_settled(dsn, prepared, load)
        log.info("settle agent: %.0f fills/s", run.msgs_per_s)
        conditions: dict[str, str | int] = {
            "workers": 1,
            "agents": "settle",
            "fills": load.fills,
            "fills_per_order": load.fills_per_order,
            "orders": load.orders,
            "users": load.users,
            "partitions": load.partitions,
            "message_bytes": message_bytes,
            "batch_max": settings.streams_batch_max,
            "settle_concurrency": settings.settle_concurrency,
            "batches_in_flight": settings.settle_batches_in_flight,
            "window": "group stable -> committed offsets at end",
        }
        details: dict[str, int | float] = {
            "fills_measured": run.messages,
            **run.timings(),
            **run.cpu,
        }
        mine = Result.now(
            "streams.fills.settled", run.msgs_per_s, "fills/s", conditions, host, details
        )
    return [Row(ceiling), Row(mine, ceiling)]


def goals(rows: Sequence[Row]) -> list[str]:
    """The issue's goal against the agent's row."""
    lines = []
    for result, _, ratio in against_ceilings(rows):
        verdict = "met" if result.value >= GOAL_FILLS_PER_S else "NOT met"
        lines.append(
            f"{result.name}: {result.value:,.0f} fills/s settled, goal {GOAL_FILLS_PER_S:,}"
            f" {verdict}; {ratio:.3f} of pgbench running the same SQL"
        )
    return lines
