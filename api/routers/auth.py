"""Routes for sign-up, login and two-factor authentication (TOTP)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    ClientIpDep,
    ConnDep,
    CurrentPrincipal,
    PoolDep,
    RateLimiterDep,
    SettingsDep,
)
from api.security.ratelimit import hit_login
from api.services import accounts

router = APIRouter(prefix="/v1/auth", tags=["auth"])

# Bounds on request fields only: the password rules themselves come from the settings.
EMAIL_CHARS_MAX = 320
PASSWORD_CHARS_MAX = 1024
TOTP_CODE_CHARS_MAX = 16

Email = Annotated[str, Field(min_length=3, max_length=EMAIL_CHARS_MAX)]
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_CHARS_MAX)]
TotpCode = Annotated[str, Field(min_length=1, max_length=TOTP_CODE_CHARS_MAX, pattern=r"^[0-9]+$")]


class Credentials(BaseModel):
    """An email and a password."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "alice@example.com", "password": "correct horse battery"}]
        }
    )

    email: Email
    password: Password


class LoginRequest(Credentials):
    """Credentials, plus the current TOTP code once two-factor authentication is enrolled."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "alice@example.com",
                    "password": "correct horse battery",
                    "totp_code": "123456",
                }
            ]
        }
    )

    totp_code: TotpCode | None = None


class SignupResponse(BaseModel):
    """The new user."""

    user_id: int
    email: str


class TokenResponse(BaseModel):
    """A short-lived bearer token; ``two_factor`` says whether it may move money and trade."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiJ9...",
                    "token_type": "bearer",
                    "expires_in_s": 900,
                    "two_factor": True,
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in_s: int
    two_factor: bool


class EnrollResponse(BaseModel):
    """The TOTP secret to put in an authenticator app (shown now, then never again)."""

    secret: str
    otpauth_uri: str


class VerifyRequest(BaseModel):
    """The first code from the authenticator app."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "123456"}]})

    code: TotpCode


class MeResponse(BaseModel):
    """The caller's account; ``two_factor`` is about the token used for this request."""

    user_id: int
    email: str
    two_factor_enrolled: bool
    two_factor: bool
    kyc_status: str | None


def _token_response(token: accounts.AccessToken) -> TokenResponse:
    return TokenResponse(
        access_token=token.access_token,
        expires_in_s=token.expires_in_s,
        two_factor=token.two_factor,
    )


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "Email taken"}, 422: {"description": "Weak password"}},
)
async def signup(body: Credentials, pool: PoolDep, settings: SettingsDep) -> SignupResponse:
    """Create an account (with its wallet); log in next, then enroll two-factor authentication."""
    user_id = await accounts.signup(pool, settings, body.email, body.password)
    return SignupResponse(user_id=user_id, email=accounts.normalise_email(body.email))


@router.post(
    "/login",
    responses={
        401: {"description": "Bad credentials, or TOTP code missing (totp_required) or wrong"},
        429: {
            "description": "Too many attempts for this email or from this address "
            "(rate_limited), or the attempt counters are unreachable for a moment "
            "(rate_limit_unavailable); see Retry-After"
        },
    },
)
async def login(
    body: LoginRequest,
    pool: PoolDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    ip: ClientIpDep,
) -> TokenResponse:
    """Exchange credentials (and a TOTP code once enrolled) for an access token."""
    await hit_login(limiter, body.email.strip().lower(), ip)
    token = await accounts.login(pool, settings, body.email, body.password, body.totp_code)
    return _token_response(token)


@router.post("/2fa/enroll", responses={409: {"description": "Already enrolled and verified"}})
async def enroll(
    principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> EnrollResponse:
    """Start TOTP enrollment: a new secret (stored encrypted), replacing an unverified one."""
    secret, uri = await accounts.enroll_totp(conn, settings, principal.user_id)
    return EnrollResponse(secret=secret, otpauth_uri=uri)


@router.post(
    "/2fa/verify",
    responses={401: {"description": "Wrong or reused code"}, 409: {"description": "Not enrolled"}},
)
async def verify(
    body: VerifyRequest, principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> TokenResponse:
    """Finish enrollment with a first code; answers a new token that has passed 2FA."""
    token = await accounts.verify_totp(conn, settings, principal.user_id, body.code)
    return _token_response(token)


@router.get("/me")
async def me(principal: CurrentPrincipal, conn: ConnDep) -> MeResponse:
    """The caller's account, 2FA and KYC state."""
    found = await accounts.profile(conn, principal.user_id)
    return MeResponse(
        user_id=found.user_id,
        email=found.email,
        two_factor_enrolled=found.two_factor_enrolled,
        two_factor=principal.two_factor,
        kyc_status=found.kyc_status,
    )
