"""Writing order commands to the transactional outbox, in the transaction that decided them.

The relay (streams/outbox_relay.py) publishes the rows to Kafka after commit, in commit order.
Each row's headers name its record type, so an unsent NewOrder can be found and withdrawn.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg.types.json import Jsonb

from core.contracts import ORDER_COMMANDS, NewOrder, OrderCommand
from core.db import AsyncConn

RECORD_HEADER = "record"
NEW_ORDER_RECORD = NewOrder.__struct_config__.tag


def record_tag(record: OrderCommand) -> str:
    """The ``type`` tag of a record, as written in its JSON (e.g. "new_order.v1")."""
    return str(type(record).__struct_config__.tag)


async def enqueue(
    conn: AsyncConn, topic: str, record: OrderCommand, available_at: datetime | None = None
) -> None:
    """Add ``record`` to the outbox, keyed by its order id; hold it until ``available_at``."""
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload, headers, available_at)"
        " VALUES (%s, %s, %s, %s, COALESCE(%s::timestamptz, now()))",
        (
            topic,
            record.kafka_key(),
            ORDER_COMMANDS.encode(record),
            Jsonb({RECORD_HEADER: record_tag(record)}),
            available_at,
        ),
    )


async def withdraw_unsent_new_order(conn: AsyncConn, order_id: uuid.UUID) -> bool:
    """Mark the order's NewOrder row canceled if the relay has not published it; tell if so.

    A row the relay holds locked is being published right now, so it counts as sent: SKIP LOCKED
    keeps a cancel from waiting out a Kafka delivery timeout.
    """
    cursor = await conn.execute(
        "UPDATE outbox SET canceled_at = now() WHERE id = ("
        " SELECT id FROM outbox WHERE key = %s AND headers ->> %s = %s"
        " AND published_at IS NULL AND canceled_at IS NULL"
        " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ") RETURNING id",
        (str(order_id).encode(), RECORD_HEADER, NEW_ORDER_RECORD),
    )
    return await cursor.fetchone() is not None
