"""Request idempotency: the first response to a (user, X-Idempotency-Key) is the only one.

The key row is inserted first in the request's transaction. A concurrent request with the same
key blocks on that insert until the first commits, then reads the stored response; if the first
rolls back, the second proceeds as if it were first. The response is stored in the same
transaction as the state change it reports, so a stored response always matches the data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from api.exceptions import ConflictError, InvalidRequestError
from core.db import AsyncConn


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as stored with its key; ``replayed`` when it answers a repeated request."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(method: str, path: str, body: dict[str, Any]) -> bytes:
    """SHA-256 of the method, path and canonical JSON of the validated body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).digest()


async def claim(conn: AsyncConn, user_id: int, key: str, digest: bytes) -> StoredResponse | None:
    """Claim the key for this request (None), or return the response stored for it before.

    Call first inside the request's transaction. The same key with another request hash is
    refused: a key names one request, whatever its outcome.
    """
    claimed = await conn.execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES (%s, %s, %s)"
        " ON CONFLICT (user_id, key) DO NOTHING RETURNING true",
        (user_id, key, digest),
    )
    if await claimed.fetchone() is not None:
        return None
    cursor = await conn.execute(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys"
        " WHERE user_id = %s AND key = %s",
        (user_id, key),
    )
    row = await cursor.fetchone()
    if row is None:
        # Deleted by expiry between the two statements: the client may simply retry.
        raise ConflictError("the idempotency key expired meanwhile; retry", code="idempotency_race")
    stored_digest, status_code, body = row
    if bytes(stored_digest) != digest:
        raise InvalidRequestError(
            "this X-Idempotency-Key was used for a different request; use a new key for a"
            " new request",
            code="idempotency_key_reused",
        )
    if status_code is None or not isinstance(body, dict):
        # Every claim commits together with its response; a bare key means a bug elsewhere.
        raise ValueError(f"idempotency key {key!r} of user {user_id} has no stored response")
    return StoredResponse(int(status_code), body, replayed=True)


async def store(
    conn: AsyncConn, user_id: int, key: str, status_code: int, body: dict[str, Any]
) -> StoredResponse:
    """Store the response of a claimed key; return it as stored (jsonb orders the keys)."""
    cursor = await conn.execute(
        "UPDATE idempotency_keys SET response_status = %s, response_body = %s"
        " WHERE user_id = %s AND key = %s RETURNING response_status, response_body",
        (status_code, Jsonb(body), user_id, key),
    )
    row = await cursor.fetchone()
    if row is None:
        raise ValueError(f"idempotency key {key!r} of user {user_id} was not claimed")
    return StoredResponse(int(row[0]), row[1])
