"""FastAPI dependencies as ``Annotated`` aliases: settings, database connection, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request

from api.exceptions import ForbiddenError, UnauthenticatedError
from api.security.api_keys import principal_for_api_key
from api.security.tokens import Principal, read_access_token
from core.db import AsyncConn, AsyncPool
from core.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> AsyncPool:
    """The app's database pool."""
    pool: AsyncPool = request.app.state.pool
    return pool


async def get_conn(pool: Annotated[AsyncPool, Depends(get_pool)]) -> AsyncIterator[AsyncConn]:
    """A pooled connection for one request; services open their own transactions on it."""
    async with pool.connection() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[AsyncPool, Depends(get_pool)]
ConnDep = Annotated[AsyncConn, Depends(get_conn)]


async def get_principal(
    settings: SettingsDep,
    pool: PoolDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>`` or ``X-API-Key``."""
    if x_api_key:
        async with pool.connection() as conn:
            return await principal_for_api_key(conn, x_api_key)
    if authorization and authorization.lower().startswith("bearer "):
        return read_access_token(settings, authorization[7:].strip())
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


async def require_verified(principal: TwoFactorPrincipal, pool: PoolDep) -> Principal:
    """The caller, who must have passed 2FA and KYC: trading and withdrawals need both."""
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
    return principal


VerifiedPrincipal = Annotated[Principal, Depends(require_verified)]
