"""FastAPI dependencies as ``Annotated`` aliases: settings, database connection, the caller."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.datastructures import State

from api.exceptions import ForbiddenError, UnauthenticatedError
from api.security.api_keys import principal_for_api_key
from api.security.ratelimit import RateLimiter, hit
from api.security.revocations import RevokedSessions
from api.security.tokens import Principal, TokenCache, read_access_token_cached
from core.db import AsyncConn, AsyncPool
from core.settings import Settings


# Dependencies are ``async def`` even when they do no I/O: FastAPI runs a plain ``def`` in its
# threadpool, a thread hop per dependency per request.
async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_pool(request: Request) -> AsyncPool:
    """The app's database pool."""
    pool: AsyncPool = request.app.state.pool
    return pool


async def get_read_pool(request: Request) -> AsyncPool:
    """The pool for reads that may lag a moment: the standby's when PostgreSQL runs as a pair."""
    pool: AsyncPool = request.app.state.read_pool
    return pool


async def get_conn(pool: Annotated[AsyncPool, Depends(get_pool)]) -> AsyncIterator[AsyncConn]:
    """A pooled connection for one request; services open their own transactions on it."""
    async with pool.connection() as conn:
        yield conn


async def get_revoked_sessions(request: Request) -> RevokedSessions:
    """This process's set of ended sessions, to add to as soon as a revocation commits."""
    revoked: RevokedSessions = request.app.state.revoked_sessions
    return revoked


async def get_rate_limiter(request: Request) -> RateLimiter:
    """The app's rate limiter (counters shared in Redis)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def client_ip(request: Request) -> str:
    """The caller's address as the server sees it."""
    # Behind a proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips so that this
    # is the real client and not the proxy (else every login shares one per-address limit).
    return request.client.host if request.client else "unknown"


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[AsyncPool, Depends(get_pool)]
ReadPoolDep = Annotated[AsyncPool, Depends(get_read_pool)]
ConnDep = Annotated[AsyncConn, Depends(get_conn)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
RevokedSessionsDep = Annotated[RevokedSessions, Depends(get_revoked_sessions)]
ClientIpDep = Annotated[str, Depends(client_ip)]


async def principal_of_token(state: State, token: str) -> Principal:
    """The principal of a valid access token whose session was not ended; else 401."""
    tokens: TokenCache = state.access_tokens
    principal = read_access_token_cached(state.settings, token, tokens)
    revoked: RevokedSessions = state.revoked_sessions
    await revoked.check(principal, state.pool)
    return principal


async def get_principal(
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    limiter: RateLimiterDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>`` or ``X-API-Key``, within its rate limit.

    Each request counts once (FastAPI resolves this dependency once per request): per API key
    for key callers, per user for token callers.
    """
    if x_api_key:
        async with pool.connection() as conn:
            principal = await principal_for_api_key(conn, x_api_key)
        await hit(limiter, limiter.api_key, str(principal.api_key_id), "requests with this API key")
        return principal
    if authorization and authorization.lower().startswith("bearer "):
        principal = await principal_of_token(request.app.state, authorization[7:].strip())
        await hit(limiter, limiter.user, str(principal.user_id), "requests for this user")
        return principal
    raise UnauthenticatedError("send 'Authorization: Bearer <access token>' or 'X-API-Key'")


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_two_factor(principal: CurrentPrincipal) -> Principal:
    """The caller, who must have passed 2FA: moving money and trading need it."""
    if not principal.two_factor:
        raise ForbiddenError(
            "two-factor authentication is required: enroll at /v1/auth/2fa/enroll, verify, "
            "then log in with a TOTP code",
            code="two_factor_required",
        )
    return principal


TwoFactorPrincipal = Annotated[Principal, Depends(require_two_factor)]


async def require_verified(
    principal: TwoFactorPrincipal, pool: PoolDep, settings: SettingsDep, request: Request
) -> Principal:
    """The caller, who must have passed 2FA and KYC: trading and withdrawals need both."""
    # VERIFIED is final in this system (only REJECTED can be resubmitted), so a positive answer
    # is kept for a while: an order then needs no extra database round trip for KYC.
    verified_until: dict[int, float] = request.app.state.kyc_verified_until
    now = time.monotonic()
    if verified_until.get(principal.user_id, 0.0) > now:
        return principal
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT status FROM kyc_records WHERE user_id = %s", (principal.user_id,)
        )
        row = await cursor.fetchone()
    if row is None or row[0] != "VERIFIED":
        status = "not submitted" if row is None else str(row[0]).lower()
        raise ForbiddenError(
            f"KYC is {status}; trading and withdrawals need VERIFIED", code="kyc_required"
        )
    if len(verified_until) >= settings.kyc_verified_cache_max:
        verified_until.clear()
    verified_until[principal.user_id] = now + settings.kyc_verified_cache_s
    return principal


VerifiedPrincipal = Annotated[Principal, Depends(require_verified)]
