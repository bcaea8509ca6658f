"""Over 10,000 generated requests: no 5xx, no dropped connection, the envelope on every 4xx.

One real server (uvicorn on a socket, the real PostgreSQL, Kafka and Redis), called as a user with
2FA, KYC and cash, so the requests reach the services and not only authentication. Two sources:
schemathesis generates requests from the OpenAPI schema, fitting it and breaking it, and
``hostile_requests.py`` sends what no schema describes (NaN, 1e400, deep nesting, bytes that are
not UTF-8, huge strings), byte for byte over one kept-alive socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from api.payments import signing
from core.settings import Settings
from tests.integration.api.conftest import MakeUser, serve
from tests.integration.api.hostile_requests import hostile_requests
from tests.integration.api.raw_http import (
    ConnectionDroppedError,
    KeepAliveClient,
    RawResponse,
    is_envelope,
    stream_answer,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
log = logging.getLogger(__name__)

REQUESTS_MIN = 10_000
# Cases per operation and kind (fitting the schema, breaking it).
EXAMPLES = 160
# Argon2 hashes every password a signup or login carries: about 0.1 s each on this host.
EXAMPLES_SLOW = 30
SLOW_PATHS = frozenset({"/v1/auth/signup", "/v1/auth/login"})
EXAMPLES_NO_INPUT = 5
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})
# The SSE streams never end by design: schemathesis leaves them out (a request it sends there
# would never return); the hostile requests reach them one connection each.
ENDLESS_PATH_PREFIX = "/v1/stream/"
# Generated requests come a few milliseconds apart; a pause while Hypothesis builds a big
# example must not let the server close the connection as idle.
KEEP_ALIVE_S = 120
PROBLEMS_SHOWN_MAX = 20
WEBHOOK_PATH = "/v1/funds/webhooks/gateway"
# Valid bodies per operation, so in a hostile request only the field under test is wrong;
# an order of each type, since each type requires other fields.
CREDENTIALS = {"email": "fuzz@example.com", "password": "a long demo passphrase 42"}
ORDER = {"symbol": "ACME", "side": "BUY", "quantity": 1}
BASE_BODIES: Mapping[str, Sequence[Mapping[str, Any]]] = {
    "/v1/auth/signup": [CREDENTIALS],
    "/v1/auth/login": [CREDENTIALS],
    "/v1/auth/2fa/verify": [{"code": "123456"}],
    "/v1/api-keys": [{"name": "fuzz"}],
    "/v1/kyc": [
        {
            "full_name": "Ada Lovelace",
            "date_of_birth": "1990-01-01",
            "national_id": "ABCDE1234F",
            "address": "1 Main Street",
        }
    ],
    "/v1/funds/deposits": [{"amount": "10.00"}],
    "/v1/funds/withdrawals": [{"amount": "10.00"}],
    "/v1/orders": [
        {**ORDER, "type": "LIMIT", "price": "1.00"},
        {**ORDER, "type": "MARKET"},
        {**ORDER, "type": "STOP_LOSS", "trigger_price": "1.00"},
        {**ORDER, "type": "STOP_LIMIT", "trigger_price": "1.00", "price": "1.00"},
    ],
    WEBHOOK_PATH: [
        {
            "event_id": "evt-1",
            "payment_id": "pay-1",
            "intent_id": str(uuid.UUID(int=1)),
            "kind": "DEPOSIT",
            "status": "SUCCEEDED",
            "amount": "10.00",
            "currency": "USD",
        }
    ],
}


@dataclass(frozen=True)
class FuzzTarget:
    """A served API, its settings, and an access token of a verified user with cash."""

    url: str
    settings: Settings
    token: str


@dataclass
class Findings:
    """How many requests were answered, and what was wrong with any answer."""

    requests: int = 0
    problems: list[str] = field(default_factory=list)

    def check(self, what: str, response: RawResponse) -> None:
        """Count an answer; note a 5xx, or a 4xx that is not the envelope."""
        self.requests += 1
        if response.status >= 500:
            self.problems.append(f"{response.status} for {what}: {response.body[:200]!r}")
        elif response.status >= 400 and not is_envelope(response):
            self.problems.append(
                f"{response.status} not an envelope for {what}: {response.body[:200]!r}"
            )

    def dropped(self, what: str, error: Exception) -> None:
        """Note a connection the server closed."""
        self.problems.append(f"connection dropped at {what}: {error}")


class Sender:
    """Requests on one kept-alive connection; a dropped one is noted and opened again."""

    def __init__(self, url: str, findings: Findings) -> None:
        self.url = url
        self.findings = findings
        self.http = KeepAliveClient(url)

    def send(
        self, what: str, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> None:
        """Send one request and check its answer."""
        try:
            if target.startswith(ENDLESS_PATH_PREFIX):
                response = stream_answer(self.url, method, target, headers)
            else:
                response = self.http.request(method, target, body, headers)
        except ConnectionDroppedError as error:
            self.findings.dropped(what, error)
            self.http.close()
            self.http = KeepAliveClient(self.url)
            return
        self.findings.check(what, response)

    def close(self) -> None:
        """Close the connection."""
        self.http.close()


@pytest.fixture
def fuzz_target(api_settings: Settings, make_user: MakeUser) -> Iterator[FuzzTarget]:
    """A served API with limits out of the way, and a verified user with cash."""
    unlimited = 1_000_000
    fuzz_settings = api_settings.model_copy(
        update={
            "rate_limit_user_per_minute": unlimited,
            "rate_limit_api_key_per_minute": unlimited,
            "rate_limit_login_per_minute": unlimited,
            "rate_limit_login_ip_per_minute": unlimited,
        }
    )
    made = asyncio.run(make_user(cash=Decimal("100000")))
    for url in serve(fuzz_settings, keep_alive_s=KEEP_ALIVE_S):
        yield FuzzTarget(url, fuzz_settings, made.token)


def test_generated_and_hostile_requests_get_no_5xx_no_dropped_connection_and_envelopes(
    fuzz_target: FuzzTarget,
) -> None:
    findings = Findings()
    sender = Sender(fuzz_target.url, findings)
    started = time.monotonic()
    try:
        _send_generated(fuzz_target, sender)
        generated = findings.requests
        _send_hostile(fuzz_target, sender)
    finally:
        sender.close()

    elapsed_s = time.monotonic() - started
    summary = f"{findings.requests} requests ({generated} from schemathesis) in {elapsed_s:.0f} s"
    log.info("fuzz: %s", summary)
    assert findings.problems == [], (summary, findings.problems[:PROBLEMS_SHOWN_MAX])
    assert findings.requests >= REQUESTS_MIN, summary


def _send_generated(target: FuzzTarget, sender: Sender) -> None:
    """Schemathesis's cases for every operation, fitting the schema and breaking it."""
    schema = schemathesis.openapi.from_url(f"{target.url}/openapi.json")
    auth = {"Authorization": f"Bearer {target.token}"}

    def send(case: schemathesis.Case[Any]) -> None:
        # Without a random API key the requests get past authentication, as the user's.
        if case.headers:
            case.headers.pop("x-api-key", None)
        prepared = _prepared(case, target.url, auth)
        if prepared is not None:
            method, path, body, headers = prepared
            what = f"{method} {path[:200]} headers={headers} body={body[:200]!r}"
            sender.send(what, method, path, body, headers)

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if not operation.path.startswith(ENDLESS_PATH_PREFIX):
            for mode, examples in _plan(operation).items():
                _run_cases(operation.as_strategy(mode), examples, send)


