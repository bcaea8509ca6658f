"""Every refusal of the framework's own answers in the error envelope, over a kept-alive socket.

A table of cases: unreadable bodies (400), an unknown route (404), a wrong method (405), bodies
over the bound (413) and numbers JSON cannot carry back (422). Each must answer its status with
``{"error": code, "detail": sentence}`` and leave the connection open for the next request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.raw_http import KeepAliveClient, is_envelope

pytestmark = pytest.mark.integration

ORDER = b'{"symbol":"ACME","side":"BUY","quantity":%s,"type":"LIMIT","price":%s}'
BYTES_MAX: int = Settings.model_fields["api_request_body_bytes_max"].default


@dataclass(frozen=True)
class Refusal:
    """A request the API must refuse, and how: status, code and a phrase of the detail."""

    method: str
    path: str
    body: bytes | None
    status: int
    code: str
    says: str
    field: str | None = None  # the field a validation refusal must name in ``fields``
    chunked: bool = False


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _large_signup() -> bytes:
    return json.dumps({"email": "a" * BYTES_MAX, "password": "x"}).encode()


CASES = {
    "400 JSON nested too deeply": Refusal(
        "POST", "/v1/auth/signup", b"[" * 5_000 + b"]" * 5_000, 400, "malformed_body", "nested"
    ),
    "400 invalid UTF-8": Refusal(
        "POST",
        "/v1/auth/signup",
        b'{"email": "\xff\xfe@example.com", "password": "x"}',
        400,
        "malformed_body",
        "UTF-8",
    ),
    "400 not JSON": Refusal(
        "POST", "/v1/auth/signup", b'{"email": ', 400, "malformed_body", "not valid JSON"
    ),
    "404 unknown route": Refusal(
        "GET", "/v1/no-such-thing", None, 404, "not_found", "/v1/no-such-thing"
    ),
    "405 wrong method": Refusal(
        "DELETE", "/v1/wallet", None, 405, "method_not_allowed", "allowed: GET"
    ),
    "413 declared length": Refusal(
        "POST", "/v1/auth/signup", _large_signup(), 413, "body_too_large", f"{BYTES_MAX} bytes"
    ),
    "413 chunked": Refusal(
        "POST",
        "/v1/auth/signup",
        _large_signup(),
        413,
        "body_too_large",
        f"{BYTES_MAX} bytes",
        chunked=True,
    ),
    "422 order quantity 1e400": Refusal(
        "POST",
        "/v1/orders",
        ORDER % (b"1e400", b'"1.00"'),
        422,
        "validation_failed",
        "body field quantity",
        field="quantity",
    ),
    "422 order quantity NaN": Refusal(
        "POST",
        "/v1/orders",
        ORDER % (b"NaN", b'"1.00"'),
        422,
        "validation_failed",
        "body field quantity",
        field="quantity",
    ),
    "422 order price Infinity": Refusal(
        "POST",
        "/v1/orders",
        ORDER % (b"1", b"Infinity"),
        422,
        "validation_failed",
        "body field price",
        field="price",
    ),
    "422 order price 1e400": Refusal(
        "POST",
        "/v1/orders",
        ORDER % (b"1", b"1e400"),
        422,
        "validation_failed",
        "body field price",
        field="price",
    ),
    **{
        f"422 deposit amount {token}": Refusal(
            "POST",
            "/v1/funds/deposits",
            b'{"amount": %s}' % token.encode(),
            422,
            "validation_failed",
            "body field amount",
            field="amount",
        )
        for token in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400")
    },
    "422 lone surrogate in a string": Refusal(
        "POST",
        "/v1/auth/signup",
        b'{"email": "\\ud800@example.com", "password": "a long demo passphrase 42"}',
        422,
        "validation_failed",
        "body field email",
        field="email",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_a_framework_refusal_answers_the_envelope_and_keeps_the_connection(
    case: Refusal, api_url: str, make_user: MakeUser
) -> None:
    user = await make_user()
    headers = {**user.headers, "Content-Type": "application/json", "X-Idempotency-Key": "k-1"}
    body: bytes | Iterable[bytes] | None = case.body
    if case.chunked and case.body is not None:
        body = _chunks(case.body, 8_192)
    http = KeepAliveClient(api_url)
    try:
        response = http.request(case.method, case.path, body, headers)
        after = http.request("GET", "/healthz")
    finally:
        http.close()

    assert response.status == case.status, response.body[:500]
    assert is_envelope(response), response.body[:500]
    answer = response.json()
    assert answer["error"] == case.code
    assert case.says in answer["detail"]
    if case.field is not None:
        assert case.field in [problem["field"] for problem in answer["fields"]]
    if case.status == 405:
        assert response.headers["allow"] == "GET"
    assert after.status == 200
