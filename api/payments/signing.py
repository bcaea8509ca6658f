"""HMAC-SHA256 webhook signatures, as Stripe does them: over ``timestamp + "." + body``.

The sender puts the Unix time in ``X-Gateway-Timestamp`` and ``v1=<hex digest>`` in
``X-Gateway-Signature``. The receiver recomputes the digest over the exact bytes it received,
compares in constant time, and refuses a timestamp outside its tolerance so an old capture
cannot be replayed forever.
"""

from __future__ import annotations

import hashlib
import hmac

from api.payments.exceptions import WebhookSignatureError

TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature"
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two headers a webhook delivery carries."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(
    secret: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    now_s: float,
    tolerance_s: int,
) -> None:
    """Return when the signature is valid and fresh; raise WebhookSignatureError otherwise."""
    if not timestamp_header or not signature_header:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is not Unix seconds") from None
    if abs(now_s - timestamp) > tolerance_s:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is outside the {tolerance_s}s tolerance")
    expected = signature(secret, timestamp, body)
    # compare_digest takes time independent of where the strings differ: no timing oracle.
    if not hmac.compare_digest(expected.encode(), signature_header.strip().encode()):
        raise WebhookSignatureError("the webhook signature does not match its body")
