"""Apply a verified gateway webhook: move the money once and settle the payment intent.

Exactly-once comes from two guards in one database transaction: the intent row is locked and
only a PENDING intent changes, and every journal transaction carries the gateway's payment id
(or the intent id) as external_ref, unique per kind, so a replay can never post twice.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from api.exceptions import ConflictError, InvalidRequestError, NotFoundError
from api.payments.models import PaymentEvent, PaymentKind, PaymentOutcome
from api.services.funds import release_withdrawal
from api.services.funds_queries import INTENT_COLUMNS, Intent, intent_from_row
from core.db import AsyncConn, AsyncPool
from core.ledger import AccountKind, TxnKind, deposit_entries, post, system, user
from core.money import to_money

log = logging.getLogger(__name__)


class WebhookResult(StrEnum):
    """What a webhook delivery did: applied now, or already applied before (a replay)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"


async def apply_event(pool: AsyncPool, event: PaymentEvent) -> WebhookResult:
    """Settle the intent the event names; a replay of a settled event changes nothing."""
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            f"SELECT user_id, {INTENT_COLUMNS} FROM payment_intents WHERE id = %s FOR UPDATE",  # noqa: S608 - constant columns
            (event.intent_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFoundError("no such payment intent")
        user_id, intent = int(row[0]), intent_from_row(row[1:])
        _check_matches(intent, event)
        if intent.status != "PENDING":
            if intent.status == event.status.value:
                return WebhookResult.DUPLICATE
            log.error(
                "gateway says %s for intent %s already %s: reconcile by hand",
                event.status,
                intent.id,
                intent.status,
            )
            raise ConflictError(
                f"intent is {intent.status}, the event says {event.status}", code="intent_settled"
            )
        await _move_money(conn, user_id, intent, event)
        await conn.execute(
            "UPDATE payment_intents SET status = %s, external_ref = %s, failure_reason = %s,"
            " updated_at = now() WHERE id = %s",
            (event.status.value, event.payment_id, event.failure_reason, intent.id),
        )
    log.info("intent %s %s by event %s", intent.id, event.status, event.event_id)
    return WebhookResult.APPLIED


def _check_matches(intent: Intent, event: PaymentEvent) -> None:
    if intent.external_ref is not None and intent.external_ref != event.payment_id:
        raise ConflictError("the event names another payment of this intent", code="wrong_payment")
    if (intent.kind, intent.amount, intent.currency) != (
        event.kind.value,
        to_money(event.amount),
        event.currency,
    ):
        raise InvalidRequestError(
            "the event's kind, amount or currency differ from the intent", code="event_mismatch"
        )


async def _move_money(conn: AsyncConn, user_id: int, intent: Intent, event: PaymentEvent) -> None:
    amount, currency, ref = intent.amount, intent.currency, event.payment_id
    succeeded = event.status is PaymentOutcome.SUCCEEDED
    if event.kind is PaymentKind.DEPOSIT and succeeded:
        await post(
            conn,
            TxnKind.DEPOSIT,
            deposit_entries(user_id, amount),
            currency=currency,
            reference=f"deposit {intent.id}",
            external_ref=ref,
        )
    elif event.kind is PaymentKind.WITHDRAWAL and succeeded:
        await post(
            conn,
            TxnKind.WITHDRAWAL,
            [
                user(AccountKind.CASH_LOCKED, user_id, -amount),
                system(AccountKind.PAYMENT_GATEWAY_CLEARING, amount),
            ],
            currency=currency,
            reference=f"withdrawal {intent.id}",
            external_ref=ref,
        )
    elif event.kind is PaymentKind.WITHDRAWAL:
        await release_withdrawal(conn, intent, user_id)
    # A failed deposit moves no money: nothing was collected.
