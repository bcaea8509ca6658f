"""Errors of the payment gateway conversation; HTTP status codes are chosen in ``api/errors.py``."""

from __future__ import annotations

from api.exceptions import UnauthenticatedError
from core.exceptions import BrokerError


class GatewayUnavailableError(BrokerError):
    """The gateway could not be reached or refused the request after every attempt.

    The caller marks the payment intent FAILED and releases any locked money; the user may try
    again later. Check that the simulator runs (``python -m api.payments``) on gateway_port.
    """


class WebhookSignatureError(UnauthenticatedError):
    """A webhook's signature or timestamp is missing, malformed, stale or wrong: nothing changed.

    A genuine gateway re-signs each delivery; check that BROKER_GATEWAY_WEBHOOK_SECRET is the same
    in the API and the gateway, and that both clocks agree within gateway_webhook_tolerance_s.
    """

    code = "bad_webhook_signature"
