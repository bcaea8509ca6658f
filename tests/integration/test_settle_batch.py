"""Batch settlement (streams/settlement_batch.py) against the per-report path on real PostgreSQL.

Each test builds twins: two users with the same cash, the same orders and the same reports
(their own ids). One twin's reports are settled one transaction each by streams/settlement.py,
the other's in one batch; balances, holdings, orders and journals must come out the same.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from msgspec.structs import replace

from core.contracts import ExecutionReport, OrderStatus, OrderType, Side
from core.contracts.orders import ORDER_UPDATE_RECORD, ORDER_UPDATES_TOPIC
from core.settings import Settings
from streams.settlement import Outcome, settle_report
from streams.settlement_batch import BatchRefused, settle_reports
from streams.settlement_rules import SettlementError
from tests.integration.settle_support import (
    AConn,
    Exchange,
    fee,
    holding,
    order_row,
    place_order,
    place_stop_buy,
    setup_user,
    violations,
    wallet,
)

pytestmark = pytest.mark.integration

SYMBOLS = ("ACME", "AXION")


class Twin:
    """One user of a pair: its orders in creation order, and its copy of the reports."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.orders: list[uuid.UUID] = []


async def make_twins(conn: AConn, cash: str) -> tuple[Twin, Twin]:
    return Twin(await setup_user(conn, cash)), Twin(await setup_user(conn, cash))


async def place_both(
    conn: AConn, settings: Settings, twins: tuple[Twin, Twin], *args: Any, **kw: Any
) -> Exchange:
    """Place one order for each twin; the exchange speaks of the first twin's order."""
    for twin in twins:
        twin.orders.append(await place_order(conn, settings, twin.user_id, *args, **kw))
    side, symbol, quantity = args[0], args[1], args[2]
    return Exchange(twins[0].orders[-1], symbol, side, quantity)


def for_twin(reports: list[ExecutionReport], one: Twin, other: Twin) -> list[ExecutionReport]:
    """The same reports for the other twin's orders (exec ids mapped one to one)."""
    orders = dict(zip(map(str, one.orders), map(str, other.orders), strict=True))
    return [replace(r, order_id=orders[r.order_id], exec_id=f"{r.exec_id}-twin") for r in reports]


async def settle_both(
    conn: AConn, settings: Settings, twins: tuple[Twin, Twin], reports: list[ExecutionReport]
) -> None:
    """Reports one by one for the first twin, in one batch for the second; same outcomes."""
    one_by_one = [await settle_report(conn, r, settings) for r in reports]
    async with conn.transaction():
        batched = await settle_reports(conn, for_twin(reports, *twins), settings)
    assert batched == one_by_one


async def state(conn: AConn, twin: Twin) -> dict[str, Any]:
    """Everything settlement writes for a twin, with its own ids left out."""
    orders = []
    for oid in twin.orders:
        row = await order_row(conn, oid)
        cursor = await conn.execute(
            "SELECT t.kind, a.kind, e.amount FROM journal_txns t"
            " JOIN journal_entries e ON e.txn_id = t.id"
            " JOIN ledger_accounts a ON a.id = e.account_id WHERE t.order_id = %s",
            (oid,),
        )
        journal = sorted((str(k), str(a), Decimal(x)) for k, a, x in await cursor.fetchall())
        cursor = await conn.execute(
            "SELECT last_qty, last_px, fee, settled_at IS NOT NULL FROM executions"
            " WHERE order_id = %s ORDER BY last_qty, last_px",
            (oid,),
        )
        orders.append((row, journal, await cursor.fetchall()))
    holdings = {}
    for symbol in SYMBOLS:
        cursor = await conn.execute(
            "SELECT 1 FROM holdings WHERE user_id = %s AND symbol = %s", (twin.user_id, symbol)
        )
        if await cursor.fetchone():
            holdings[symbol] = await holding(conn, twin.user_id, symbol)
    return {"wallet": await wallet(conn, twin.user_id), "holdings": holdings, "orders": orders}


