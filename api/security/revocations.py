"""Revoked sessions, as every API process must see them: LISTEN, and a set in memory.

A revocation (logout, "log out everywhere", a password change, a reused refresh token) updates
``auth_sessions``, whose trigger notifies ``auth_session_revoked`` (sql/migrations/0025). Each
API process LISTENs on one connection and keeps the ids of sessions revoked within an access
token's lifetime, so checking a token costs no round trip. While that connection is down the
set may be stale: the check then asks PostgreSQL itself. LISTEN comes before the load of the
recently ended sessions (``core.pg_listen``): a revocation between the two is heard, not lost.
The process that revokes also adds the ids itself after its commit, so the user's next request
to it is refused even before the notification comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg

from api.exceptions import UnauthenticatedError
from api.security.tokens import Principal
from core.db import AsyncPool
from core.pg_listen import listen
from core.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "auth_session_revoked"
_RECENTLY_REVOKED = (
    "SELECT id::text FROM auth_sessions WHERE revoked_at > now() - make_interval(secs => %s)"
)
# A session id that names no live row (revoked, expired or unknown) is refused.
_SESSION_LIVE = (
    "SELECT EXISTS (SELECT FROM auth_sessions WHERE id = %s::uuid"
    " AND revoked_at IS NULL AND expires_at > now())"
)


class RevokedSessions:
    """The sessions revoked lately, kept current by a LISTEN task; started by the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Session id -> when its entry may go (no access token of it is valid after that).
        self._until: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def add(self, *session_ids: str) -> None:
        """Remember revoked sessions for as long as one of their access tokens can live."""
        now = time.monotonic()
        for session_id in session_ids:
            if len(self._until) >= self._settings.access_token_cache_max:
                self._until = {sid: until for sid, until in self._until.items() if until > now}
            self._until[session_id] = now + self._settings.access_token_ttl_s

    async def check(self, principal: Principal, pool: AsyncPool) -> None:
        """Raise ``UnauthenticatedError`` if the principal's session was revoked or ended."""
        sid = principal.session_id
        if sid is None:
            return
        if sid in self._until:
            raise UnauthenticatedError("this session has ended: log in again", code="session_ended")
        if self.listening.is_set():
            return
        async with pool.connection() as conn:
            row = await (await conn.execute(_SESSION_LIVE, (sid,))).fetchone()
        if not (row and row[0]):
            raise UnauthenticatedError("this session has ended: log in again", code="session_ended")

    def start(self) -> None:
        """Start listening; ``listening`` is set while the set is current."""
        self._task = asyncio.create_task(self._run(), name="session-revocations")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async def on_listening(conn: psycopg.AsyncConnection[Any]) -> None:
            cursor = await conn.execute(_RECENTLY_REVOKED, (self._settings.access_token_ttl_s,))
            for (sid,) in await cursor.fetchall():
                self.add(str(sid))
            self.listening.set()

        async def on_notify(session_id: str) -> None:
            self.add(session_id)

        await listen(
            self._settings.pg_dsn,
            CHANNEL,
            on_listening=on_listening,
            on_notify=on_notify,
            on_lost=self.listening.clear,
            backoff_ms_max=self._settings.session_listen_retry_backoff_ms_max,
            what="session revocations",
        )
