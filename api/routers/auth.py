"""Routes for sign-up, login, sessions (refresh, logout), passwords and 2FA (TOTP)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    ClientIpDep,
    ConnDep,
    CurrentPrincipal,
    PoolDep,
    RateLimiterDep,
    RevokedSessionsDep,
    SettingsDep,
    TwoFactorPrincipal,
)
from api.errors import documented
from api.exceptions import InvalidRequestError
from api.security.ratelimit import hit_login
from api.security.tokens import Principal
from api.services import accounts, sessions

router = APIRouter(prefix="/v1/auth", tags=["auth"])

# Bounds on request fields only: the password rules themselves come from the settings.
EMAIL_CHARS_MAX = 320
PASSWORD_CHARS_MAX = 1024
TOTP_CODE_CHARS_MAX = 16
RECOVERY_CODE_CHARS_MAX = 32
REFRESH_TOKEN_CHARS_MAX = 128

Email = Annotated[str, Field(min_length=3, max_length=EMAIL_CHARS_MAX)]
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_CHARS_MAX)]
TotpCode = Annotated[str, Field(min_length=1, max_length=TOTP_CODE_CHARS_MAX, pattern=r"^[0-9]+$")]
RecoveryCode = Annotated[
    str, Field(min_length=1, max_length=RECOVERY_CODE_CHARS_MAX, pattern=r"^[0-9A-Za-z -]+$")
]


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
    """Credentials, plus the current TOTP code once two-factor authentication is enrolled
    (or, with the authenticator lost, one of the recovery codes instead)."""

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
    recovery_code: RecoveryCode | None = None


class RefreshRequest(BaseModel):
    """The refresh token from the last login or refresh (each works once)."""

    refresh_token: str = Field(min_length=1, max_length=REFRESH_TOKEN_CHARS_MAX)


class PasswordChange(BaseModel):
    """The current password and the new one."""

    current_password: Password
    new_password: Password


class RecoveryCodes(BaseModel):
    """Two-factor recovery codes: each replaces a TOTP code once. Shown now, then never again."""

    recovery_codes: list[str]


class SignupResponse(BaseModel):
    """The new user."""

    user_id: int
    email: str


class TokenResponse(BaseModel):
    """A short-lived bearer token and the one-time refresh token that renews it (POST
    /v1/auth/refresh); ``two_factor`` says whether the session may move money and trade."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiJ9...",
                    "token_type": "bearer",
                    "expires_in_s": 900,
                    "refresh_token": "q3dV...",
                    "refresh_expires_in_s": 2592000,
                    "two_factor": True,
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in_s: int
    refresh_token: str
    refresh_expires_in_s: int
    two_factor: bool


class VerifiedResponse(TokenResponse):
    """A session that passed 2FA, and the recovery codes (shown this once: keep them safe)."""

    recovery_codes: list[str]


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


def _token_response(pair: sessions.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in_s=pair.expires_in_s,
        refresh_token=pair.refresh_token,
        refresh_expires_in_s=pair.refresh_expires_in_s,
        two_factor=pair.two_factor,
    )


def _session_of(principal: Principal) -> str:
    if principal.session_id is None:
        raise InvalidRequestError(
            "an API key has no session: revoke the key instead", code="not_a_session"
        )
    return principal.session_id


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses={
        409: documented("Email taken"),
        422: documented("validation_failed, or a weak password"),
    },
)
async def signup(body: Credentials, pool: PoolDep, settings: SettingsDep) -> SignupResponse:
    """Create an account (with its wallet); log in next, then enroll two-factor authentication."""
    user_id = await accounts.signup(pool, settings, body.email, body.password)
    return SignupResponse(user_id=user_id, email=accounts.normalise_email(body.email))


@router.post(
    "/login",
    responses={
        401: documented("Bad credentials, or TOTP code missing (totp_required) or wrong"),
        429: documented(
            "Too many attempts for this email or from this address (rate_limited), or the"
            " attempt counters are unreachable for a moment (rate_limit_unavailable); see"
            " Retry-After"
        ),
    },
)
async def login(
    body: LoginRequest,
    pool: PoolDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    ip: ClientIpDep,
) -> TokenResponse:
    """Exchange credentials (and a TOTP or recovery code once enrolled) for a new session."""
    await hit_login(limiter, body.email.strip().lower(), ip)
    pair = await accounts.login(
        pool, settings, body.email, body.password, body.totp_code, body.recovery_code
    )
    return _token_response(pair)


@router.post(
    "/refresh",
    responses={
        401: documented(
            "Unknown token (invalid_refresh_token), session over (session_ended), or a used"
            " token presented again: the session is ended (refresh_token_reused)"
        )
    },
)
async def refresh(
    body: RefreshRequest, pool: PoolDep, settings: SettingsDep, revoked: RevokedSessionsDep
) -> TokenResponse:
    """Renew the access token: the refresh token is used up and a new one comes back."""
    return _token_response(await sessions.refresh(pool, settings, revoked, body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentPrincipal, conn: ConnDep, revoked: RevokedSessionsDep
) -> Response:
    """End this session: its access and refresh tokens are refused by every API process."""
    async with conn.transaction():
        ended = await sessions.revoke(conn, _session_of(principal), sessions.REASON_LOGOUT)
    # This process refuses them from the next request on; the others within a NOTIFY's delay.
    revoked.add(*ended)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT)
async def logout_everywhere(
    principal: CurrentPrincipal, conn: ConnDep, revoked: RevokedSessionsDep
) -> Response:
    """End every session of this user, this one included (API keys are not sessions)."""
    async with conn.transaction():
        ended = await sessions.revoke_all(
            conn, principal.user_id, sessions.REASON_LOGOUT_EVERYWHERE
        )
    revoked.add(*ended)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        401: documented("Wrong current password"),
        422: documented("validation_failed, or a weak new password"),
    },
)
async def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    pool: PoolDep,
    settings: SettingsDep,
    revoked: RevokedSessionsDep,
) -> Response:
    """Change the password; every other session of this user ends, this one stays."""
    await accounts.change_password(
        pool,
        settings,
        revoked,
        principal.user_id,
        _session_of(principal),
        body.current_password,
        body.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/2fa/enroll", responses={409: documented("Already enrolled and verified")})
async def enroll(
    principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> EnrollResponse:
    """Start TOTP enrollment: a new secret (stored encrypted), replacing an unverified one."""
    secret, uri = await accounts.enroll_totp(conn, settings, principal.user_id)
    return EnrollResponse(secret=secret, otpauth_uri=uri)


@router.post(
    "/2fa/verify",
    responses={401: documented("Wrong or reused code"), 409: documented("Not enrolled")},
)
async def verify(
    body: VerifyRequest, principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> VerifiedResponse:
    """Finish enrollment with a first code: a new session that has passed 2FA, and the
    recovery codes, shown this once."""
    pair, codes = await accounts.verify_totp(conn, settings, principal.user_id, body.code)
    return VerifiedResponse(**_token_response(pair).model_dump(), recovery_codes=codes)


@router.post("/2fa/recovery-codes", responses={409: documented("2FA not verified")})
async def renew_recovery_codes(
    principal: TwoFactorPrincipal, conn: ConnDep, settings: SettingsDep
) -> RecoveryCodes:
    """A new set of recovery codes (shown this once); the previous set stops working."""
    codes = await accounts.renew_recovery_codes(conn, settings, principal.user_id)
    return RecoveryCodes(recovery_codes=codes)


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
