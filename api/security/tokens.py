"""Short-lived access tokens (JWT, HS256): the user, the session, whether 2FA was passed."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TypeAlias

import jwt

from api.exceptions import UnauthenticatedError
from core.settings import Settings

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user, whether they passed 2FA, and the API key used, if any."""

    user_id: int
    two_factor: bool
    api_key_id: int | None = None
    session_id: str | None = None  # the login session of a token (auth_sessions), if any


def issue_access_token(
    settings: Settings, user_id: int, *, two_factor: bool, session_id: str | None = None
) -> str:
    """A signed token valid for ``access_token_ttl_s``, of session ``session_id`` if given."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(user_id),
        "tfa": two_factor,
        "iat": now,
        "exp": now + settings.access_token_ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if session_id is not None:
        claims["sid"] = session_id
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


# Token -> (its principal, its expiry as a Unix time): tokens that decoded as valid.
TokenCache: TypeAlias = dict[str, tuple[Principal, float]]


def read_access_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; UnauthenticatedError for an expired or forged one."""
    return _decode(settings, token)[0]


def read_access_token_cached(settings: Settings, token: str, cache: TokenCache) -> Principal:
    """``read_access_token``, answering a token seen valid before from ``cache`` until it expires.

    A token's claims cannot change (its signature covers them), so only the expiry needs
    checking again; PyJWT counts a token as expired once now >= exp, and so does this.
    """
    known = cache.get(token)
    if known is not None and time.time() < known[1]:
        return known[0]
    principal, expires_at = _decode(settings, token)
    if len(cache) >= settings.access_token_cache_max:
        cache.clear()
    if settings.access_token_cache_max > 0:
        cache[token] = (principal, expires_at)
    return principal


def _decode(settings: Settings, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
        sid = claims.get("sid")
        principal = Principal(
            user_id=int(claims["sub"]),
            two_factor=bool(claims.get("tfa")),
            session_id=None if sid is None else str(sid),
        )
        return principal, float(claims["exp"])
    except (jwt.PyJWTError, ValueError) as error:
        raise UnauthenticatedError(f"invalid access token: {error}") from None
