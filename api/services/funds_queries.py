"""Reads of a user's money: wallet, payment intents and ledger history, owner-scoped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from api.exceptions import InvalidRequestError, NotFoundError
from api.services.funds_cursor import decode_cursor, encode_cursor
from core.db import AsyncConn

INTENT_COLUMNS = (
    "id, kind, amount, currency, status, external_ref, failure_reason, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Intent:
    """A deposit or withdrawal and where the conversation with the gateway stands."""

    id: uuid.UUID
    kind: str
    amount: Decimal
    currency: str
    status: str
    external_ref: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Wallet:
    """A user's cash: available to spend or withdraw, and locked for orders or withdrawals."""

    currency: str
    available: Decimal
    locked: Decimal


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One journal entry on one of the user's accounts, with its transaction."""

    entry_id: int
    txn_id: uuid.UUID
    kind: str
    account: str
    currency: str
    amount: Decimal
    reference: str
    order_id: uuid.UUID | None
    external_ref: str | None
    created_at: datetime


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, newest first, and the cursor of the next page (None at the end)."""

    items: list[T]
    next_cursor: str | None


def intent_from_row(row: tuple[Any, ...]) -> Intent:
    """An Intent from a row selected with INTENT_COLUMNS."""
    return Intent(*row)


async def get_intent(conn: AsyncConn, user_id: int, intent_id: uuid.UUID) -> Intent:
    """The user's intent; NotFoundError for an unknown id or another user's intent."""
    cursor = await conn.execute(
        f"SELECT {INTENT_COLUMNS} FROM payment_intents WHERE id = %s AND user_id = %s",  # noqa: S608 - constant columns
        (intent_id, user_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFoundError("no such payment intent")
    return intent_from_row(row)


async def list_intents(
    conn: AsyncConn, user_id: int, limit: int, cursor: str | None
) -> Page[Intent]:
    """The user's intents, newest first, keyset-paginated on (created_at, id)."""
    after_ts: datetime | None = None
    after_id: uuid.UUID | None = None
    if cursor is not None:
        created, ident = decode_cursor(cursor, 2)
        try:
            after_ts, after_id = datetime.fromisoformat(created), uuid.UUID(ident)
        except ValueError:
            raise InvalidRequestError("cursor is malformed", code="invalid_cursor") from None
    result = await conn.execute(
        f"SELECT {INTENT_COLUMNS} FROM payment_intents WHERE user_id = %s"  # noqa: S608 - constant columns
        " AND (%s::timestamptz IS NULL OR (created_at, id) < (%s::timestamptz, %s::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT %s",
        (user_id, after_ts, after_ts, after_id, limit + 1),
    )
    items = [intent_from_row(row) for row in await result.fetchall()]
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor(last.created_at.isoformat(), str(last.id))
    return Page(items, next_cursor)


async def get_wallet(conn: AsyncConn, user_id: int, currency: str) -> Wallet:
    """The user's wallet; zeros in the default currency when none was opened yet."""
    cursor = await conn.execute(
        "SELECT currency, balance, locked_balance FROM wallets WHERE user_id = %s", (user_id,)
    )
    row = await cursor.fetchone()
    if row is None:
        return Wallet(currency, Decimal(0), Decimal(0))
    return Wallet(row[0], row[1], row[2])


async def list_ledger(
    conn: AsyncConn, user_id: int, limit: int, cursor: str | None
) -> Page[LedgerLine]:
    """The user's journal entries, newest first, keyset-paginated on the entry id."""
    before: int | None = None
    if cursor is not None:
        (raw,) = decode_cursor(cursor, 1)
        if not raw.isdigit():
            raise InvalidRequestError("cursor is malformed", code="invalid_cursor")
        before = int(raw)
    # Entry ids grow with insertion and never repeat: a stable total order for keyset paging.
    result = await conn.execute(
        "SELECT e.id, t.id, t.kind, a.kind, a.currency, e.amount, t.reference, t.order_id,"
        " t.external_ref, t.created_at"
        " FROM ledger_accounts a"
        " JOIN journal_entries e ON e.account_id = a.id"
        " JOIN journal_txns t ON t.id = e.txn_id"
        " WHERE a.user_id = %s AND (%s::bigint IS NULL OR e.id < %s::bigint)"
        " ORDER BY e.id DESC LIMIT %s",
        (user_id, before, before, limit + 1),
    )
    items = [LedgerLine(*row) for row in await result.fetchall()]
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(str(items[-1].entry_id))
    return Page(items, next_cursor)
