"""Short-lived access tokens (JWT, HS256) naming the user and whether 2FA was passed."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

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


def issue_access_token(settings: Settings, user_id: int, *, two_factor: bool) -> str:
    """A signed token valid for ``access_token_ttl_s``."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "tfa": two_factor,
        "iat": now,
        "exp": now + settings.access_token_ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def read_access_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; UnauthenticatedError for an expired or forged one."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
        return Principal(user_id=int(claims["sub"]), two_factor=bool(claims.get("tfa")))
    except (jwt.PyJWTError, ValueError) as error:
        raise UnauthenticatedError(f"invalid access token: {error}") from None
