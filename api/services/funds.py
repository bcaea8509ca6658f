"""Deposits and withdrawals: a payment intent in the database, then a request to the gateway.

The money moves later, when the gateway's webhook arrives (``api.services.funds_webhook``).
A withdrawal locks its amount first (WITHDRAWAL_RESERVE), so the same cash cannot be spent twice
while the payout is in flight. The database is never held open across a call to the gateway.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

from api.exceptions import InsufficientFundsError, InvalidRequestError
from api.payments.client import callback_url, request_payment
from api.payments.exceptions import GatewayUnavailableError
from api.payments.models import PaymentKind, PaymentRequest
from api.services import funds_fraud, idempotency
from api.services.funds_queries import INTENT_COLUMNS, Intent, get_intent, intent_from_row
from core.db import AsyncConn, AsyncPool
from core.ledger import AccountKind, TxnKind, post, user
from core.money import to_money
from core.settings import Settings

log = logging.getLogger(__name__)

GATEWAY_UNAVAILABLE = "gateway_unavailable"
# The requests an X-Idempotency-Key names (part of the stored request hash).
DEPOSITS_PATH = "/v1/funds/deposits"
WITHDRAWALS_PATH = "/v1/funds/withdrawals"


async def create_deposit(
    pool: AsyncPool,
    settings: Settings,
    user_id: int,
    amount: Decimal,
    idempotency_key: str | None,
) -> Intent:
    """Open a PENDING deposit intent and ask the gateway to collect the money."""
    amount = _checked_amount(settings, amount)
    async with pool.connection() as conn, conn.transaction():
        replayed = await _claim_key(conn, user_id, idempotency_key, DEPOSITS_PATH, amount)
        if replayed is not None:
            return await get_intent(conn, user_id, replayed)
        intent = await _insert_intent(conn, user_id, PaymentKind.DEPOSIT, amount, settings)
        await _remember_key(conn, user_id, idempotency_key, intent.id)
    return await _send(pool, settings, user_id, intent)


async def create_withdrawal(
    pool: AsyncPool,
    settings: Settings,
    user_id: int,
    amount: Decimal,
    idempotency_key: str | None,
) -> Intent:
    """Lock the amount, open a PENDING withdrawal intent and ask the gateway to pay it out."""
    amount = _checked_amount(settings, amount)
    async with pool.connection() as conn, conn.transaction():
        replayed = await _claim_key(conn, user_id, idempotency_key, WITHDRAWALS_PATH, amount)
        if replayed is not None:
            return await get_intent(conn, user_id, replayed)
        # The row lock serializes this user's withdrawals and orders: the check below holds
        # until commit.
        cursor = await conn.execute(
            "SELECT balance FROM wallets WHERE user_id = %s FOR UPDATE", (user_id,)
        )
        wallet = await cursor.fetchone()
        # Funds first: a user refused by both rules must hear the one they can act on now.
        if wallet is None or wallet[0] < amount:
            available = Decimal(0) if wallet is None else wallet[0]
            raise InsufficientFundsError(f"available cash {available} does not cover {amount}")
        await funds_fraud.check_withdrawal(conn, settings, user_id)
        intent = await _insert_intent(conn, user_id, PaymentKind.WITHDRAWAL, amount, settings)
        await post(
            conn,
            TxnKind.WITHDRAWAL_RESERVE,
            [
                user(AccountKind.CASH_AVAILABLE, user_id, -amount),
                user(AccountKind.CASH_LOCKED, user_id, amount),
            ],
            currency=intent.currency,
            reference=f"withdrawal {intent.id}",
            external_ref=str(intent.id),
        )
        await _remember_key(conn, user_id, idempotency_key, intent.id)
    return await _send(pool, settings, user_id, intent)


async def release_withdrawal(conn: AsyncConn, intent: Intent, user_id: int) -> None:
    """Move a withdrawal's locked amount back to available; at most once per intent."""
    await post(
        conn,
        TxnKind.WITHDRAWAL_RELEASE,
        [
            user(AccountKind.CASH_LOCKED, user_id, -intent.amount),
            user(AccountKind.CASH_AVAILABLE, user_id, intent.amount),
        ],
        currency=intent.currency,
        reference=f"withdrawal {intent.id} not paid out",
        # Keyed by the intent: whichever path releases first (gateway down, FAILED webhook),
        # the other finds the release done.
        external_ref=str(intent.id),
    )


