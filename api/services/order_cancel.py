"""Canceling an order: locally when nothing reached the exchange, else by a cancel request.

A stop waiting for its trigger, or an order whose NewOrder is still in the outbox (an AMO held
for the open, or one the relay has not sent yet), is canceled here and now: status CANCELED, the
reserve released through the ledger (buys) or the shares unlocked (sells), the outbox row marked
canceled. An order the exchange may hold goes to PENDING_CANCEL with a CancelOrder in the outbox;
the execution report of the cancel finishes it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from psycopg import sql
from psycopg.rows import dict_row

from api.exceptions import ConflictError, NotFoundError
from api.services.order_models import OrderOut
from api.services.order_queries import ORDER_COLUMNS, order_from_row
from api.services.outbox import enqueue, withdraw_unsent_new_order
from core import ledger
from core.contracts import TERMINAL_ORDER_STATUSES, CancelOrder, OrderStatus, Side
from core.db import AsyncConn, AsyncPool
from core.ledger import AccountKind, TxnKind
from core.settings import Settings

_LOCK_ORDER = sql.SQL("SELECT {} FROM orders WHERE id = %s AND user_id = %s FOR UPDATE").format(
    sql.SQL(ORDER_COLUMNS)
)
_SET_STATUS = sql.SQL(
    "UPDATE orders SET status = %s, reserved_amount = %s, updated_at = now()"
    " WHERE id = %s RETURNING {}"
).format(sql.SQL(ORDER_COLUMNS))


@dataclass(frozen=True, slots=True)
class CancelResult:
    """The order after the cancel, and whether it is final already (canceled locally)."""

    order: OrderOut
    canceled_locally: bool


async def cancel_order(
    pool: AsyncPool, settings: Settings, user_id: int, order_id: uuid.UUID
) -> CancelResult:
    """Cancel one of the user's orders; another user's order is not found."""
    async with pool.connection() as conn, conn.transaction():
        order = await _lock(conn, user_id, order_id)
        if order.status in TERMINAL_ORDER_STATUSES:
            raise ConflictError(
                f"order {order_id} is {order.status} already and cannot be canceled",
                code="order_final",
            )
        if order.status is OrderStatus.PENDING_CANCEL:
            # Asked before: one CancelOrder is enough.
            return CancelResult(order, canceled_locally=False)
        if order.status is OrderStatus.PENDING_TRIGGER or await withdraw_unsent_new_order(
            conn, order.id
        ):
            return CancelResult(await _cancel_locally(conn, settings, user_id, order), True)
        await enqueue(
            conn, settings.topic_orders, CancelOrder(order_id=str(order.id), ts_ns=time.time_ns())
        )
        pending = await _set_status(conn, order, OrderStatus.PENDING_CANCEL, keep_reserve=True)
        return CancelResult(pending, canceled_locally=False)


async def _lock(conn: AsyncConn, user_id: int, order_id: uuid.UUID) -> OrderOut:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_LOCK_ORDER, (order_id, user_id))
        row = await cursor.fetchone()
    if row is None:
        raise NotFoundError(f"no order {order_id}", code="order_not_found")
    return order_from_row(row)


async def _set_status(
    conn: AsyncConn, order: OrderOut, status: OrderStatus, *, keep_reserve: bool
) -> OrderOut:
    reserved = order.reserved_amount if keep_reserve else 0
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_SET_STATUS, (status.value, reserved, order.id))
        row = await cursor.fetchone()
    if row is None:
        # The row is locked by this transaction; losing it is a bug, not a user error.
        raise ValueError(f"order {order.id} vanished while locked")
    return order_from_row(row)


async def _cancel_locally(
    conn: AsyncConn, settings: Settings, user_id: int, order: OrderOut
) -> OrderOut:
    if order.side is Side.BUY and order.reserved_amount > 0:
        await ledger.post(
            conn,
            TxnKind.ORDER_RELEASE,
            [
                ledger.user(AccountKind.CASH_LOCKED, user_id, -order.reserved_amount),
                ledger.user(AccountKind.CASH_AVAILABLE, user_id, order.reserved_amount),
            ],
            currency=settings.currency,
            reference=f"release of canceled order {order.id}",
            order_id=order.id,
        )
    elif order.side is Side.SELL:
        await conn.execute(
            "UPDATE holdings SET locked_quantity = locked_quantity - %s, updated_at = now()"
            " WHERE user_id = %s AND symbol = %s",
            (order.quantity - order.cum_qty, user_id, order.symbol),
        )
    return await _set_status(conn, order, OrderStatus.CANCELED, keep_reserve=False)
