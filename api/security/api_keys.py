"""API keys for programmatic clients: shown once, stored as a SHA-256 hash, found by prefix.

A key is ``bk_<prefix>_<secret>``; its 256 random bits make a fast hash safe (no password
stretching needed), and the prefix lets a person tell their keys apart.
"""

from __future__ import annotations

import hashlib
import secrets

from api.exceptions import UnauthenticatedError
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
