"""Routes for funds: deposits, withdrawals, the gateway webhook, the wallet and its history."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import CurrentPrincipal, PoolDep, SettingsDep, TwoFactorPrincipal, VerifiedPrincipal
from api.exceptions import InvalidRequestError
from api.payments import signing
from api.payments.client import WEBHOOK_PATH
from api.payments.models import Amount, PaymentEvent
from api.services import funds, funds_queries, funds_webhook
from api.services.funds_cursor import page_limit
from core.money import to_money

router = APIRouter(prefix="/v1", tags=["funds"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="X-Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Optional: the same key and amount again returns the same intent.",
    ),
]
Limit = Annotated[int | None, Query(ge=1, description="Page size; at most page_limit_max.")]
Cursor = Annotated[
    str | None, Query(max_length=500, description="next_cursor of the previous page.")
]


def _money(value: Decimal) -> str:
    return str(to_money(value))


class AmountIn(BaseModel):
    """An amount of money in the wallet's currency, as a decimal string."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount": "250.00"}]}
    )

    amount: Amount


class IntentOut(BaseModel):
    """A deposit or withdrawal and its status with the payment gateway."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "intent_id": "3f0f5a52-3c1e-4d8e-9a55-6a3f1e2b7c10",
                    "kind": "DEPOSIT",
                    "amount": "250.0000",
                    "currency": "USD",
                    "status": "PENDING",
                    "payment_id": "pay_5b1d0c...",
                    "failure_reason": None,
                    "created_at": "2024-09-16T09:20:00Z",
                    "updated_at": "2024-09-16T09:20:00Z",
                }
            ]
        }
    )

    intent_id: uuid.UUID
    kind: str = Field(description="DEPOSIT or WITHDRAWAL")
    amount: str
    currency: str
    status: str = Field(description="PENDING, SUCCEEDED or FAILED")
    payment_id: str | None = Field(description="The gateway's id, once it took the payment")
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, intent: funds_queries.Intent) -> IntentOut:
        """The API view of an intent."""
        return cls(
            intent_id=intent.id,
            kind=intent.kind,
            amount=_money(intent.amount),
            currency=intent.currency,
            status=intent.status,
            payment_id=intent.external_ref,
            failure_reason=intent.failure_reason,
            created_at=intent.created_at,
            updated_at=intent.updated_at,
        )


class IntentPage(BaseModel):
    """A page of payment intents, newest first."""

    items: list[IntentOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class WalletOut(BaseModel):
    """The caller's cash: balance = available + locked."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "currency": "USD",
                    "balance": "1000.0000",
                    "locked": "250.0000",
                    "available": "750.0000",
                }
            ]
        }
    )

    currency: str
    balance: str = Field(description="All cash the broker holds for you: available + locked")
    locked: str = Field(description="Reserved for open buy orders and pending withdrawals")
    available: str = Field(description="What you can spend or withdraw now")


class TransactionOut(BaseModel):
    """One ledger entry on the caller's cash accounts."""

    id: int = Field(description="The journal entry id")
    txn_id: uuid.UUID
    kind: str = Field(description="DEPOSIT, WITHDRAWAL_RESERVE, ORDER_RESERVE, FILL, ...")
    account: str = Field(description="CASH_AVAILABLE or CASH_LOCKED")
    amount: str = Field(description="Signed: positive credits the account, negative debits it")
    currency: str
    reference: str
    order_id: uuid.UUID | None
    external_ref: str | None
    created_at: datetime


