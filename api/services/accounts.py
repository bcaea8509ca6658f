"""Accounts: sign-up, login (password, then TOTP when enrolled), TOTP enrollment and its
recovery codes, password change, the profile.

A user without verified TOTP gets tokens with ``two_factor=false``: they can read, but the
money-moving and trading routes refuse them until they enroll, verify and log in with a code.
Every login opens a session (``sessions``): an access token and a one-time refresh token.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from api.exceptions import ConflictError, InvalidRequestError, UnauthenticatedError
from api.security import crypto, passwords, sessions, totp
from api.security.revocations import RevokedSessions
from api.services.sessions import REASON_PASSWORD_CHANGED, TokenPair, open_session, revoke_all
from core.db import AsyncConn, AsyncPool
from core.ledger import open_user_accounts
from core.settings import Settings

log = logging.getLogger(__name__)

EMAIL_LENGTH_MAX = 320
BAD_CREDENTIALS = "invalid email or password"


@dataclass(frozen=True, slots=True)
class Profile:
    """What a user sees about their own account."""

    user_id: int
    email: str
    two_factor_enrolled: bool
    kyc_status: str | None


def normalise_email(email: str) -> str:
    """The canonical form of an email (trimmed, lower case); InvalidRequestError if malformed."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if (
        not local
        or "." not in domain.strip(".")
        or "@" in domain
        or len(email) > EMAIL_LENGTH_MAX
        or any(c.isspace() or not c.isprintable() for c in email)
    ):
        raise InvalidRequestError("not a valid email address", code="invalid_email")
    return email


def _totp_aad(user_id: int) -> bytes:
    return f"user_totp:{user_id}:secret".encode()


async def signup(pool: AsyncPool, settings: Settings, email: str, password: str) -> int:
    """Create a user with their ledger accounts and wallet; the new user's id."""
    email = normalise_email(email)
    problem = passwords.password_problem(settings, password, email)
    if problem is not None:
        raise InvalidRequestError(problem, code="weak_password")
    # Hash before taking a connection: a slow hash must not hold one of the pool's few.
    password_hash = await passwords.hash_password(settings, password)
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO users (email, password_hash) VALUES (%s, %s)"
            " ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
            (email, password_hash),
        )
        row = await cursor.fetchone()
        if row is None:
            raise ConflictError("an account with this email exists", code="email_taken")
        user_id = int(row[0])
        await open_user_accounts(conn, user_id, settings.currency)
    log.info("user signed up", extra={"user_id": user_id})
    return user_id


async def login(
    pool: AsyncPool,
    settings: Settings,
    email: str,
    password: str,
    totp_code: str | None,
    recovery_code: str | None = None,
) -> TokenPair:
    """A new session for valid credentials; a verified TOTP makes a code (or a recovery code)
    mandatory."""
    try:
        email = normalise_email(email)
    except InvalidRequestError:
        email = ""  # still pay for a hash check, so malformed and unknown look alike
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT u.id, u.password_hash, coalesce(t.is_verified, false) FROM users u"
            " LEFT JOIN user_totp t ON t.user_id = u.id"
            " WHERE lower(u.email) = %s AND u.is_active",
            (email,),
        )
        row = await cursor.fetchone()
    # The connection is back in the pool before the slow hash check.
    stored_hash = None if row is None else str(row[1])
    if not await passwords.verify_password(settings, stored_hash, password) or row is None:
        raise UnauthenticatedError(BAD_CREDENTIALS, code="invalid_credentials")
    user_id = int(row[0])
    if passwords.needs_rehash(str(row[1])):
        await _rehash(pool, settings, user_id, password)
    if not row[2]:
        async with pool.connection() as conn:
            return await open_session(conn, settings, user_id, two_factor=False)
    if not totp_code and not recovery_code:
        raise UnauthenticatedError(
            "this account has two-factor authentication: send totp_code (or a recovery_code)",
            code="totp_required",
        )
    async with pool.connection() as conn:
        async with conn.transaction():
            if totp_code:
                enrolled = await _locked_totp(conn, user_id)
                if enrolled is None or not enrolled.is_verified:
                    raise UnauthenticatedError(
                        "invalid or already used TOTP code", code="invalid_totp"
                    )
                await _consume_code(conn, settings, enrolled, totp_code)
            else:
                await _consume_recovery_code(conn, user_id, str(recovery_code))
        return await open_session(conn, settings, user_id, two_factor=True)


