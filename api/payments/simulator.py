"""The payment gateway simulator: accepts payments, confirms them later through signed webhooks.

Run it as its own process with ``python -m api.payments`` (or ``python -m api.payments.simulator``);
it listens on ``gateway_host:gateway_port``. State lives in memory: it is a simulator.

- ``POST /v1/payments`` {intent_id, kind, amount, currency, callback_url, simulate?} answers 202
  {payment_id}; the same intent_id again answers the same payment (a retried request is safe).
- After ``gateway_confirm_delay_ms`` the gateway POSTs a ``PaymentEvent`` to callback_url, signed
  (``api.payments.signing``), and redelivers with exponential backoff until a 2xx, at most
  ``gateway_webhook_attempts_max`` times.
- A payment fails when its amount has 13 cents (``50.13``) or ``"simulate": "fail"``.
- ``GET /v1/payments/{payment_id}`` shows a payment and the exact webhook body it sends;
  ``POST /v1/payments/{payment_id}/redeliver`` sends that webhook once more, as an operator would.
- ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Request, status
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from api.payments import rules, signing
from api.payments.models import PaymentAccepted, PaymentEvent, PaymentRequest
from core.money import to_money
from core.settings import Settings, get_settings
from core.tls import client_ssl_context

log = logging.getLogger(__name__)


class UndeliveredError(Exception):
    """The callback answered something other than 2xx; the delivery is retried."""


@dataclass(slots=True)
class Payment:
    """One payment the gateway works on, and the webhook it sends about it."""

    payment_id: str
    request: PaymentRequest
    event: PaymentEvent
    body: bytes
    attempts: int = 0
    delivered: bool = False
    last_status_code: int | None = None
    last_error: str | None = None


@dataclass
class Gateway:
    """The simulator's in-memory state and its outgoing HTTP client."""

    settings: Settings
    http: httpx.AsyncClient
    payments: dict[str, Payment] = field(default_factory=dict)
    by_intent: dict[uuid.UUID, str] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def accept(self, request: PaymentRequest) -> Payment:
        """Record a new payment (or find the one for this intent) and schedule its webhook."""
        known = self.by_intent.get(request.intent_id)
        if known is not None:
            if self.payments[known].request != request:
                raise HTTPException(status.HTTP_409_CONFLICT, "intent_id reused with other terms")
            return self.payments[known]
        if len(self.payments) >= self.settings.gateway_payments_max:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "simulator is full")
        payment_id = f"pay_{uuid.uuid4().hex}"
        payment = _new_payment(payment_id, request)
        self.payments[payment_id] = payment
        self.by_intent[request.intent_id] = payment_id
        task = asyncio.create_task(self._confirm_later(payment))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return payment

    async def _confirm_later(self, payment: Payment) -> None:
        await asyncio.sleep(self.settings.gateway_confirm_delay_ms / 1000)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.gateway_webhook_attempts_max),
            wait=wait_exponential(
                multiplier=self.settings.gateway_webhook_backoff_initial_ms / 1000,
                max=self.settings.gateway_webhook_backoff_max_ms / 1000,
            ),
            retry=retry_if_exception_type((httpx.HTTPError, UndeliveredError)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self.deliver(payment)
        except (httpx.HTTPError, UndeliveredError) as error:
            log.error(
                "webhook %s for %s given up after %d attempts: %s",
                payment.event.event_id,
                payment.payment_id,
                payment.attempts,
                error,
            )

    async def deliver(self, payment: Payment) -> int:
        """Send the payment's webhook once, freshly signed; raise unless the answer is 2xx."""
        payment.attempts += 1
        secret = self.settings.gateway_webhook_secret.get_secret_value()
        headers = signing.signed_headers(secret, int(time.time()), payment.body)
        try:
            response = await self.http.post(
                payment.request.callback_url, content=payment.body, headers=headers
            )
        except httpx.HTTPError as error:
            payment.last_error = f"{error.__class__.__name__}: {error}"
            raise
        payment.last_status_code = response.status_code
        if not response.is_success:
            payment.last_error = response.text[:500]
            raise UndeliveredError(f"callback answered {response.status_code}")
        payment.delivered = True
        payment.last_error = None
        return response.status_code

    async def close(self) -> None:
        """Stop pending confirmations and close the HTTP client."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()


def _new_payment(payment_id: str, request: PaymentRequest) -> Payment:
    result, reason = rules.outcome(request)
    event = PaymentEvent(
        event_id=f"evt_{uuid.uuid4().hex}",
        payment_id=payment_id,
        intent_id=request.intent_id,
        kind=request.kind,
        status=result,
        amount=to_money(request.amount),
        currency=request.currency,
        failure_reason=reason,
    )
    # The body is fixed once: every delivery and redelivery sends the same bytes.
    return Payment(payment_id, request, event, event.model_dump_json().encode())


def create_gateway_app(settings: Settings) -> FastAPI:
    """Build the simulator's HTTP app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Webhooks go to the API through the TLS front, whose certificate may be the local CA's.
        http = httpx.AsyncClient(
            timeout=settings.gateway_request_timeout_s, verify=client_ssl_context(settings)
        )
        app.state.gateway = Gateway(settings, http)
        yield
        await app.state.gateway.close()

    app = FastAPI(title="Payment gateway simulator", version="0.1.0", lifespan=lifespan)

    def gateway(request: Request) -> Gateway:
        state: Gateway = request.app.state.gateway
        return state

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the simulator answers."""
        return {"status": "ok"}

    @app.post("/v1/payments", status_code=status.HTTP_202_ACCEPTED)
    async def create_payment(body: PaymentRequest, request: Request) -> PaymentAccepted:
        """Accept a payment; its webhook follows after the confirm delay."""
        payment = gateway(request).accept(body)
        log.info("payment %s accepted for intent %s", payment.payment_id, body.intent_id)
        return PaymentAccepted(payment_id=payment.payment_id)

    @app.get("/v1/payments/{payment_id}")
    async def show_payment(payment_id: str, request: Request) -> dict[str, object]:
        """A payment, its webhook body and delivery state (a debugging aid)."""
        payment = _find(gateway(request), payment_id)
        return {
            "payment_id": payment.payment_id,
            "intent_id": str(payment.request.intent_id),
            "status": payment.event.status.value,
            "webhook_body": payment.body.decode(),
            "attempts": payment.attempts,
            "delivered": payment.delivered,
            "last_status_code": payment.last_status_code,
            "last_error": payment.last_error,
        }

    @app.post("/v1/payments/{payment_id}/redeliver")
    async def redeliver(payment_id: str, request: Request) -> dict[str, object]:
        """Send a payment's webhook once more and report the callback's answer."""
        payment = _find(gateway(request), payment_id)
        try:
            code = await gateway(request).deliver(payment)
        except (httpx.HTTPError, UndeliveredError) as error:
            return {
                "delivered": False,
                "status_code": payment.last_status_code,
                "error": str(error),
            }
        return {"delivered": True, "status_code": code}

    return app


def _find(gateway: Gateway, payment_id: str) -> Payment:
    payment = gateway.payments.get(payment_id)
    if payment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such payment")
    return payment


def main() -> None:
    """Serve the simulator on the configured host and port."""
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_gateway_app(settings), host=settings.gateway_host, port=settings.gateway_port
    )


if __name__ == "__main__":
    main()
