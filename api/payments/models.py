"""The gateway's wire format, shared by the simulator and the API's client and webhook."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Money on the wire: a positive decimal with at most 4 places that fits NUMERIC(18,4).
Amount = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=4)]


class PaymentKind(StrEnum):
    """Which way the money goes: into the broker (DEPOSIT) or out to the user (WITHDRAWAL)."""

    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"


class PaymentOutcome(StrEnum):
    """The final status a webhook reports."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class PaymentRequest(BaseModel):
    """What the broker asks the gateway to do; one payment per intent_id (retries are safe)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent_id: uuid.UUID
    kind: PaymentKind
    amount: Amount
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    callback_url: str = Field(min_length=1, max_length=2000)
    # Test and demo hook: force the outcome regardless of the amount.
    simulate: Literal["fail", "succeed"] | None = None


class PaymentAccepted(BaseModel):
    """The gateway's answer to a payment request: its own id for the payment."""

    model_config = ConfigDict(frozen=True)

    payment_id: str


class PaymentEvent(BaseModel):
    """The webhook body: the final status of one payment."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str = Field(min_length=1, max_length=200)
    payment_id: str = Field(min_length=1, max_length=200)
    intent_id: uuid.UUID
    kind: PaymentKind
    status: PaymentOutcome
    amount: Amount
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    failure_reason: str | None = Field(default=None, max_length=500)
