"""Pending stop orders and their release: the database side of the stops agent.

Releasing a stop is one transaction: the order moves PENDING_TRIGGER -> NEW only if it is still
PENDING_TRIGGER (the guard against a concurrent cancel and against a second trigger), and its
NewOrder goes into the transactional outbox in the same transaction. The outbox relay then
publishes it to ``oms.orders``: one publisher for that topic, in commit order, and a trigger is
never published without its status change or lost after it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from psycopg.types.json import Jsonb

from core.contracts import ORDER_COMMANDS, NewOrder, OrderType, Side, TimeInForce
from core.db import AsyncConn
from core.settings import Settings

RECORD_HEADER = "record"  # as api/services/outbox.py: lets a cancel find an unsent NewOrder
NEW_ORDER_RECORD = str(NewOrder.__struct_config__.tag)

_SELECT_PENDING = (
    "SELECT id, user_id, symbol, side, order_type, quantity, trigger_price, price, time_in_force"
    " FROM orders WHERE status = 'PENDING_TRIGGER'"
)


@dataclass(frozen=True, slots=True)
class PendingStop:
    """A stop order waiting for its trigger price."""

    order_id: uuid.UUID
    user_id: int
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    trigger_price: Decimal
    price: Decimal | None  # the limit of a STOP_LIMIT
    time_in_force: TimeInForce

    def crossed(self, low: Decimal, high: Decimal) -> bool:
        """Whether prices from ``low`` to ``high`` reach the trigger (sell: down, buy: up)."""
        if self.side is Side.SELL:
            return low <= self.trigger_price
        return high >= self.trigger_price

    def released_order(self) -> NewOrder:
        """The order sent to the exchange: MARKET for a STOP_LOSS, LIMIT for a STOP_LIMIT."""
        limit = self.order_type is OrderType.STOP_LIMIT
        return NewOrder(
            order_id=str(self.order_id),
            user_id=self.user_id,
            symbol=self.symbol,
            side=self.side,
            order_type=OrderType.LIMIT if limit else OrderType.MARKET,
            quantity=self.quantity,
            price=self.price if limit else None,
            time_in_force=self.time_in_force,
            ts_created_ns=time.time_ns(),
        )


async def load_pending_stops(conn: AsyncConn) -> dict[str, list[PendingStop]]:
    """Every pending stop order, by symbol."""
    cursor = await conn.execute(_SELECT_PENDING)
    by_symbol: dict[str, list[PendingStop]] = {}
    for row in await cursor.fetchall():
        stop = PendingStop(
            order_id=row[0],
            user_id=int(row[1]),
            symbol=row[2],
            side=Side(row[3]),
            order_type=OrderType(row[4]),
            quantity=int(row[5]),
            trigger_price=row[6],
            price=row[7],
            time_in_force=TimeInForce(row[8]),
        )
        by_symbol.setdefault(stop.symbol, []).append(stop)
    return by_symbol


async def release_stop(conn: AsyncConn, stop: PendingStop, settings: Settings) -> bool:
    """Release a triggered stop once: status NEW and its NewOrder in the outbox; tell if done.

    False when the order is no longer pending (canceled, or released already): nothing written.
    """
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE orders SET status = 'NEW', triggered_at = now(), updated_at = now()"
            " WHERE id = %s AND status = 'PENDING_TRIGGER' RETURNING id",
            (stop.order_id,),
        )
        if await cursor.fetchone() is None:
            return False
        record = stop.released_order()
        await conn.execute(
            "INSERT INTO outbox (topic, key, payload, headers) VALUES (%s, %s, %s, %s)",
            (
                settings.topic_orders,
                record.kafka_key(),
                ORDER_COMMANDS.encode(record),
                Jsonb({RECORD_HEADER: NEW_ORDER_RECORD}),
            ),
        )
        return True
