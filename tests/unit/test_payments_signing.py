"""Webhook signatures: valid and fresh passes; anything else is refused."""

from __future__ import annotations

import pytest

from api.payments import signing
from api.payments.exceptions import WebhookSignatureError

SECRET = "s3cret"
BODY = b'{"event_id":"evt_1","amount":"10.0000"}'
NOW = 1_700_000_000
TOLERANCE_S = 300


def _verify(body: bytes, timestamp: str | None, sig: str | None, now: float = NOW) -> None:
    signing.verify(SECRET, body, timestamp, sig, now_s=now, tolerance_s=TOLERANCE_S)


def test_a_signature_over_the_same_body_and_time_verifies() -> None:
    headers = signing.signed_headers(SECRET, NOW, BODY)

    _verify(BODY, headers[signing.TIMESTAMP_HEADER], headers[signing.SIGNATURE_HEADER])


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert signing.signature(SECRET, NOW, BODY) == f"v1={expected}"


@pytest.mark.parametrize(
    ("body", "timestamp", "sig"),
    [
        (BODY + b" ", str(NOW), signing.signature(SECRET, NOW, BODY)),  # body changed
        (BODY, str(NOW + 1), signing.signature(SECRET, NOW, BODY)),  # timestamp changed
        (BODY, str(NOW), signing.signature("other", NOW, BODY)),  # another secret
        (BODY, str(NOW), "v1=" + "0" * 64),
        (BODY, str(NOW), ""),
        (BODY, None, signing.signature(SECRET, NOW, BODY)),
        (BODY, "yesterday", signing.signature(SECRET, NOW, BODY)),
    ],
)
def test_a_wrong_or_missing_signature_is_refused(
    body: bytes, timestamp: str | None, sig: str | None
) -> None:
    with pytest.raises(WebhookSignatureError):
        _verify(body, timestamp, sig)


@pytest.mark.parametrize("age_s", [TOLERANCE_S + 1, -(TOLERANCE_S + 1)])
def test_a_signature_outside_the_tolerance_is_refused(age_s: int) -> None:
    sig = signing.signature(SECRET, NOW, BODY)

    with pytest.raises(WebhookSignatureError, match="tolerance"):
        _verify(BODY, str(NOW), sig, now=NOW + age_s)


def test_a_signature_at_the_edge_of_the_tolerance_passes() -> None:
    _verify(BODY, str(NOW), signing.signature(SECRET, NOW, BODY), now=NOW + TOLERANCE_S)
