"""Helpers shared by the order tests: reference data, settled holdings, HTTP calls, Kafka reads."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from confluent_kafka import Consumer, Message

from core.instruments import DEFAULT_INSTRUMENTS, Instrument, seed_instruments
from core.ledger import AccountKind, TxnKind, deposit_entries, post, system, user
from core.money import notional
from core.settings import Settings
from infra.migrate import load_invariants
from tests.conftest import free_port
from tests.integration.api.conftest import TestUser, serve

# A symbol traded in lots of 10, beside the default universe (all lots of 1).
LOT10 = Instrument("LOTTEN", "Lot Ten Ltd", Decimal("0.05"), Decimal("100.00"), lot_size=10)
KAFKA_READ_TIMEOUT_S = 20.0


async def seed_reference_data(db_dsn: str) -> None:
    """The default instruments, a lot-of-10 one and an inactive one."""
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, [*DEFAULT_INSTRUMENTS, LOT10])
        await conn.execute(
            "INSERT INTO instruments (symbol, name, is_active) VALUES ('DELISTED', 'Gone', false)"
        )


async def set_last_price(db_dsn: str, symbol: str, price: str) -> None:
    """Record a last traded price, as the conflate agent would."""
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await conn.execute(
            "INSERT INTO last_prices (symbol, price, ts_event) VALUES (%s, %s, now())"
            " ON CONFLICT (symbol) DO UPDATE SET price = EXCLUDED.price",
            (symbol, Decimal(price)),
        )


async def give_shares(
    db_dsn: str, settings: Settings, user_id: int, symbol: str, quantity: int, price: str
) -> None:
    """Give a user shares the proper way: a filled BUY settled through the ledger.

    Deposit the cost, reserve it for a BUY order, settle one execution of the whole quantity
    (locked cash -> exchange clearing), and record the holding, so every invariant holds.
    """
    px = Decimal(price)
    cost = notional(quantity, px)
    order_id = uuid.uuid4()
    exec_id = f"test-exec-{uuid.uuid4().hex}"
    currency = settings.currency
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await post(
            conn,
            TxnKind.DEPOSIT,
            deposit_entries(user_id, cost),
            currency=currency,
            external_ref=f"test-deposit-{uuid.uuid4().hex}",
        )
        await conn.execute(
            "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type, quantity,"
            " price, status, cum_qty, avg_px, reserved_amount)"
            " VALUES (%s, %s, %s, %s, 'BUY', 'LIMIT', %s, %s, 'FILLED', %s, %s, 0)",
            (order_id, user_id, str(order_id), symbol, quantity, px, quantity, px),
        )
        await conn.execute(
            "SELECT ledger_post_order_reserve(%s, %s, %s, %s)", (user_id, order_id, cost, currency)
        )
        txn_id = await post(
            conn,
            TxnKind.FILL,
            [
                user(AccountKind.CASH_LOCKED, user_id, -cost),
                system(AccountKind.EXCHANGE_CLEARING, cost),
            ],
            currency=currency,
            order_id=order_id,
            exec_id=exec_id,
        )
        await conn.execute(
            "INSERT INTO executions (exec_id, order_id, symbol, side, last_qty, last_px,"
            " executed_at, journal_txn_id, settled_at)"
            " VALUES (%s, %s, %s, 'BUY', %s, %s, now(), %s, now())",
            (exec_id, order_id, symbol, quantity, px, txn_id),
        )
        await conn.execute(
            "INSERT INTO holdings (user_id, symbol, quantity, avg_buy_price)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, symbol)"
            " DO UPDATE SET quantity = holdings.quantity + EXCLUDED.quantity",
            (user_id, symbol, quantity, px),
        )


async def deposit(db_dsn: str, settings: Settings, user_id: int, amount: str) -> None:
    """Credit a user's available cash, as a settled deposit would."""
    cash = Decimal(amount)
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await post(
            conn,
            TxnKind.DEPOSIT,
            deposit_entries(user_id, cash),
            currency=settings.currency,
            external_ref=f"test-deposit-{uuid.uuid4().hex}",
        )


def order_body(**fields: Any) -> dict[str, Any]:
    """A LIMIT BUY of 1 ACME at 100.00, with any field replaced."""
    body: dict[str, Any] = {
        "symbol": "ACME",
        "side": "BUY",
        "quantity": 1,
        "type": "LIMIT",
        "price": "100.00",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def place(
    client: httpx.AsyncClient, who: TestUser, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    """POST /v1/orders with a fresh idempotency key unless one is given."""
    headers = who.headers | {"X-Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post("/v1/orders", json=body, headers=headers)


@asynccontextmanager
async def serve_client(settings: Settings, **updates: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second real server whose settings differ from the test's by ``updates``."""
    served = settings.model_copy(update={"api_port": free_port(), **updates})
    with contextmanager(serve)(served) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield http


def closed_now(settings: Settings) -> dict[str, object]:
    """Settings updates that close the market now: a one-minute session twelve hours away."""
    hour = (datetime.now(UTC).astimezone(ZoneInfo(settings.market_tz)).hour + 12) % 24
    return {
        "market_always_open": False,
        "market_open": f"{hour:02d}:00",
        "market_close": f"{hour:02d}:01",
    }


def wallet(db_dsn: str, user_id: int) -> tuple[Decimal, Decimal]:
    """(available, locked) cash of a user."""
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT balance, locked_balance FROM wallets WHERE user_id = %s", (user_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def holding(db_dsn: str, user_id: int, symbol: str) -> tuple[int, int]:
    """(quantity, locked_quantity) of a user's holding."""
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT quantity, locked_quantity FROM holdings WHERE user_id = %s AND symbol = %s",
            (user_id, symbol),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def invariant_violations(db_dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every invariant query's violating rows, by name; empty lists when all hold."""
    with psycopg.connect(db_dsn) as conn:
        return {name: conn.execute(q).fetchall() for name, q in load_invariants().items()}


def assert_invariants_hold(db_dsn: str) -> None:
    """Fail with the violating rows unless every invariant query returns none."""
    violations = {k: v for k, v in invariant_violations(db_dsn).items() if v}
    assert violations == {}


def read_topic(settings: Settings, topic: str, count: int) -> list[Message]:
    """Read ``count`` messages from the start of a one-partition topic (fails on timeout)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + KAFKA_READ_TIMEOUT_S
    try:
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    assert len(messages) == count, f"read {len(messages)} of {count} messages from {topic}"
    return messages


def topic_is_quiet(settings: Settings, topic: str, count: int, wait_s: float) -> bool:
    """Tell whether a topic holds no more than ``count`` messages after waiting ``wait_s``."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                seen += 1
    finally:
        consumer.close()
    return seen <= count