async def assert_twins_agree(conn: AConn, twins: tuple[Twin, Twin]) -> None:
    assert await state(conn, twins[0]) == await state(conn, twins[1])
    assert await violations(conn) == {}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_shuffled_batch_with_replays_settles_as_reports_one_by_one(
    db_dsn: str, settings: Settings, seed: int
) -> None:
    rng = random.Random(seed)
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        twins = await make_twins(conn, "100000")
        canceled = await place_both(conn, settings, twins, Side.BUY, "ACME", 100, "50.00")
        filled = await place_both(conn, settings, twins, Side.BUY, "AXION", 10, "86.40")
        rejected = await place_both(conn, settings, twins, Side.BUY, "ACME", 5, "50.00")
        market = await place_both(
            conn,
            settings,
            twins,
            Side.BUY,
            "AXION",
            10,
            None,
            order_type=OrderType.STOP_LOSS,
            trigger_price="10.00",
        )
        buys = [
            canceled.ack(),
            canceled.fill(30, "49.95"),
            canceled.fill(20, "50.00"),
            canceled.pending_cancel(),
            canceled.cancel(),
            filled.fill(4, "86.40"),
            filled.fill(6, "86.30"),
            rejected.reject("price band"),
            rejected.ack(),
            market.fill(10, "20.00"),
        ]
        rng.shuffle(buys)
        await settle_both(conn, settings, twins, buys + rng.sample(buys, 5))
        await assert_twins_agree(conn, twins)

        sold = await place_both(conn, settings, twins, Side.SELL, "ACME", 40, "44.00")
        expired = await place_both(conn, settings, twins, Side.SELL, "AXION", 15, "90.00")
        sells = [
            sold.ack(),
            sold.fill(20, "45.00"),
            sold.fill(10, "44.50"),
            sold.expire(),
            expired.fill(5, "91.00"),
            expired.fill(10, "90.50"),
        ]
        rng.shuffle(sells)
        await settle_both(conn, settings, twins, sells + sells[::-1])
        await assert_twins_agree(conn, twins)
        # The orders did what the scripts say, not merely the same wrong thing twice.
        assert [(await order_row(conn, o))["status"] for o in twins[1].orders] == [
            "CANCELED",
            "FILLED",
            "REJECTED",
            "FILLED",
            "EXPIRED",
            "FILLED",
        ]
        assert (await holding(conn, twins[1].user_id, "ACME"))[:2] == (20, 0)


async def test_a_batch_replayed_whole_changes_nothing(db_dsn: str, settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "10000")
        oid = await place_order(conn, settings, uid, Side.BUY, "ACME", 100, "50.00")
        ex = Exchange(oid, "ACME", Side.BUY, 100)
        script = [ex.ack(), ex.fill(30, "49.95"), ex.fill(20, "50.00"), ex.cancel()]
        async with conn.transaction():
            await settle_reports(conn, script, settings)
        before = (await wallet(conn, uid), await holding(conn, uid, "ACME"))
        async with conn.transaction():
            outcomes = await settle_reports(conn, script, settings)
        replayed = [Outcome.UNCHANGED, Outcome.DUPLICATE, Outcome.DUPLICATE, Outcome.UNCHANGED]
        assert outcomes == replayed
        assert (await wallet(conn, uid), await holding(conn, uid, "ACME")) == before
        cost = Decimal("49.95") * 30 + Decimal("50.00") * 20
        fees = fee(Decimal("49.95") * 30, 3) + fee(Decimal("50.00") * 20, 3)
        assert before[0] == (Decimal(10000) - cost - fees, Decimal(0))
        assert await violations(conn) == {}


async def test_a_batch_with_an_unknown_order_writes_nothing(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "10000")
        oid = await place_order(conn, settings, uid, Side.BUY, "ACME", 10, "50.00")
        good = Exchange(oid, "ACME", Side.BUY, 10).fill(10, "50.00")
        unknown = Exchange(uuid.uuid4(), "ACME", Side.BUY, 5).fill(5, "10.00")
        with pytest.raises(SettlementError, match="unknown order"):
            async with conn.transaction():
                await settle_reports(conn, [good, unknown], settings)
        assert (await order_row(conn, oid))["status"] == OrderStatus.SENT.value
        assert await settle_report(conn, good, settings) is Outcome.SETTLED