async def _rehash(pool: AsyncPool, settings: Settings, user_id: int, password: str) -> None:
    new_hash = await passwords.hash_password(settings, password)
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s",
            (new_hash, user_id),
        )


@dataclass(frozen=True, slots=True)
class _Totp:
    user_id: int
    sealed: crypto.Sealed
    is_verified: bool
    last_used_step: int | None


async def _locked_totp(conn: AsyncConn, user_id: int) -> _Totp | None:
    """The user's TOTP row, locked until the transaction ends (one code check at a time)."""
    cursor = await conn.execute(
        "SELECT secret_ciphertext, secret_nonce, key_id, is_verified, last_used_step"
        " FROM user_totp WHERE user_id = %s FOR UPDATE",
        (user_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return _Totp(
        user_id=user_id,
        sealed=crypto.Sealed(bytes(row[0]), bytes(row[1]), str(row[2])),
        is_verified=bool(row[3]),
        last_used_step=None if row[4] is None else int(row[4]),
    )


async def _consume_code(conn: AsyncConn, settings: Settings, enrolled: _Totp, code: str) -> None:
    """Accept a code once: check it against the secret and record its step (row locked)."""
    ring = crypto.keyring(settings, crypto.PURPOSE_TOTP)
    try:
        secret = crypto.unseal(ring, enrolled.sealed, _totp_aad(enrolled.user_id)).decode()
    except crypto.DecryptionError:
        # Not the user's fault, but no code can be checked: refuse, and tell the operator.
        log.exception("cannot decrypt a TOTP secret", extra={"user_id": enrolled.user_id})
        raise UnauthenticatedError("invalid TOTP code", code="invalid_totp") from None
    step = totp.matching_step(
        secret,
        code,
        now_s=time.time(),
        window=settings.totp_valid_window_steps,
        last_used_step=enrolled.last_used_step,
    )
    if step is None:
        raise UnauthenticatedError("invalid or already used TOTP code", code="invalid_totp")
    await conn.execute(
        "UPDATE user_totp SET last_used_step = %s WHERE user_id = %s", (step, enrolled.user_id)
    )


async def enroll_totp(conn: AsyncConn, settings: Settings, user_id: int) -> tuple[str, str]:
    """A new unverified TOTP secret and its otpauth URI; it replaces an unverified one."""
    secret = totp.new_secret()
    sealed = crypto.seal(
        crypto.keyring(settings, crypto.PURPOSE_TOTP), secret.encode(), _totp_aad(user_id)
    )
    async with conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO user_totp (user_id, secret_ciphertext, secret_nonce, key_id)"
            " VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (user_id) DO UPDATE SET secret_ciphertext = excluded.secret_ciphertext,"
            " secret_nonce = excluded.secret_nonce, key_id = excluded.key_id,"
            " last_used_step = NULL, created_at = now()"
            " WHERE NOT user_totp.is_verified"
            " RETURNING (SELECT email FROM users WHERE id = %s)",
            (user_id, sealed.ciphertext, sealed.nonce, sealed.key_id, user_id),
        )
        row = await cursor.fetchone()
    if row is None:
        raise ConflictError("two-factor authentication is already enrolled", code="totp_enrolled")
    return secret, totp.provisioning_uri(secret, str(row[0]), settings.totp_issuer)


async def verify_totp(
    conn: AsyncConn, settings: Settings, user_id: int, code: str
) -> tuple[TokenPair, list[str]]:
    """Confirm enrollment with a first code: a new session that has passed 2FA, and the
    recovery codes (shown this once)."""
    async with conn.transaction():
        enrolled = await _locked_totp(conn, user_id)
        if enrolled is None:
            raise ConflictError("enroll first: POST /v1/auth/2fa/enroll", code="totp_not_enrolled")
        if enrolled.is_verified:
            raise ConflictError(
                "two-factor authentication is already verified", code="totp_enrolled"
            )
        await _consume_code(conn, settings, enrolled, code)
        await conn.execute(
            "UPDATE user_totp SET is_verified = true, verified_at = now() WHERE user_id = %s",
            (user_id,),
        )
        codes = await _replace_recovery_codes(conn, settings, user_id)
    log.info("two-factor authentication verified", extra={"user_id": user_id})
    return await open_session(conn, settings, user_id, two_factor=True), codes


async def _replace_recovery_codes(conn: AsyncConn, settings: Settings, user_id: int) -> list[str]:
    codes = [sessions.new_recovery_code() for _ in range(settings.recovery_codes_count)]
    await conn.execute("DELETE FROM user_recovery_codes WHERE user_id = %s", (user_id,))
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO user_recovery_codes (code_hash, user_id) VALUES (%s, %s)",
            [(sessions.digest(sessions.normalise_recovery_code(c)), user_id) for c in codes],
        )
    return codes


