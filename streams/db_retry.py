"""What the database-writing agents share: a pool and retries (tenacity).

A transient database error (connection lost, pool timeout, deadlock, serialization failure) is
not the message's fault: it is retried with a backoff bounded by
``streams_db_retry_backoff_ms_max``, for as long as it takes. Meanwhile the agent stops
consuming, its lag grows, and /livez reports it stalled: the right signal for an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

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
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff_ms_max: int,
    errors: tuple[type[Exception], ...] = TRANSIENT_DB_ERRORS,
) -> T:
    """Run ``attempt`` until it does not fail with one of ``errors`` (never gives up)."""

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        transient = isinstance(exc, TRANSIENT_DB_ERRORS)
        kind = "transient database error" if transient else "database error"
        delay_ms = state.upcoming_sleep * 1000
        # A non-transient error is rarer and harder to read: keep its traceback in the log.
        log.warning(
            "%s: %s (%s); retrying in %d ms",
            what,
            kind,
            exc,
            delay_ms,
            exc_info=None if transient else exc,
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(errors),
        wait=wait_exponential(multiplier=_FIRST_DELAY_MS / 1000, max=backoff_ms_max / 1000),
        before_sleep=log_retry,
        reraise=True,
    )

    # tenacity awaits only what a coroutine function returns; ``attempt`` is often a lambda.
    async def call() -> T:
        return await attempt()

    return await retrying(call)
