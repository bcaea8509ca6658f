"""Settlement on real PostgreSQL: scripted fills, cancels, replays and out-of-order arrival."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import psycopg
import pytest

from core.contracts import ExecutionReport, Side
from core.settings import Settings
from streams.settlement import Outcome, settle_report
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

BPS = 3  # the settings' default fee rate; asserted below so the numbers stay honest


async def settle_all(conn: AConn, settings: Settings, reports: list[ExecutionReport]) -> None:
    for report in reports:
        await settle_report(conn, report, settings)


async def test_partial_fills_then_cancel_then_replays_give_exact_balances(
    db_dsn: str, settings: Settings
) -> None:
    assert settings.fee_rate_bps == BPS
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "10000")
        oid = await place_order(conn, settings, uid, Side.BUY, "ACME", 100, "50.00")
        reserve = (await order_row(conn, oid))["reserved_amount"]
        assert reserve == Decimal("5001.5000")  # 5000 * 1.0003
        ex = Exchange(oid, "ACME", Side.BUY, 100)
        script = [ex.ack(), ex.fill(30, "49.95"), ex.fill(20, "50.00"), ex.pending_cancel()]
        script.append(ex.cancel())

        outcomes = [await settle_report(conn, r, settings) for r in script]
        assert outcomes == [
            Outcome.UPDATED,
            Outcome.SETTLED,
            Outcome.SETTLED,
            Outcome.UPDATED,
            Outcome.UPDATED,
        ]
        for report in script + script[::-1]:  # every report again, forwards and backwards
            assert await settle_report(conn, report, settings) in (
                Outcome.DUPLICATE,
                Outcome.UNCHANGED,
            )

        cost = Decimal("49.95") * 30 + Decimal("50.00") * 20
        fees = fee(Decimal("49.95") * 30, BPS) + fee(Decimal("50.00") * 20, BPS)
        assert fees == Decimal("0.7495")
        assert await wallet(conn, uid) == (Decimal(10000) - cost - fees, Decimal(0))
        assert await holding(conn, uid, "ACME") == (50, 0, Decimal("49.97"), Decimal(0))
        order = await order_row(conn, oid)
        assert (order["status"], order["cum_qty"], order["avg_px"]) == (
            "CANCELED",
            50,
            Decimal("49.97"),
        )
        assert order["reserved_amount"] == 0
        assert await _journal_kinds(conn, oid) == {
            "ORDER_RESERVE": 1,
            "FILL": 2,
            "ORDER_RELEASE": 1,
        }
        assert await violations(conn) == {}


async def test_cancel_before_its_fills_waits_for_them_then_releases_once(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "10000")
        oid = await place_order(conn, settings, uid, Side.BUY, "ACME", 100, "50.00")
        ex = Exchange(oid, "ACME", Side.BUY, 100)
        ack, fill1, fill2, canceled = (
            ex.ack(),
            ex.fill(30, "49.95"),
            ex.fill(20, "50.00"),
            ex.cancel(),
        )

        await settle_all(conn, settings, [canceled, fill2])
        order = await order_row(conn, oid)
        # 20 of the 50 shares the cancel counts are settled: not final, reserve still locked.
        assert (order["status"], order["pending"]) == ("PARTIALLY_FILLED", "CANCELED")
        assert (await wallet(conn, uid))[1] == order["reserved_amount"] > 0
        await settle_all(conn, settings, [ack, fill1, canceled, ack])

        cost = Decimal("49.95") * 30 + Decimal("50.00") * 20
        fees = fee(Decimal("49.95") * 30, BPS) + fee(Decimal("50.00") * 20, BPS)
        assert await wallet(conn, uid) == (Decimal(10000) - cost - fees, Decimal(0))
        order = await order_row(conn, oid)
        assert (order["status"], order["cum_qty"], order["pending"]) == ("CANCELED", 50, None)
        assert await holding(conn, uid, "ACME") == (50, 0, Decimal("49.97"), Decimal(0))
        assert await violations(conn) == {}


async def test_the_last_fill_before_the_first_still_fills_the_order(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "1000")
        oid = await place_order(conn, settings, uid, Side.BUY, "AXION", 10, "86.40")
        ex = Exchange(oid, "AXION", Side.BUY, 10)
        first, last = ex.fill(4, "86.40"), ex.fill(6, "86.30")
        await settle_report(conn, last, settings)
        assert (await order_row(conn, oid))["status"] == "PARTIALLY_FILLED"
        await settle_report(conn, first, settings)
        await settle_report(conn, ex.ack(), settings)  # a late NEW changes nothing

        order = await order_row(conn, oid)
        assert (order["status"], order["cum_qty"], order["reserved_amount"]) == ("FILLED", 10, 0)
        cost = Decimal("86.40") * 4 + Decimal("86.30") * 6
        fees = fee(Decimal("86.40") * 4, BPS) + fee(Decimal("86.30") * 6, BPS)
        assert await wallet(conn, uid) == (Decimal(1000) - cost - fees, Decimal(0))
        assert await violations(conn) == {}


async def test_sell_realizes_pnl_and_expiry_unlocks_the_rest(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "5000")
        buy = await place_order(conn, settings, uid, Side.BUY, "ACME", 100, "40.00")
        bought = Exchange(buy, "ACME", Side.BUY, 100)
        await settle_all(conn, settings, [bought.fill(50, "40.00"), bought.fill(50, "39.90")])
        avg = Decimal("39.95")
        assert (await holding(conn, uid, "ACME"))[:3] == (100, 0, avg)
        cash_after_buy = (await wallet(conn, uid))[0]

        sell = await place_order(conn, settings, uid, Side.SELL, "ACME", 80, "44.00")
        assert (await holding(conn, uid, "ACME"))[:2] == (100, 80)
        ex = Exchange(sell, "ACME", Side.SELL, 80)
        script = [ex.ack(), ex.fill(40, "45.00"), ex.fill(20, "44.50"), ex.expire()]
        random.Random(7).shuffle(script)
        await settle_all(conn, settings, script + script)

        fee1, fee2 = fee(Decimal(1800), BPS), fee(Decimal(890), BPS)
        pnl = (Decimal("45.00") - avg) * 40 - fee1 + (Decimal("44.50") - avg) * 20 - fee2
        assert await holding(conn, uid, "ACME") == (40, 0, avg, pnl)
        assert await wallet(conn, uid) == (cash_after_buy + 1800 + 890 - fee1 - fee2, Decimal(0))
        order = await order_row(conn, sell)
        assert (order["status"], order["cum_qty"], order["avg_px"]) == (
            "EXPIRED",
            60,
            Decimal("44.8333"),
        )
        assert await violations(conn) == {}


async def test_a_rejected_buy_releases_its_whole_reserve_with_the_reason(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "1000")
        oid = await place_order(conn, settings, uid, Side.BUY, "AXION", 10, "86.40")
        ex = Exchange(oid, "AXION", Side.BUY, 10)
        await settle_all(conn, settings, [ex.reject("price band"), ex.ack()])
        order = await order_row(conn, oid)
        assert (order["status"], order["reject_reason"]) == ("REJECTED", "price band")
        assert await wallet(conn, uid) == (Decimal(1000), Decimal(0))
        assert await violations(conn) == {}


async def test_a_market_buy_beyond_its_band_takes_the_rest_from_available_cash(
    db_dsn: str, settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "10000")
        # Valued at a trigger of 10.00: the reserve cannot cover a fill at 20.00.
        oid = await place_stop_buy(conn, settings, uid, "AXION", 10, "10.00")
        ex = Exchange(oid, "AXION", Side.BUY, 10)
        await settle_report(conn, ex.fill(10, "20.00"), settings)
        cost = Decimal(200)
        assert await wallet(conn, uid) == (Decimal(10000) - cost - fee(cost, BPS), Decimal(0))
        assert await violations(conn) == {}


async def test_an_unknown_order_is_refused(db_dsn: str, settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        ex = Exchange(uuid.uuid4(), "ACME", Side.BUY, 5)
        with pytest.raises(SettlementError, match="unknown order"):
            await settle_report(conn, ex.fill(5, "10.00"), settings)


async def _journal_kinds(conn: AConn, order_id: object) -> dict[str, int]:
    cursor = await conn.execute(
        "SELECT kind, count(*) FROM journal_txns WHERE order_id = %s GROUP BY kind", (order_id,)
    )
    return {str(k): int(n) for k, n in await cursor.fetchall()}
