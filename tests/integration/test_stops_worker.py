"""The stops agent: a stop triggers once when the price crosses, not before, never twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.contracts import ORDER_COMMANDS, TICKS, NewOrder, OrderStatus, OrderType, Side, Tick
from core.contracts.orders import ORDER_UPDATES_TOPIC
from core.settings import Settings
from streams.settlement import settle_report
from streams.stop_trigger import load_pending_stops, release_stop
from tests.integration.settle_support import AConn, Exchange, place_order, setup_user
from tests.integration.worker_support import produce, running_worker, wait_consumed, worker_topics

pytestmark = pytest.mark.integration

AGENT_MODULE = "streams.stops"  # the stops agent alone


def ticks(symbol: str, *prices: str) -> list[tuple[bytes | None, bytes]]:
    out: list[tuple[bytes | None, bytes]] = []
    for price in prices:
        tick = Tick(symbol=symbol, price=Decimal(price), size=10, ts_event_ns=time.time_ns(), seq=1)
        out.append((tick.kafka_key(), TICKS.encode(tick)))
    return out


async def holder_with_stop(conn: AConn, settings: Settings) -> tuple[int, uuid.UUID]:
    """A user holding 20 ACME (bought and settled) with a SELL STOP_LOSS at 95.00 on them."""
    uid = await setup_user(conn, "10000")
    buy = await place_order(conn, settings, uid, Side.BUY, "ACME", 20, "100.00")
    await settle_report(conn, Exchange(buy, "ACME", Side.BUY, 20).fill(20, "100.00"), settings)
    await conn.commit()
    stop = await place_order(
        conn,
        settings,
        uid,
        Side.SELL,
        "ACME",
        20,
        None,
        order_type=OrderType.STOP_LOSS,
        trigger_price="95.00",
        status=OrderStatus.PENDING_TRIGGER,
    )
    return uid, stop


async def state(db_dsn: str) -> tuple[dict[uuid.UUID, Any], list[tuple[Any, ...]]]:
    """Orders (status, triggered) by id, and the outbox rows (topic, key, payload, headers)."""
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        cursor = await conn.execute("SELECT id, status, triggered_at IS NOT NULL FROM orders")
        orders = {row[0]: (row[1], row[2]) for row in await cursor.fetchall()}
        cursor = await conn.execute(
            "SELECT topic, key, payload, headers FROM outbox WHERE topic <> %s ORDER BY id",
            (ORDER_UPDATES_TOPIC,),
        )
        return orders, list(await cursor.fetchall())


async def test_stop_loss_triggers_once_when_the_price_crosses(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid, stop = await holder_with_stop(conn, settings)

    with worker_topics(settings, new_topic) as made:
        topic, sent = made.ticks, 0
        env = {"BROKER_STOPS_REFRESH_MS": "200"}
        with running_worker(settings, db_dsn, made, tmp_path, AGENT_MODULE, **env) as worker:
            # Near the trigger, never at it; another symbol far below it.
            batch = ticks("ACME", "100.00", "99.00", "95.05") + ticks("AXION", "10.00")
            produce(settings, topic, batch)
            sent += len(batch)
            wait_consumed(settings, worker, topic, sent)
            orders, outbox = await state(db_dsn)
            assert orders[stop] == ("PENDING_TRIGGER", False)
            assert outbox == []

            batch = ticks("ACME", "94.95", "94.00", "96.00", "93.00")
            produce(settings, topic, batch)
            sent += len(batch)
            wait_consumed(settings, worker, topic, sent)
            orders, outbox = await state(db_dsn)
            assert orders[stop] == ("NEW", True)
            assert len(outbox) == 1

            # A buy stop placed while the worker runs is picked up at the next reload.
            async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
                buy_stop = await place_order(
                    conn,
                    settings,
                    uid,
                    Side.BUY,
                    "ACME",
                    5,
                    "101.50",
                    order_type=OrderType.STOP_LIMIT,
                    trigger_price="101.00",
                    status=OrderStatus.PENDING_TRIGGER,
                )
            await asyncio.sleep(0.5)
            for prices in (("100.95", "90.00"), ("101.00", "89.00", "102.00")):
                produce(settings, topic, ticks("ACME", *prices))
                sent += len(prices)
                wait_consumed(settings, worker, topic, sent)
            orders, outbox = await state(db_dsn)
            assert orders[buy_stop] == ("NEW", True)

        # Every tick again, from the start, in a new consumer group: nothing triggers twice.
        with running_worker(settings, db_dsn, made, tmp_path, AGENT_MODULE, **env) as again:
            wait_consumed(settings, again, topic, sent)
        assert await state(db_dsn) == (orders, outbox)

    records = [ORDER_COMMANDS.decode(bytes(row[2])) for row in outbox]
    assert [(row[0], bytes(row[1]), row[3]) for row in outbox] == [
        (made.orders, str(stop).encode(), {"record": "new_order.v1"}),
        (made.orders, str(buy_stop).encode(), {"record": "new_order.v1"}),
    ]
    assert all(isinstance(r, NewOrder) for r in records)
    summary = [
        (r.side, r.order_type, r.quantity, r.price, r.trigger_price)
        for r in records
        if isinstance(r, NewOrder)
    ]
    assert summary == [
        (Side.SELL, OrderType.MARKET, 20, None, None),
        (Side.BUY, OrderType.LIMIT, 5, Decimal("101.50"), None),
    ]


async def test_release_is_guarded_by_the_pending_status(
    running_stack: Settings, db_dsn: str
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        _, stop_id = await holder_with_stop(conn, settings)
        (stop,) = (await load_pending_stops(conn))["ACME"]
        assert stop.order_id == stop_id
        await conn.commit()
        assert await release_stop(conn, stop, settings) is True
        assert await release_stop(conn, stop, settings) is False  # a second trigger
        assert await load_pending_stops(conn) == {}
        cursor = await conn.execute(
            "SELECT count(*) FROM outbox WHERE topic <> %s", (ORDER_UPDATES_TOPIC,)
        )
        assert await cursor.fetchone() == (1,)
