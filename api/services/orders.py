"""Placing an order: one database transaction from the idempotency key to the outbox row.

Order of work inside the transaction, and why:
1. claim the idempotency key first, so concurrent requests with one key serialize on its row;
2. read the instrument (and last price), lock the wallet (buy) or holding (sell) row, so a
   user's concurrent orders on it serialize, and count the user's recent orders;
3. validate against reference data and the calendar (a failure rolls back, the key is freed);
4. fraud rules, then available cash or shares: refusals come before any write, and are stored
   as the key's response so a retry gets the same answer;
5. insert the order, move the reserve (ledger) or lock the shares, add the outbox row, store the
   response, commit.

Round trips (7, from 12 sent one by one): BEGIN (psycopg sends it alone); steps 1-2 together
in pipeline mode; the order; the ledger's three statements; then the outbox row, the stored
response and the COMMIT together. Each round trip costs the API an event-loop wake-up and a
resume, and the request a wait for PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from api.errors import error_body, status_for
from api.exceptions import (
    ConflictError,
    FraudRuleError,
    InsufficientFundsError,
    InvalidRequestError,
)
from api.services import idempotency, order_reads, order_rules
from api.services.fraud import check_order_rules
from api.services.idempotency import StoredResponse
from api.services.order_models import OrderOut, OrderRequest
from api.services.order_queries import ORDER_COLUMNS, order_from_row
from api.services.order_reads import Instrument, OrderReads
from api.services.outbox import enqueue
from core import ledger
from core.calendar import calendar_from_settings, is_open, next_open
from core.contracts import NewOrder, OrderStatus, OrderType, Side
from core.db import AsyncConn, AsyncPool
from core.ledger import AccountKind, TxnKind
from core.settings import Settings

ORDERS_PATH = "/v1/orders"
# Refusals that depend on the account's state; they are stored as the key's response.
STORED_REFUSALS = (InsufficientFundsError, FraudRuleError, ConflictError)


_INSERT_ORDER = sql.SQL(
    "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type,"
    " time_in_force, quantity, price, trigger_price, status, reserved_amount, is_amo)"
    " VALUES (%(id)s, %(user_id)s, %(client_order_id)s, %(symbol)s, %(side)s,"
    " %(order_type)s, %(time_in_force)s, %(quantity)s, %(price)s, %(trigger_price)s,"
    " %(status)s, %(reserved_amount)s, %(is_amo)s)"
    " ON CONFLICT ON CONSTRAINT orders_client_order_id_key DO NOTHING"
    " RETURNING {}"
).format(sql.SQL(ORDER_COLUMNS))


@dataclass(frozen=True, slots=True)
class Plan:
    """What validation decided about an order, before its first write."""

    value: Decimal  # quantity x the price it is valued at
    reserve: Decimal  # cash to lock (buys); 0 for sells
    status: OrderStatus  # NEW, or PENDING_TRIGGER for stops
    is_amo: bool
    available_at: datetime | None  # when the outbox row may be published; None = now


async def place_order(
    pool: AsyncPool,
    settings: Settings,
    user_id: int,
    idempotency_key: str,
    request: OrderRequest,
    now: datetime | None = None,
) -> StoredResponse:
    """Place an order once per idempotency key; return the (stored) HTTP response."""
    digest = idempotency.request_hash("POST", ORDERS_PATH, request.model_dump(mode="json"))
    # The pool's connection is not autocommit: the first statement opens the transaction, and
    # leaving the block rolls it back on an exception (committed below otherwise).
    async with pool.connection() as conn:
        async with conn.pipeline():
            claimed = await idempotency.send_claim(conn, user_id, idempotency_key, digest)
            sent = await order_reads.send(conn, user_id, request)
        stored = await idempotency.finish_claim(conn, claimed, user_id, idempotency_key, digest)
        if stored is not None:
            return stored
        reads = await order_reads.receive(sent)
        plan = validate(settings, request, reads, now or datetime.now(UTC))
        try:
            order = await _accept(conn, settings, user_id, request, plan, reads)
        except STORED_REFUSALS as refusal:
            async with conn.pipeline():
                refused = await idempotency.send_store(
                    conn, user_id, idempotency_key, status_for(refusal), error_body(refusal)
                )
                await _send_commit(conn)
            return await idempotency.finish_store(refused, user_id, idempotency_key)
        async with conn.pipeline():
            await _send_writes(conn, settings, user_id, request, plan, order)
            accepted = await idempotency.send_store(
                conn,
                user_id,
                idempotency_key,
                int(HTTPStatus.CREATED),
                order.model_dump(mode="json"),
            )
            await _send_commit(conn)
        return await idempotency.finish_store(accepted, user_id, idempotency_key)


async def _send_commit(conn: AsyncConn) -> None:
    # conn.commit() syncs the pipeline at once, and leaving the pipeline syncs again: a round
    # trip more. COMMIT as a statement is queued with the others; libpq then reports the
    # connection idle, so the pool's commit on leaving the connection block does nothing.
    await conn.execute("COMMIT", prepare=False)


def validate(settings: Settings, request: OrderRequest, reads: OrderReads, now: datetime) -> Plan:
    """Check the order against its instrument, the calendar and the last price; plan it."""
    order_rules.check_price_fields(request.type, request.price, request.trigger_price)
    instrument = _instrument(reads.instrument, request.symbol)
    order_rules.check_quantity(request.quantity, instrument.lot_size, settings.order_quantity_max)
    order_rules.check_on_tick("price", request.price, instrument.tick_size)
    order_rules.check_on_tick("trigger_price", request.trigger_price, instrument.tick_size)
    is_amo, available_at = _session(settings, request.amo, now)
    last_price = reads.last_price if request.type is OrderType.MARKET else None
    price = order_rules.unit_price(
        request.type, request.price, request.trigger_price, last_price, request.symbol
    )
    value = order_rules.order_value(request.quantity, price)
    reserve = Decimal(0)
    if request.side is Side.BUY:
        reserve = order_rules.buy_reserve(
            request.type, value, settings.fee_rate_bps, settings.market_protection_band_bps
        )
    stop = request.type in order_rules.STOP_TYPES
    status = OrderStatus.PENDING_TRIGGER if stop else OrderStatus.NEW
    return Plan(value, reserve, status, is_amo, available_at)


def _session(settings: Settings, amo: bool, now: datetime) -> tuple[bool, datetime | None]:
    # While the market is open the amo flag changes nothing: the order goes out at once.
    calendar = calendar_from_settings(settings)
    if is_open(calendar, now):
        return False, None
    opens = next_open(calendar, now)
    if not amo:
        raise InvalidRequestError(
            f"the market is closed; it opens next at {opens.isoformat()}."
            " Send amo=true to place an after-market order, sent at that open",
            code="market_closed",
        )
    return True, opens


def _instrument(instrument: Instrument | None, symbol: str) -> Instrument:
    if instrument is None:
        raise InvalidRequestError(f"unknown or inactive symbol {symbol}", code="unknown_symbol")
    return instrument


async def _accept(
    conn: AsyncConn,
    settings: Settings,
    user_id: int,
    request: OrderRequest,
    plan: Plan,
    reads: OrderReads,
) -> OrderOut:
    # Everything that can refuse runs before the first write, so a refusal leaves only the key.
    # The wallet or holding row was locked by the reads, before the count of recent orders.
    check_order_rules(settings, plan.value, reads.orders_last_minute)
    if request.side is Side.BUY:
        _check_cash(reads.available, plan.reserve)
    else:
        _check_shares(int(reads.available), request.quantity, request.symbol)
    order = await _insert_order(conn, user_id, request, plan)
    if request.side is Side.BUY:
        await ledger.post(
            conn,
            TxnKind.ORDER_RESERVE,
            [
                ledger.user(AccountKind.CASH_AVAILABLE, user_id, -plan.reserve),
                ledger.user(AccountKind.CASH_LOCKED, user_id, plan.reserve),
            ],
            currency=settings.currency,
            reference=f"reserve for order {order.id}",
            order_id=order.id,
        )
    return order


async def _send_writes(
    conn: AsyncConn,
    settings: Settings,
    user_id: int,
    request: OrderRequest,
    plan: Plan,
    order: OrderOut,
) -> None:
    # Writes whose results nobody reads: in pipeline mode they go with the stored response.
    if request.side is Side.SELL:
        await conn.execute(
            "UPDATE holdings SET locked_quantity = locked_quantity + %s, updated_at = now()"
            " WHERE user_id = %s AND symbol = %s",
            (request.quantity, user_id, request.symbol),
        )
    if plan.status is OrderStatus.NEW:
        await enqueue(conn, settings.topic_orders, _new_order(user_id, order), plan.available_at)


def _check_cash(available: Decimal, reserve: Decimal) -> None:
    if available < reserve:
        raise InsufficientFundsError(
            f"insufficient funds: the order needs {reserve} (fees and any market protection band"
            f" included), {available} is available",
            code="insufficient_funds",
        )


def _check_shares(available: int, quantity: int, symbol: str) -> None:
    if available < quantity:
        raise InsufficientFundsError(
            f"insufficient shares: selling {quantity} {symbol}, {available} available",
            code="insufficient_shares",
        )


async def _insert_order(
    conn: AsyncConn, user_id: int, request: OrderRequest, plan: Plan
) -> OrderOut:
    order_id = uuid.uuid4()
    params: dict[str, Any] = {
        "id": order_id,
        "user_id": user_id,
        "client_order_id": request.client_order_id or str(order_id),
        "symbol": request.symbol,
        "side": request.side.value,
        "order_type": request.type.value,
        "time_in_force": request.time_in_force.value,
        "quantity": request.quantity,
        "price": request.price,
        "trigger_price": request.trigger_price,
        "status": plan.status.value,
        "reserved_amount": plan.reserve,
        "is_amo": plan.is_amo,
    }
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_INSERT_ORDER, params)
        row = await cursor.fetchone()
    if row is None:
        raise ConflictError(
            f"client_order_id {params['client_order_id']!r} was used before; a client order id"
            " can never be reused",
            code="client_order_id_reused",
        )
    return order_from_row(row)


def _new_order(user_id: int, order: OrderOut) -> NewOrder:
    return NewOrder(
        order_id=str(order.id),
        user_id=user_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.type,
        quantity=order.quantity,
        price=order.price,
        trigger_price=order.trigger_price,
        time_in_force=order.time_in_force,
        ts_created_ns=time.time_ns(),
    )