async def renew_recovery_codes(conn: AsyncConn, settings: Settings, user_id: int) -> list[str]:
    """A new set of recovery codes (shown this once); the old set stops working."""
    async with conn.transaction():
        enrolled = await _locked_totp(conn, user_id)
        if enrolled is None or not enrolled.is_verified:
            raise ConflictError(
                "enroll and verify two-factor authentication first", code="totp_not_enrolled"
            )
        return await _replace_recovery_codes(conn, settings, user_id)


async def _consume_recovery_code(conn: AsyncConn, user_id: int, code: str) -> None:
    """Accept a recovery code once, in place of a TOTP code."""
    cursor = await conn.execute(
        "UPDATE user_recovery_codes SET used_at = now()"
        " WHERE code_hash = %s AND user_id = %s AND used_at IS NULL RETURNING 1",
        (sessions.digest(sessions.normalise_recovery_code(code)), user_id),
    )
    if await cursor.fetchone() is None:
        raise UnauthenticatedError("invalid or already used recovery code", code="invalid_totp")
    log.warning("logged in with a recovery code", extra={"user_id": user_id})


async def change_password(
    pool: AsyncPool,
    settings: Settings,
    revoked: RevokedSessions,
    user_id: int,
    session_id: str | None,
    current: str,
    new: str,
) -> int:
    """Replace the password after checking the current one; end every other session (how many)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT email, password_hash FROM users WHERE id = %s AND is_active", (user_id,)
        )
        row = await cursor.fetchone()
    if row is None or not await passwords.verify_password(settings, str(row[1]), current):
        raise UnauthenticatedError("the current password is wrong", code="invalid_credentials")
    problem = passwords.password_problem(settings, new, str(row[0]))
    if problem is not None:
        raise InvalidRequestError(problem, code="weak_password")
    new_hash = await passwords.hash_password(settings, new)
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s",
            (new_hash, user_id),
        )
        ended = await revoke_all(conn, user_id, REASON_PASSWORD_CHANGED, keep=session_id)
    revoked.add(*ended)
    log.info("password changed", extra={"user_id": user_id, "sessions_ended": len(ended)})
    return len(ended)


async def profile(conn: AsyncConn, user_id: int) -> Profile:
    """The caller's own profile."""
    cursor = await conn.execute(
        "SELECT u.id, u.email, coalesce(t.is_verified, false), k.status FROM users u"
        " LEFT JOIN user_totp t ON t.user_id = u.id LEFT JOIN kyc_records k ON k.user_id = u.id"
        " WHERE u.id = %s",
        (user_id,),
    )
    row = await cursor.fetchone()
    await conn.commit()
    if row is None:
        # A valid token for a deleted user: treat it like an invalid token.
        raise UnauthenticatedError("the account no longer exists")
    return Profile(
        user_id=int(row[0]),
        email=str(row[1]),
        two_factor_enrolled=bool(row[2]),
        kyc_status=None if row[3] is None else str(row[3]),
    )
