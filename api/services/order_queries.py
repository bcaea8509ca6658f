"""Reading a user's orders: one by id or client order id, or a filtered page, newest first."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from api.exceptions import InvalidRequestError, NotFoundError
from api.services.order_models import OrderOut, OrderPage
from core.contracts import OrderStatus, Side
from core.db import AsyncConn, AsyncPool
from core.settings import Settings

# The columns every order query returns, named as OrderOut's fields.
ORDER_COLUMNS = (
    "id, client_order_id, symbol, side, order_type AS type, quantity, price, trigger_price,"
    " time_in_force, status, cum_qty, avg_px, reserved_amount, is_amo, reject_reason,"
    " created_at, updated_at"
)

_BAD_CURSOR = "cursor is not one this API returned; start again without a cursor"


def order_from_row(row: dict[str, Any]) -> OrderOut:
    """An OrderOut from a row selected with ORDER_COLUMNS."""
    return OrderOut.model_validate(row)


async def get_order(pool: AsyncPool, user_id: int, order_id: uuid.UUID) -> OrderOut:
    """One of the user's orders by id; another user's order is not found."""
    return await _one(pool, sql.SQL("id = %s AND user_id = %s"), (order_id, user_id), str(order_id))


async def get_order_by_client_id(pool: AsyncPool, user_id: int, client_order_id: str) -> OrderOut:
    """One of the user's orders by the client order id the user gave it."""
    return await _one(
        pool,
        sql.SQL("user_id = %s AND client_order_id = %s"),
        (user_id, client_order_id),
        f"with client_order_id {client_order_id!r}",
    )


async def _one(pool: AsyncPool, where: sql.SQL, params: tuple[Any, ...], label: str) -> OrderOut:
    query = sql.SQL("SELECT {} FROM orders WHERE {}").format(sql.SQL(ORDER_COLUMNS), where)
    async with pool.connection() as conn:
        rows = await _fetch(conn, query, list(params))
    if not rows:
        raise NotFoundError(f"no order {label}", code="order_not_found")
    return order_from_row(rows[0])


async def list_orders(
    pool: AsyncPool,
    settings: Settings,
    user_id: int,
    *,
    status: OrderStatus | None = None,
    symbol: str | None = None,
    side: Side | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> OrderPage:
    """A page of the user's orders, newest first, optionally filtered; keyset-paginated."""
    page_size = settings.page_limit_default if limit is None else limit
    if not 1 <= page_size <= settings.page_limit_max:
        raise InvalidRequestError(
            f"limit must be between 1 and {settings.page_limit_max}", code="invalid_limit"
        )
    conditions: list[sql.Composable] = [sql.SQL("user_id = %s")]
    params: list[Any] = [user_id]
    for column, value in (("status", status), ("symbol", symbol), ("side", side)):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(str(value))
    if cursor is not None:
        created_at, order_id = decode_cursor(cursor)
        conditions.append(sql.SQL("(created_at, id) < (%s, %s)"))
        params += [created_at, order_id]
    query = sql.SQL(
        "SELECT {columns} FROM orders WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %s"
    ).format(columns=sql.SQL(ORDER_COLUMNS), where=sql.SQL(" AND ").join(conditions))
    params.append(page_size + 1)
    async with pool.connection() as conn:
        rows = await _fetch(conn, query, params)
    items = [order_from_row(r) for r in rows[:page_size]]
    next_cursor = encode_cursor(items[-1]) if len(rows) > page_size else None
    return OrderPage(items=items, next_cursor=next_cursor)


async def _fetch(conn: AsyncConn, query: sql.Composed, params: list[Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def encode_cursor(order: OrderOut) -> str:
    """An opaque cursor pointing just after ``order`` in newest-first order."""
    raw = json.dumps([order.created_at.isoformat(), str(order.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) position a cursor points after; InvalidRequestError if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, order_id = json.loads(raw)
        position = datetime.fromisoformat(created_at), uuid.UUID(order_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequestError(_BAD_CURSOR, code="invalid_cursor") from None
    if position[0].tzinfo is None:
        raise InvalidRequestError(_BAD_CURSOR, code="invalid_cursor")
    return position
