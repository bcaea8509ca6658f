"""What the database-writing agents (settle, stops) share: a pool and retries.

A transient database error (connection lost, pool timeout, deadlock, serialization failure) is
not the message's fault: it is retried with a backoff bounded by
``streams_db_retry_backoff_ms_max``, for as long as it takes. Meanwhile the agent stops
consuming, its lag grows, and /livez reports it stalled: the right signal for an operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg

from core.db import AsyncPool, make_async_pool
from core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# psycopg's OperationalError covers lost connections, pool timeouts (psycopg_pool.PoolTimeout),
# deadlocks and serialization failures; InterfaceError a connection closed under us.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
_FIRST_DELAY_MS = 50


async def open_pool(settings: Settings, name: str) -> AsyncPool:
    """A pool for an agent; opening does not wait, so a database outage does not block start."""
    pool = make_async_pool(settings, name)
    await pool.open(wait=False)
    return pool


async def retry_transient(
    attempt: Callable[[], Awaitable[T]], *, what: str, backoff_ms_max: int
) -> T:
    """Run ``attempt`` until it does not fail with a transient database error."""
    delay_ms = _FIRST_DELAY_MS
    while True:
        try:
            return await attempt()
        except TRANSIENT_DB_ERRORS as exc:
            log.warning("%s: transient database error (%s); retrying in %d ms", what, exc, delay_ms)
            await asyncio.sleep(delay_ms / 1000)
            delay_ms = min(delay_ms * 2, backoff_ms_max)
