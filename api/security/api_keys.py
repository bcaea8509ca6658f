"""API keys for programmatic clients: shown once, stored as a SHA-256 hash, found by prefix.

A key is ``bk_<prefix>_<secret>``; its 256 random bits make a fast hash safe (no password
stretching needed), and the prefix lets a person tell their keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from api.exceptions import ConflictError, NotFoundError, UnauthenticatedError
from api.security.tokens import Principal
from core.db import AsyncConn

KEY_PREFIX_BYTES = 6
KEY_SECRET_BYTES = 32


def new_api_key() -> tuple[str, str, bytes]:
    """A fresh key: (the full key to show once, its prefix, the hash to store)."""
    prefix = secrets.token_hex(KEY_PREFIX_BYTES)
    key = f"bk_{prefix}_{secrets.token_urlsafe(KEY_SECRET_BYTES)}"
    return key, prefix, hash_api_key(key)


def hash_api_key(key: str) -> bytes:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).digest()


async def principal_for_api_key(conn: AsyncConn, key: str) -> Principal:
    """The principal of a live key; UnauthenticatedError for an unknown or revoked one."""
    cursor = await conn.execute(
        "UPDATE api_keys SET last_used_at = now()"
        " WHERE key_hash = %s AND revoked_at IS NULL RETURNING id, user_id",
        (hash_api_key(key),),
    )
    row = await cursor.fetchone()
    if row is None:
        raise UnauthenticatedError("unknown or revoked API key")
    # Only a user who passed 2FA can create a key, so a key stands for a 2FA session.
    return Principal(user_id=int(row[1]), two_factor=True, api_key_id=int(row[0]))


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What a user may see of a key after its creation: never the key itself."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


async def create_api_key(
    conn: AsyncConn, user_id: int, name: str, keys_max: int
) -> tuple[ApiKeyInfo, str]:
    """A new key for the user and its full text (to show once); at most ``keys_max`` live keys."""
    async with conn.transaction():
        # The user's row lock serialises concurrent creations, so the count below holds.
        await conn.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
        cursor = await conn.execute(
            "SELECT count(*) FROM api_keys WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
        )
        row = await cursor.fetchone()
        if row is not None and int(row[0]) >= keys_max:
            raise ConflictError(
                f"at most {keys_max} live API keys per user; revoke one first",
                code="api_keys_max",
            )
        key, prefix, key_hash = new_api_key()
        cursor = await conn.execute(
            "INSERT INTO api_keys (user_id, name, key_prefix, key_hash) VALUES (%s, %s, %s, %s)"
            " RETURNING id, name, key_prefix, created_at, last_used_at, revoked_at",
            (user_id, name, prefix, key_hash),
        )
        created = await cursor.fetchone()
    assert created is not None
    return ApiKeyInfo(*created), key


async def list_api_keys(conn: AsyncConn, user_id: int) -> list[ApiKeyInfo]:
    """The user's keys, newest first, revoked ones included."""
    cursor = await conn.execute(
        "SELECT id, name, key_prefix, created_at, last_used_at, revoked_at"
        " FROM api_keys WHERE user_id = %s ORDER BY id DESC",
        (user_id,),
    )
    return [ApiKeyInfo(*row) for row in await cursor.fetchall()]


async def revoke_api_key(conn: AsyncConn, user_id: int, key_id: int) -> None:
    """Revoke one of the user's keys (again is harmless); NotFoundError for anyone else's."""
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = %s AND user_id = %s RETURNING id",
            (key_id, user_id),
        )
        row = await cursor.fetchone()
    if row is None:
        raise NotFoundError(f"no API key {key_id}")