def _plan(operation: APIOperation[Any, Any, Any, Any]) -> dict[GenerationMode, int]:
    """How many cases of each kind an operation gets."""
    if operation.path in SLOW_PATHS:
        return {GenerationMode.POSITIVE: EXAMPLES_SLOW, GenerationMode.NEGATIVE: EXAMPLES_SLOW}
    takes_input = (
        bool(operation.body)
        or any(True for _ in operation.query)
        or any(True for _ in operation.path_parameters)
        or any(header.name.lower() not in CREDENTIAL_HEADERS for header in operation.headers)
    )
    if takes_input:
        return {GenerationMode.POSITIVE: EXAMPLES, GenerationMode.NEGATIVE: EXAMPLES}
    # Nothing but credentials, which the test sets: every case is the same request, and none
    # can break the schema (Hypothesis finds no negative case).
    return {GenerationMode.POSITIVE: EXAMPLES_NO_INPUT}


def _run_cases(
    cases: st.SearchStrategy[schemathesis.Case[Any]],
    examples: int,
    send: Callable[[schemathesis.Case[Any]], None],
) -> None:
    """Call ``send`` with ``examples`` cases drawn by Hypothesis (the same ones every run)."""

    @given(case=cases)
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case[Any]) -> None:
        send(case)

    # Unsatisfiable: nothing of the operation's can break its schema (free-form headers, an
    # untyped body), so it has no negative case.
    with contextlib.suppress(Unsatisfiable):
        run()


def _prepared(
    case: schemathesis.Case[Any], base_url: str, headers: Mapping[str, str]
) -> tuple[str, str, bytes, dict[str, str]] | None:
    """The case as requests would send it: method, target, body, headers; None if it cannot be.

    requests refuses some generated headers (a line break in a value) before sending anything
    (InvalidHeader, a ValueError).
    """
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=dict(headers))
    wanted = ("method", "url", "headers", "params", "cookies", "json", "data", "files")
    try:
        prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in wanted}).prepare()
    except ValueError:
        return None
    parts = urlsplit(prepared.url or "")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = prepared.body or b""
    if not isinstance(body, bytes | str):
        return None  # a streamed body: schemathesis builds none for this API
    data = body.encode() if isinstance(body, str) else body
    sent = {name: str(value) for name, value in prepared.headers.items()}
    return str(prepared.method), path, data, sent


def _send_hostile(target: FuzzTarget, sender: Sender) -> None:
    """The hostile raw requests, byte for byte."""
    schema = requests.get(f"{target.url}/openapi.json", timeout=30).json()
    secret = target.settings.gateway_webhook_secret.get_secret_value()

    def headers_for(path: str, body: bytes) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {target.token}",
            "X-Idempotency-Key": uuid.uuid4().hex,
        }
        if path == WEBHOOK_PATH:
            headers.update(signing.signed_headers(secret, int(time.time()), body))
        return headers

    bytes_max = target.settings.api_request_body_bytes_max
    for raw in hostile_requests(schema, BASE_BODIES, bytes_max, headers_for):
        sender.send(raw.what, raw.method, raw.target, raw.body, raw.headers)
