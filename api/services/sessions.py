"""Login sessions: open one, rotate its refresh token, revoke one or all of a user's.

A refresh token is used once: the answer carries its successor. A used token presented again
was copied by someone (the user's client holds only the newest), so the whole session is
revoked and both holders must log in again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from api.exceptions import UnauthenticatedError
from api.security import sessions
from api.security.revocations import RevokedSessions
from api.security.tokens import issue_access_token
from core.db import AsyncConn, AsyncPool
from core.settings import Settings

log = logging.getLogger(__name__)

REASON_LOGOUT = "logout"
REASON_LOGOUT_EVERYWHERE = "logout_everywhere"
REASON_PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a secret
REASON_REFRESH_REUSED = "refresh_token_reused"

_INSERT_SESSION = (
    "INSERT INTO auth_sessions (id, user_id, two_factor, expires_at)"
    " VALUES (%s, %s, %s, now() + make_interval(secs => %s))"
)
_INSERT_REFRESH = "INSERT INTO auth_refresh_tokens (token_hash, session_id) VALUES (%s, %s)"
_LOCK_REFRESH = (
    "SELECT r.session_id::text, r.used_at IS NOT NULL, s.user_id, s.two_factor,"
    " s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active,"
    " extract(epoch FROM s.expires_at - now())::bigint"
    " FROM auth_refresh_tokens r JOIN auth_sessions s ON s.id = r.session_id"
    " JOIN users u ON u.id = s.user_id"
    " WHERE r.token_hash = %s FOR UPDATE OF r, s"
)
_REVOKE = (
    "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = %s"
    " WHERE id = %s::uuid AND revoked_at IS NULL RETURNING id::text"
)
_REVOKE_ALL = (
    "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = %s"
    " WHERE user_id = %s AND revoked_at IS NULL AND id IS DISTINCT FROM %s::uuid"
    " RETURNING id::text"
)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token and the refresh token that renews it, both of one session."""

    access_token: str
    expires_in_s: int
    refresh_token: str
    refresh_expires_in_s: int
    two_factor: bool
    session_id: str


def _pair(
    settings: Settings, user_id: int, two_factor: bool, session_id: str, refresh: str, left_s: int
) -> TokenPair:
    access = issue_access_token(settings, user_id, two_factor=two_factor, session_id=session_id)
    return TokenPair(
        access_token=access,
        expires_in_s=settings.access_token_ttl_s,
        refresh_token=refresh,
        refresh_expires_in_s=left_s,
        two_factor=two_factor,
        session_id=session_id,
    )


async def open_session(
    conn: AsyncConn, settings: Settings, user_id: int, *, two_factor: bool
) -> TokenPair:
    """Open a session for a user who just proved who they are; its first token pair."""
    session_id = str(uuid.uuid4())
    refresh = sessions.new_refresh_token()
    async with conn.transaction():
        await conn.execute(
            _INSERT_SESSION, (session_id, user_id, two_factor, settings.refresh_token_ttl_s)
        )
        await conn.execute(_INSERT_REFRESH, (sessions.digest(refresh), session_id))
    return _pair(settings, user_id, two_factor, session_id, refresh, settings.refresh_token_ttl_s)


async def refresh(
    pool: AsyncPool, settings: Settings, revoked: RevokedSessions, token: str
) -> TokenPair:
    """A new token pair for a refresh token, which is used up; a reused one ends its session."""
    reused = False
    token_hash = sessions.digest(token)
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(_LOCK_REFRESH, (token_hash,))
        row = await cursor.fetchone()
        if row is None:
            raise UnauthenticatedError("unknown refresh token", code="invalid_refresh_token")
        session_id, used, user_id, two_factor, live, left_s = row
        if not live:
            raise UnauthenticatedError("this session has ended: log in again", code="session_ended")
        if used:
            # Committed before the refusal: the session ends for whoever holds its tokens.
            await conn.execute(_REVOKE, (REASON_REFRESH_REUSED, session_id))
            reused = True
        else:
            await conn.execute(
                "UPDATE auth_refresh_tokens SET used_at = now() WHERE token_hash = %s",
                (token_hash,),
            )
            successor = sessions.new_refresh_token()
            await conn.execute(_INSERT_REFRESH, (sessions.digest(successor), session_id))
    if reused:
        revoked.add(session_id)
        log.warning("a used refresh token came back: session revoked", extra={"user_id": user_id})
        raise UnauthenticatedError(
            "this refresh token was already used: the session is ended, log in again",
            code="refresh_token_reused",
        )
    return _pair(settings, int(user_id), bool(two_factor), session_id, successor, int(left_s))


async def revoke(conn: AsyncConn, session_id: str, reason: str) -> list[str]:
    """End one session (logout); the ids ended, for ``RevokedSessions.add`` after the commit."""
    cursor = await conn.execute(_REVOKE, (reason, session_id))
    return [str(sid) for (sid,) in await cursor.fetchall()]


async def revoke_all(
    conn: AsyncConn, user_id: int, reason: str, *, keep: str | None = None
) -> list[str]:
    """End every session of a user but ``keep``; the ids ended, to add after the commit."""
    cursor = await conn.execute(_REVOKE_ALL, (reason, user_id, keep))
    return [str(sid) for (sid,) in await cursor.fetchall()]
