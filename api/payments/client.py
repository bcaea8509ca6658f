"""The API's client of the payment gateway: ask for a payment, get the gateway's payment id."""

from __future__ import annotations

import logging

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from api.payments.exceptions import GatewayUnavailableError
from api.payments.models import PaymentAccepted, PaymentRequest
from core.settings import Settings

log = logging.getLogger(__name__)

# Where the gateway calls back, under settings.api_public_url.
WEBHOOK_PATH = "/v1/funds/webhooks/gateway"


class _RetryableError(Exception):
    """The gateway answered 5xx: it may accept the same request a moment later."""


def gateway_url(settings: Settings) -> str:
    """The base URL of the payment gateway."""
    return f"http://{settings.gateway_host}:{settings.gateway_port}"


def callback_url(settings: Settings) -> str:
    """The webhook URL the gateway calls for this API."""
    return settings.api_public_url.rstrip("/") + WEBHOOK_PATH


async def request_payment(settings: Settings, request: PaymentRequest) -> str:
    """Ask the gateway to carry out a payment; return its payment id.

    The gateway keys payments by intent_id, so a retry after a lost answer finds the same
    payment instead of paying twice. Raises GatewayUnavailableError when every attempt failed
    or the gateway refused the request.
    """
    body = request.model_dump(mode="json", exclude_none=True)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.gateway_request_attempts_max),
        wait=wait_exponential(
            multiplier=settings.gateway_request_backoff_ms / 1000,
            max=settings.gateway_request_timeout_s,
        ),
        retry=retry_if_exception_type((httpx.TransportError, _RetryableError)),
        reraise=True,
    )
    try:
        async with httpx.AsyncClient(
            base_url=gateway_url(settings), timeout=settings.gateway_request_timeout_s
        ) as http:
            async for attempt in retrying:
                with attempt:
                    response = await http.post("/v1/payments", json=body)
                    if response.status_code >= 500:
                        raise _RetryableError(f"gateway answered {response.status_code}")
    except (httpx.HTTPError, _RetryableError) as error:
        log.warning("payment gateway unavailable for intent %s: %s", request.intent_id, error)
        raise GatewayUnavailableError(f"gateway unavailable: {error.__class__.__name__}") from error
    if response.status_code != httpx.codes.ACCEPTED:
        log.warning("gateway refused intent %s: %s", request.intent_id, response.text[:500])
        raise GatewayUnavailableError(f"gateway refused the payment ({response.status_code})")
    return PaymentAccepted.model_validate_json(response.content).payment_id
