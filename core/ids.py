"""Ids of rows written at every order: time-ordered UUIDs (version 7, RFC 9562).

An order adds its id to several primary keys and indexes (orders, journal transactions, the
outbox key). Random UUIDs land on a random page of each, so once the indexes outgrow the
buffer cache every order reads and dirties pages all over them (and logs each page whole after a
checkpoint); time-ordered ids land together at the right edge. The SQL side is ``uuid_v7()``
(migration 0036).
"""

from __future__ import annotations

import uuid

import uuid6


def time_ordered_id() -> uuid.UUID:
    """A new UUID version 7: milliseconds since the epoch first, then random bits."""
    # A plain uuid.UUID, so every adapter (psycopg, pydantic, msgspec) treats it as any UUID.
    return uuid.UUID(int=uuid6.uuid7().int)