class TransactionPage(BaseModel):
    """A page of the caller's ledger history, newest first."""

    items: list[TransactionOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class WebhookAck(BaseModel):
    """The answer to the gateway: any 2xx stops its redelivery."""

    status: funds_webhook.WebhookResult


@router.post(
    "/funds/deposits", status_code=status.HTTP_202_ACCEPTED, summary="Deposit through the gateway"
)
async def create_deposit(
    body: AmountIn,
    principal: TwoFactorPrincipal,
    pool: PoolDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> IntentOut:
    """Open a deposit; the wallet is credited when the gateway confirms (status SUCCEEDED).

    When the gateway cannot be reached the intent comes back FAILED (failure_reason
    gateway_unavailable); use a new X-Idempotency-Key to try again.
    """
    intent = await funds.create_deposit(
        pool, settings, principal.user_id, body.amount, idempotency_key
    )
    return IntentOut.of(intent)


@router.post(
    "/funds/withdrawals", status_code=status.HTTP_202_ACCEPTED, summary="Withdraw to the bank"
)
async def create_withdrawal(
    body: AmountIn,
    principal: VerifiedPrincipal,
    pool: PoolDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> IntentOut:
    """Lock the amount and ask the gateway to pay it out; unlocked again if the payout fails.

    Needs 2FA and KYC VERIFIED. Refused with insufficient_funds (422) when available cash does
    not cover it; only then with fraud_withdrawal_after_deposit (422) for a new account right
    after a deposit.
    """
    intent = await funds.create_withdrawal(
        pool, settings, principal.user_id, body.amount, idempotency_key
    )
    return IntentOut.of(intent)


@router.get("/funds/intents/{intent_id}", summary="One of your deposits or withdrawals")
async def get_intent(intent_id: uuid.UUID, principal: CurrentPrincipal, pool: PoolDep) -> IntentOut:
    """The caller's intent; another user's intent is not found (404)."""
    async with pool.connection() as conn:
        return IntentOut.of(await funds_queries.get_intent(conn, principal.user_id, intent_id))


@router.get("/funds/intents", summary="Your deposits and withdrawals")
async def list_intents(
    principal: CurrentPrincipal,
    pool: PoolDep,
    settings: SettingsDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> IntentPage:
    """The caller's intents, newest first, keyset-paginated."""
    size = page_limit(settings, limit)
    async with pool.connection() as conn:
        page = await funds_queries.list_intents(conn, principal.user_id, size, cursor)
    return IntentPage(items=[IntentOut.of(i) for i in page.items], next_cursor=page.next_cursor)


@router.post(
    WEBHOOK_PATH.removeprefix("/v1"),
    summary="Payment gateway webhook (HMAC-signed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PaymentEvent.model_json_schema()}},
        }
    },
)
async def gateway_webhook(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    x_gateway_timestamp: Annotated[str | None, Header()] = None,
    x_gateway_signature: Annotated[str | None, Header()] = None,
) -> WebhookAck:
    """Apply the gateway's final word on a payment, once.

    No user authentication: the body must carry a valid HMAC-SHA256 signature over
    ``timestamp + "." + body`` (401 otherwise, and nothing changes). A replay answers 200
    ``duplicate`` so the gateway stops redelivering.
    """
    body = await request.body()
    signing.verify(
        settings.gateway_webhook_secret.get_secret_value(),
        body,
        x_gateway_timestamp,
        x_gateway_signature,
        now_s=time.time(),
        tolerance_s=settings.gateway_webhook_tolerance_s,
    )
    try:
        event = PaymentEvent.model_validate_json(body)
    except ValidationError as error:
        raise InvalidRequestError(
            f"webhook body is not a payment event: {error.error_count()} errors",
            code="invalid_event",
        ) from None
    return WebhookAck(status=await funds_webhook.apply_event(pool, event))


@router.get("/wallet", summary="Your cash")
async def get_wallet(
    principal: CurrentPrincipal, pool: PoolDep, settings: SettingsDep
) -> WalletOut:
    """Balance, locked and available cash of the caller (decimal strings)."""
    async with pool.connection() as conn:
        wallet = await funds_queries.get_wallet(conn, principal.user_id, settings.currency)
    return WalletOut(
        currency=wallet.currency,
        balance=_money(wallet.available + wallet.locked),
        locked=_money(wallet.locked),
        available=_money(wallet.available),
    )


@router.get("/transactions", summary="Your ledger history")
async def list_transactions(
    principal: CurrentPrincipal,
    pool: PoolDep,
    settings: SettingsDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> TransactionPage:
    """Journal entries on the caller's cash accounts, newest first, keyset-paginated."""
    size = page_limit(settings, limit)
    async with pool.connection() as conn:
        page = await funds_queries.list_ledger(conn, principal.user_id, size, cursor)
    return TransactionPage(items=[_line(x) for x in page.items], next_cursor=page.next_cursor)


def _line(line: funds_queries.LedgerLine) -> TransactionOut:
    return TransactionOut(
        id=line.entry_id,
        txn_id=line.txn_id,
        kind=line.kind,
        account=line.account,
        amount=_money(line.amount),
        currency=line.currency,
        reference=line.reference,
        order_id=line.order_id,
        external_ref=line.external_ref,
        created_at=line.created_at,
    )
