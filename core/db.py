"""PostgreSQL connection pools (psycopg 3) built from the settings."""

from __future__ import annotations

from typing import Any, TypeAlias

from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool

from core.settings import Settings

# The connection type the services pass around (tuple rows unless a query asks otherwise).
AsyncConn: TypeAlias = AsyncConnection[Any]
AsyncPool: TypeAlias = AsyncConnectionPool[AsyncConn]


def make_async_pool(settings: Settings, name: str, *, reads: bool = False) -> AsyncPool:
    """An asyncio pool for the project's database; open it with ``await pool.open()``.

    ``reads``: connect to the standby when there is one (reads that may lag a moment).
    """
    return AsyncConnectionPool(
        settings.pg_read_dsn if reads else settings.pg_dsn,
        min_size=settings.pg_pool_size_min,
        max_size=settings.pg_pool_size_max,
        timeout=settings.pg_connect_timeout_s,
        name=name,
        open=False,
        # After a failover every pooled connection to the old primary is dead; one empty
        # query at checkout (a loopback round trip) swaps each for a connection to the new one.
        check=AsyncConnectionPool.check_connection if settings.pg_ha else None,
    )


def try_advisory_lock(conn: Connection[Any], key: int) -> bool:
    """Take session advisory lock ``key`` if it is free; tell whether this session holds it.

    The lock lasts as long as the session: a crashed holder frees it, and a standby takes over.
    """
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])