async def test_a_batch_that_would_overdraw_a_wallet_is_refused_whole(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "120")
        # Reserved at a trigger of 10.00 (about 100); a fill at 20.00 needs 200 it does not have.
        oid = await place_stop_buy(conn, settings, uid, "AXION", 10, "10.00")
        ex = Exchange(oid, "AXION", Side.BUY, 10)
        with pytest.raises(BatchRefused):
            async with conn.transaction():
                await settle_reports(conn, [ex.ack(), ex.fill(10, "20.00")], settings)
        assert (await order_row(conn, oid))["status"] == OrderStatus.SENT.value
        with pytest.raises(psycopg.errors.CheckViolation):
            await settle_report(conn, ex.reports[-1], settings)


async def test_every_change_of_a_batch_is_queued_for_the_order_feed_in_order(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "10000")
        oid = await place_order(conn, settings, uid, Side.BUY, "ACME", 100, "50.00")
        ex = Exchange(oid, "ACME", Side.BUY, 100)
        script = [ex.ack(), ex.fill(30, "49.95"), ex.fill(20, "50.00"), ex.ack(), ex.cancel()]
        async with conn.transaction():
            await settle_reports(conn, script, settings)
        cursor = await conn.execute(
            "SELECT payload, headers FROM outbox WHERE topic = %s AND key = %s ORDER BY id",
            (ORDER_UPDATES_TOPIC, str(uid).encode()),
        )
        rows = await cursor.fetchall()
    queued = [json.loads(bytes(payload)) for payload, _ in rows]
    assert {headers["record"] for _, headers in rows} == {ORDER_UPDATE_RECORD}
    # The placing, then each visible change; the second ack changes nothing a client sees.
    assert [(q["id"], q["status"], q["cum_qty"]) for q in queued] == [
        (str(oid), "SENT", 0),
        (str(oid), "ACCEPTED", 0),
        (str(oid), "PARTIALLY_FILLED", 30),
        (str(oid), "PARTIALLY_FILLED", 50),
        (str(oid), "CANCELED", 50),
    ]


async def test_a_batch_locks_its_orders_in_id_order_whatever_its_report_order(
    db_dsn: str, settings: Settings
) -> None:
    async with (
        await psycopg.AsyncConnection.connect(db_dsn) as conn,
        await psycopg.AsyncConnection.connect(db_dsn) as other,
    ):
        uid = await setup_user(conn, "10000")
        low, high = sorted(
            [await place_order(conn, settings, uid, Side.BUY, "ACME", 10, "50.00") for _ in "ab"]
        )
        reports = [
            Exchange(high, "ACME", Side.BUY, 10).fill(10, "50.00"),
            Exchange(low, "ACME", Side.BUY, 10).fill(10, "50.00"),
        ]
        await other.execute("SELECT 1 FROM orders WHERE id = %s FOR UPDATE", (low,))

        async def settle() -> list[Outcome]:
            async with conn.transaction():
                return await settle_reports(conn, reports, settings)

        batch = asyncio.create_task(settle())
        await _until_waiting_on_a_lock(other, conn.info.backend_pid)
        # The batch waits for the lower id before it takes the higher one, so another
        # transaction taking the same two rows in the same order never meets it in a deadlock.
        await other.execute("SELECT 1 FROM orders WHERE id = %s FOR UPDATE NOWAIT", (high,))
        await other.rollback()
        assert await batch == [Outcome.SETTLED, Outcome.SETTLED]


async def _until_waiting_on_a_lock(conn: AConn, pid: int) -> None:
    for _ in range(100):
        cursor = await conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        )
        row = await cursor.fetchone()
        if row is not None and row[0] == "Lock":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited on a lock")


async def test_settle_apply_refuses_a_holding_that_does_not_say_whether_it_is_new(
    db_dsn: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "0")
        holding_row: dict[str, Any] = {"user_id": uid, "symbol": "ACME", "quantity": 1}
        holding_row |= {"locked_quantity": 0, "avg_buy_price": "1.0000", "realized_pnl": "0"}
        document: dict[str, Any] = {"currency": "USD", "txns": [], "entries": [], "wallets": []}
        document |= {"executions": [], "holdings": [holding_row], "orders": []}
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="holdings were not written"):
            await conn.execute("SELECT settle_apply(%s::jsonb)", (json.dumps(document),))
