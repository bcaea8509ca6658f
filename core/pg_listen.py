"""One PostgreSQL LISTEN connection kept open: reconnects with a bounded backoff, forever.

Used by every API process for what it must hear at once (order changes, ended sessions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

RETRY_BACKOFF_MS_MIN = 50


async def listen(
    dsn: str,
    channel: str,
    *,
    on_listening: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]],
    on_notify: Callable[[str], Awaitable[None]],
    on_lost: Callable[[], None],
    backoff_ms_max: int,
    what: str,
) -> NoReturn:
    """LISTEN on ``channel`` and hand each payload to ``on_notify``; run until cancelled.

    ``on_listening`` runs after each (re)connect, once LISTEN is active (so nothing sent from
    then on is missed); ``on_lost`` runs when the connection fails, before the wait to retry.
    """
    backoff_ms = RETRY_BACKOFF_MS_MIN
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                await on_listening(conn)
                backoff_ms = RETRY_BACKOFF_MS_MIN
                async for notify in conn.notifies():
                    await on_notify(notify.payload)
        except (psycopg.Error, OSError) as exc:
            on_lost()
            log.warning("%s: %s; retrying in %d ms", what, exc, backoff_ms)
            await asyncio.sleep(backoff_ms / 1000)
            backoff_ms = min(backoff_ms * 2, backoff_ms_max)