def _checked_amount(settings: Settings, amount: Decimal) -> Decimal:
    amount = to_money(amount)
    if not 0 < amount <= settings.payment_amount_max:
        raise InvalidRequestError(
            f"amount must be positive and at most {settings.payment_amount_max}",
            code="invalid_amount",
        )
    return amount


async def _send(pool: AsyncPool, settings: Settings, user_id: int, intent: Intent) -> Intent:
    request = PaymentRequest(
        intent_id=intent.id,
        kind=PaymentKind(intent.kind),
        amount=intent.amount,
        currency=intent.currency,
        callback_url=callback_url(settings),
    )
    try:
        payment_id = await request_payment(settings, request)
    except GatewayUnavailableError:
        return await _fail_unsent(pool, user_id, intent.id)
    async with pool.connection() as conn, conn.transaction():
        # The webhook may have arrived first and recorded the id already.
        await conn.execute(
            "UPDATE payment_intents SET external_ref = %s, updated_at = now()"
            " WHERE id = %s AND external_ref IS NULL",
            (payment_id, intent.id),
        )
        return await get_intent(conn, user_id, intent.id)


async def _fail_unsent(pool: AsyncPool, user_id: int, intent_id: uuid.UUID) -> Intent:
    """Mark an intent the gateway never took FAILED and unlock a withdrawal's money at once."""
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            f"SELECT {INTENT_COLUMNS} FROM payment_intents WHERE id = %s FOR UPDATE",  # noqa: S608 - constant columns
            (intent_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise RuntimeError(f"intent {intent_id} vanished; it was committed before the call")
        intent = intent_from_row(row)
        if intent.status != "PENDING":
            return intent
        if intent.kind == PaymentKind.WITHDRAWAL:
            await release_withdrawal(conn, intent, user_id)
        await conn.execute(
            "UPDATE payment_intents SET status = 'FAILED', failure_reason = %s,"
            " updated_at = now() WHERE id = %s",
            (GATEWAY_UNAVAILABLE, intent_id),
        )
        log.warning("intent %s failed: the gateway did not take it", intent_id)
        return await get_intent(conn, user_id, intent_id)


async def _insert_intent(
    conn: AsyncConn, user_id: int, kind: PaymentKind, amount: Decimal, settings: Settings
) -> Intent:
    cursor = await conn.execute(
        "INSERT INTO payment_intents (user_id, kind, amount, currency)"  # noqa: S608 - constant columns
        " VALUES (%s, %s, %s, coalesce((SELECT currency FROM wallets WHERE user_id = %s), %s))"
        f" RETURNING {INTENT_COLUMNS}",
        (user_id, kind.value, amount, user_id, settings.currency),
    )
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING returned no row")
    return intent_from_row(row)


async def _claim_key(
    conn: AsyncConn, user_id: int, key: str | None, path: str, amount: Decimal
) -> uuid.UUID | None:
    """Claim an idempotency key; return the intent of an earlier identical request, if any.

    A concurrent request with the same key waits on the key's row until the first commits,
    then finds its intent: one key, one intent. The replay answers the intent as it is now.
    """
    if key is None:
        return None
    digest = idempotency.request_hash("POST", path, {"amount": str(amount)})
    stored = await idempotency.claim(conn, user_id, key, digest)
    if stored is None:
        return None
    return uuid.UUID(str(stored.body["intent_id"]))


async def _remember_key(
    conn: AsyncConn, user_id: int, key: str | None, intent_id: uuid.UUID
) -> None:
    if key is not None:
        await idempotency.store(conn, user_id, key, 202, {"intent_id": str(intent_id)})
