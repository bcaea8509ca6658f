"""Schemathesis generates requests from the OpenAPI schema: whatever it sends, no 5xx comes back.

It runs against the real server and database as a logged-in user with 2FA, KYC and cash, so the
generated requests reach the services, not only the authentication layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import BaseSchema
from schemathesis.checks import not_a_server_error

from core.settings import Settings
from tests.integration.api.conftest import MakeUser, serve

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 30
# The simulated payment gateway is not running here, so deposits fail with a handled error;
# every other operation is exercised in full.


@pytest.fixture
def fuzz_target(api_settings: Settings, make_user: MakeUser) -> Iterator[tuple[str, str]]:
    """A served API plus an access token of a fully verified user with cash."""
    fuzz_settings = api_settings.model_copy(
        update={"rate_limit_user_per_minute": 1_000_000, "rate_limit_api_key_per_minute": 1_000_000}
    )
    made = asyncio.run(make_user(cash=Decimal("100000")))
    for url in serve(fuzz_settings):
        yield url, made.token


@pytest.fixture
def api_schema(fuzz_target: tuple[str, str]) -> BaseSchema:
    url, _ = fuzz_target
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


# The SSE streams never end by design, so a generated request to them would never return; their
# refusals are tested in test_stream_prices.py.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex="^/v1/stream/")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case[Any], fuzz_target: tuple[str, str]
) -> None:
    url, token = fuzz_target
    response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"})

    case.validate_response(response, checks=[not_a_server_error])
