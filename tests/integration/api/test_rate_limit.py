"""Rate limits over real HTTP: per user, per API key, and login attempts per email and address.

Each test runs a server of its own with small limits, so the counters start empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.test_auth_support import PASSWORD, login, new_email, served, signup

pytestmark = pytest.mark.integration

LIMIT = 3
WINDOW_S = 60


@pytest.fixture
def limited_url(api_settings: Settings) -> Iterator[str]:
    """A server whose every limit is LIMIT per minute."""
    with served(
        api_settings,
        rate_limit_user_per_minute=LIMIT,
        rate_limit_api_key_per_minute=LIMIT,
        rate_limit_login_per_minute=LIMIT,
        rate_limit_login_ip_per_minute=LIMIT * 2,
    ) as url:
        yield url


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= WINDOW_S


async def test_the_request_after_the_users_limit_answers_429(
    limited_url: str, make_user: MakeUser
) -> None:
    person, neighbour = await make_user(), await make_user()
    async with httpx.AsyncClient(base_url=limited_url) as client:
        allowed = [await client.get("/v1/auth/me", headers=person.headers) for _ in range(LIMIT)]
        refused = await client.get("/v1/auth/me", headers=person.headers)
        other = await client.get("/v1/auth/me", headers=neighbour.headers)

    assert [r.status_code for r in allowed] == [200] * LIMIT
    _assert_limited(refused)
    assert other.status_code == 200


async def test_an_api_key_has_a_limit_of_its_own(limited_url: str, make_user: MakeUser) -> None:
    owner = await make_user()
    async with httpx.AsyncClient(base_url=limited_url) as client:
        created = await client.post("/v1/api-keys", json={"name": "bot"}, headers=owner.headers)
        key = {"X-API-Key": created.json()["key"]}
        allowed = [await client.get("/v1/auth/me", headers=key) for _ in range(LIMIT)]
        refused = await client.get("/v1/auth/me", headers=key)

    assert [r.status_code for r in allowed] == [200] * LIMIT
    _assert_limited(refused)


async def test_login_attempts_for_one_email_are_limited_even_with_the_right_password(
    limited_url: str,
) -> None:
    email = new_email()
    async with httpx.AsyncClient(base_url=limited_url) as client:
        await signup(client, email)
        wrong = [await login(client, email, password=PASSWORD + "x") for _ in range(LIMIT)]
        right = await login(client, email)
        other_email = await login(client, new_email())

    assert [r.status_code for r in wrong] == [401] * LIMIT
    _assert_limited(right)
    assert other_email.status_code == 401


async def test_login_attempts_from_one_address_are_limited_across_emails(
    limited_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=limited_url) as client:
        tries = [await login(client, new_email()) for _ in range(LIMIT * 2)]
        refused = await login(client, new_email())

    assert [r.status_code for r in tries] == [401] * LIMIT * 2
    _assert_limited(refused)
