"""The reads an order needs before its first write, sent to PostgreSQL in one round trip.

In pipeline mode the statements are sent together and run one after another, in this order:
the instrument, the last price (market orders), the wallet (buy) or holding (sell) locked
FOR UPDATE, then the user's count of recent orders for the fraud rule. The count runs after
the lock is granted, and under READ COMMITTED each statement takes a new snapshot, so it sees
every order of a concurrent request that held the lock before (as when they were sent apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import AsyncCursor

from api.services.fraud import read_orders_last_minute, send_orders_last_minute
from api.services.order_models import OrderRequest
from core.contracts import OrderType, Side
from core.db import AsyncConn


@dataclass(frozen=True, slots=True)
class Instrument:
    """What validation needs of an instrument."""

    tick_size: Decimal
    lot_size: int


@dataclass(frozen=True, slots=True)
class SentReads:
    """The cursors of the reads sent for one order; ``receive`` turns them into values."""

    instrument: AsyncCursor[Any]
    last_price: AsyncCursor[Any] | None
    position: AsyncCursor[Any]
    recent_orders: AsyncCursor[Any]


@dataclass(frozen=True, slots=True)
class OrderReads:
    """What the database said: the instrument (None: unknown or inactive), prices, position."""

    instrument: Instrument | None
    last_price: Decimal | None
    available: Decimal  # cash (buy) or shares (sell) available, after locking their row
    orders_last_minute: int


async def send(conn: AsyncConn, user_id: int, request: OrderRequest) -> SentReads:
    """Send the order's reads (call inside the order's transaction, in pipeline mode)."""
    instrument = await conn.execute(
        "SELECT tick_size, lot_size FROM instruments WHERE symbol = %s AND is_active",
        (request.symbol,),
    )
    last_price = None
    if request.type is OrderType.MARKET:
        last_price = await conn.execute(
            "SELECT price FROM last_prices WHERE symbol = %s", (request.symbol,)
        )
    if request.side is Side.BUY:
        # wallets.balance is the AVAILABLE cash (locked cash is locked_balance).
        position = await conn.execute(
            "SELECT balance FROM wallets WHERE user_id = %s FOR UPDATE", (user_id,)
        )
    else:
        position = await conn.execute(
            "SELECT quantity - locked_quantity FROM holdings"
            " WHERE user_id = %s AND symbol = %s FOR UPDATE",
            (user_id, request.symbol),
        )
    recent = await send_orders_last_minute(conn, user_id)
    return SentReads(instrument, last_price, position, recent)


async def receive(sent: SentReads) -> OrderReads:
    """The values of reads sent by ``send``."""
    row = await sent.instrument.fetchone()
    instrument = None if row is None else Instrument(row[0], int(row[1]))
    last_price = None
    if sent.last_price is not None:
        row = await sent.last_price.fetchone()
        last_price = None if row is None else Decimal(row[0])
    row = await sent.position.fetchone()
    available = Decimal(0) if row is None else Decimal(row[0])
    return OrderReads(
        instrument, last_price, available, await read_orders_last_minute(sent.recent_orders)
    )
