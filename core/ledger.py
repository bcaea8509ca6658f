"""Double-entry postings: the only way money moves, shared by the API and the stream agents.

Sign convention (sql/migrations/0002_ledger.sql): an amount is positive for a credit; an
account's balance is the sum of its entries as the broker owes it. A user's CASH_AVAILABLE and
CASH_LOCKED accounts are mirrored by ``wallets.balance`` and ``wallets.locked_balance``, updated
here in the same database transaction as the entries.

One posting is defined in SQL instead, where it runs: an order's reserve, by
``ledger_post_order_reserve`` (sql/migrations/0030), which ``order_place`` calls. It writes the
rows ``post`` would (one ORDER_RESERVE transaction, two balanced entries, the wallet update), so
the ledger's triggers and the wallets' CHECKs guard it the same way; no Python copy of its legs
exists.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from core.db import AsyncConn
from core.exceptions import BrokerError
from core.money import is_money


class AccountKind(StrEnum):
    """Kinds of ledger account; the first two belong to a user, the rest to the broker."""

    CASH_AVAILABLE = "CASH_AVAILABLE"
    CASH_LOCKED = "CASH_LOCKED"
    EXCHANGE_CLEARING = "EXCHANGE_CLEARING"
    PAYMENT_GATEWAY_CLEARING = "PAYMENT_GATEWAY_CLEARING"
    FEES = "FEES"


USER_KINDS = frozenset({AccountKind.CASH_AVAILABLE, AccountKind.CASH_LOCKED})


class TxnKind(StrEnum):
    """Why a journal transaction happened."""

    DEPOSIT = "DEPOSIT"
    WITHDRAWAL_RESERVE = "WITHDRAWAL_RESERVE"
    WITHDRAWAL = "WITHDRAWAL"
    WITHDRAWAL_RELEASE = "WITHDRAWAL_RELEASE"
    ORDER_RESERVE = "ORDER_RESERVE"
    ORDER_RELEASE = "ORDER_RELEASE"
    FILL = "FILL"
    FEE = "FEE"
    ADJUSTMENT = "ADJUSTMENT"


class LedgerError(BrokerError):
    """A posting was malformed or named an account that does not exist; nothing was written."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One leg of a posting: an account (a user's, or the broker's when user_id is None)."""

    kind: AccountKind
    amount: Decimal
    user_id: int | None = None


def user(kind: AccountKind, user_id: int, amount: Decimal) -> Entry:
    """A leg on one of a user's accounts."""
    return Entry(kind, amount, user_id)


def system(kind: AccountKind, amount: Decimal) -> Entry:
    """A leg on one of the broker's own accounts."""
    return Entry(kind, amount, None)


def deposit_entries(user_id: int, amount: Decimal) -> list[Entry]:
    """The legs of a deposit: the user's available cash up, the payment gateway's clearing down."""
    return [
        user(AccountKind.CASH_AVAILABLE, user_id, amount),
        system(AccountKind.PAYMENT_GATEWAY_CLEARING, -amount),
    ]


async def open_user_accounts(conn: AsyncConn, user_id: int, currency: str) -> None:
    """Create a user's cash accounts and wallet row; harmless when they exist."""
    await conn.execute(
        "INSERT INTO ledger_accounts (user_id, kind, currency)"
        " SELECT %s, k, %s FROM unnest(ARRAY['CASH_AVAILABLE', 'CASH_LOCKED']) AS k"
        " ON CONFLICT (user_id, kind, currency) WHERE user_id IS NOT NULL DO NOTHING",
        (user_id, currency),
    )
    await conn.execute(
        "INSERT INTO wallets (user_id, currency) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (user_id, currency),
    )


def check_entries(entries: list[Entry]) -> None:
    """Raise LedgerError unless the entries are a well-formed balanced posting."""
    if len(entries) < 2:
        raise LedgerError("a posting needs at least two entries")
    for e in entries:
        if e.amount == 0 or not is_money(e.amount):
            raise LedgerError(f"entry amount {e.amount!r} is zero or not money")
        if (e.user_id is not None) != (e.kind in USER_KINDS):
            raise LedgerError(f"{e.kind} entry with user_id={e.user_id} names no account")
    if sum((e.amount for e in entries), Decimal(0)) != 0:
        raise LedgerError("entries do not sum to zero")


# A posting's legs, each account found by (kind, currency, owner). coalesce, not IS NOT DISTINCT
# FROM: ledger_accounts_kind_currency_owner_key (migration 0021) serves this equality; the other
# form read every account of the ledger.
INSERT_ENTRIES = (
    "INSERT INTO journal_entries (txn_id, account_id, amount)"
    " SELECT %s, a.id, e.amount"
    " FROM unnest(%s::bigint[], %s::text[], %s::numeric[]) AS e(user_id, kind, amount)"
    " JOIN ledger_accounts a ON a.kind = e.kind AND a.currency = %s"
    "  AND coalesce(a.user_id, 0) = coalesce(e.user_id, 0)"
)


async def post(
    conn: AsyncConn,
    kind: TxnKind,
    entries: list[Entry],
    *,
    currency: str,
    reference: str = "",
    order_id: uuid.UUID | None = None,
    exec_id: str | None = None,
    external_ref: str | None = None,
) -> uuid.UUID | None:
    """Write one balanced journal transaction and update the wallets it touches.

    Call inside a database transaction. Returns the journal transaction id, or None when a
    transaction with the same exec_id or (kind, external_ref) exists already: a retry is harmless.
    A negative wallet balance fails the whole transaction (CHECK constraint), as it should.
    """
    check_entries(entries)
    cursor = await conn.execute(
        "INSERT INTO journal_txns (kind, reference, order_id, exec_id, external_ref)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (kind.value, reference, order_id, exec_id, external_ref),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    txn_id = row[0]
    assert isinstance(txn_id, uuid.UUID)
    cursor = await conn.execute(
        INSERT_ENTRIES,
        (
            txn_id,
            [e.user_id for e in entries],
            [e.kind.value for e in entries],
            [e.amount for e in entries],
            currency,
        ),
    )
    if cursor.rowcount != len(entries):
        raise LedgerError(f"{len(entries) - cursor.rowcount} entries name no {currency} account")
    await _update_wallets(conn, entries)
    return txn_id


async def _update_wallets(conn: AsyncConn, entries: list[Entry]) -> None:
    deltas: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for e in entries:
        if e.user_id is not None:
            deltas[e.user_id][0 if e.kind is AccountKind.CASH_AVAILABLE else 1] += e.amount
    for user_id, (available, locked) in sorted(deltas.items()):
        cursor = await conn.execute(
            "UPDATE wallets SET balance = balance + %s, locked_balance = locked_balance + %s,"
            " updated_at = now() WHERE user_id = %s",
            (available, locked, user_id),
        )
        if cursor.rowcount != 1:
            raise LedgerError(f"user {user_id} has no wallet")
