"""Crash acceptance at full size: kill -9 a worker in the middle of 1M ticks and 10k fills.

One worker (every agent) consumes a stream of 1,000,000 ticks (with poison and late ticks) and
10,000 fills (two per order, the second one FILLED); it is killed with SIGKILL once a third of
the ticks and some fills are applied, with commits rare so much applied work is uncommitted and
replayed; a new worker finishes the stream. The candles must then equal the answer Polars
computes from the generated ticks, and the ledger, wallets, holdings, orders and executions the
answer computed here from the fills: what a run without the crash gives.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from polars.testing import assert_frame_equal

from bench.orders_setup import USER_CASH
from bench.streams_fills import FILL_PX, FILL_QTY, FillsLoad, make_reports
from bench.streams_fills import prepare_orders as prepare_fill_orders
from core.contracts import EXECUTION_REPORTS
from core.instruments import DEFAULT_INSTRUMENTS, seed_instruments
from core.settings import Settings
from infra import topics
from infra.migrate import load_invariants
from tests.integration.settle_support import fee
from tests.integration.test_candles_worker import committed_offsets
from tests.integration.tick_agents_support import (
    WIDTHS_S,
    WorkerTopics,
    applied_offsets,
    database_candles,
    end_offsets,
    expected_candles,
    generate_stream,
    produce,
    running_workers,
    seed_symbols,
    ticks_frame,
    wait_all_applied,
    wait_until,
    worker_topics,
)

pytestmark = pytest.mark.integration

TICKS = 1_000_000
FILLS = 10_000
TICK_PARTITIONS = 4
REPORT_PARTITIONS = 2
FILL_USERS = 50
WAIT_S = 300.0


@pytest.fixture
def names(running_stack: Settings, new_topic: Callable[[int], str]) -> Iterator[WorkerTopics]:
    with worker_topics(running_stack, new_topic, TICK_PARTITIONS) as made:
        # The reports topic needs partitions too (and its DLQ): recreate it under a new name.
        made.execution_reports = new_topic(REPORT_PARTITIONS)
        topics.ensure_topics(
            running_stack, [topics.TopicSpec(running_stack.dlq_topic(made.execution_reports), 1)]
        )
        yield made


def _settled(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM executions WHERE settled_at IS NOT NULL")
        found = row.fetchone()
    return int(found[0]) if found else 0


def test_kill_9_mid_stream_of_1m_ticks_and_10k_fills_then_restart_gives_the_same_state(
    running_stack: Settings, db_dsn: str, names: WorkerTopics, tmp_path: Path
) -> None:
    seed_symbols(db_dsn)
    symbol = DEFAULT_INSTRUMENTS[0].symbol

    async def seed() -> None:
        async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
            await seed_instruments(conn, DEFAULT_INSTRUMENTS)
            await conn.commit()

    asyncio.run(seed())
    load = FillsLoad(FILLS, fills_per_order=2, users=FILL_USERS, partitions=REPORT_PARTITIONS)
    prepared = asyncio.run(prepare_fill_orders(db_dsn, running_stack, load, symbol))
    reports = make_reports(prepared, load)
    stream = generate_stream(TICKS, seed=15, poison=100, late_beyond_grace=20)
    produce(running_stack, names.ticks, stream.messages)
    produce(running_stack, names.execution_reports, list(reports))
    total = sum(end_offsets(running_stack, names.ticks).values())
    # Commit rarely, so the killed worker leaves much applied but uncommitted: it is replayed.
    with running_workers(
        running_stack, db_dsn, names, tmp_path, BROKER_STREAMS_COMMIT_INTERVAL_MS="10000"
    ) as workers:
        wait_until(
            lambda: (
                sum(applied_offsets(db_dsn, names.ticks).values()) > total // 3
                and _settled(db_dsn) > 0
            ),
            "a third of the ticks and some fills applied",
            timeout_s=WAIT_S,
        )
        workers.kill_9(workers.procs[0])
        applied_at_kill = applied_offsets(db_dsn, names.ticks)
        committed_at_kill = committed_offsets(running_stack, workers.ticks_group, names.ticks)
        assert sum(max(0, o) for o in committed_at_kill.values()) < sum(applied_at_kill.values())
        workers.start()
        wait_all_applied(running_stack, db_dsn, names.ticks)
        wait_until(lambda: _settled(db_dsn) >= FILLS, "every fill settled", timeout_s=WAIT_S)

    counted = ticks_frame(stream.counted)
    for width, width_s in WIDTHS_S.items():
        assert_frame_equal(database_candles(db_dsn, width), expected_candles(counted, width_s))
    _assert_fills_settled_once(running_stack, db_dsn, prepared.orders, reports)


def _assert_fills_settled_once(
    settings: Settings,
    dsn: str,
    orders: dict[uuid.UUID, int],
    reports: list[tuple[bytes, bytes]],
) -> None:
    """Ledger, wallets, holdings, orders and executions as one settlement of every fill gives."""
    fills_per_user = Counter({u: 0 for u in orders.values()})
    for owner in orders.values():
        fills_per_user[owner] += 2
    cost = FILL_QTY * FILL_PX
    each = cost + fee(cost, settings.fee_rate_bps)
    exec_ids = {EXECUTION_REPORTS.decode(v).exec_id for _, v in reports}
    with psycopg.connect(dsn) as conn:
        wallets: dict[int, Decimal] = dict(
            conn.execute(
                "SELECT user_id, balance FROM wallets WHERE user_id = ANY(%s)",
                (list(fills_per_user),),
            ).fetchall()
        )
        holdings = {
            int(u): (int(q), p)
            for u, q, p in conn.execute(
                "SELECT user_id, quantity, avg_buy_price FROM holdings WHERE user_id = ANY(%s)",
                (list(fills_per_user),),
            ).fetchall()
        }
        statuses = conn.execute(
            "SELECT status, cum_qty, avg_px, reserved_amount, count(*) FROM orders"
            " WHERE id = ANY(%s) GROUP BY 1, 2, 3, 4",
            (list(orders),),
        ).fetchall()
        executed = {
            str(e)
            for (e,) in conn.execute(
                "SELECT exec_id FROM executions WHERE settled_at IS NOT NULL"
            ).fetchall()
        }
        fill_txns = conn.execute("SELECT count(*) FROM journal_txns WHERE kind = 'FILL'").fetchone()
        broken = {
            name: len(rows)
            for name, rows in (
                (name, conn.execute(query).fetchall()) for name, query in load_invariants().items()
            )
            if rows
        }
    assert wallets == {u: USER_CASH - n * each for u, n in fills_per_user.items()}
    assert holdings == {u: (n * FILL_QTY, FILL_PX) for u, n in fills_per_user.items()}
    assert statuses == [("FILLED", 2 * FILL_QTY, FILL_PX, Decimal(0), len(orders))]
    assert executed == exec_ids
    assert fill_txns is not None and int(fill_txns[0]) == len(exec_ids)
    assert broken == {}
