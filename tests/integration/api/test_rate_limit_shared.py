"""Rate limits shared by two API processes through the real Redis, and the fail policy when that
Redis is killed: logins refused (429 rate_limit_unavailable), trading still served, and the
shared counters back once Redis runs again.

The two servers share this test's database and one Redis, as two API processes behind the front
would.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from core.settings import Settings
from infra import redis_node
from tests.conftest import free_port
from tests.integration.api.conftest import MakeUser
from tests.integration.api.orders_support import order_body, place, seed_reference_data
from tests.integration.api.test_auth_support import login, new_email, served, signup

pytestmark = pytest.mark.integration

LIMIT = 4
# A retry interval short enough for the test, long enough to see requests skip Redis.
RETRY_INTERVAL_S = 0.5
BACK_WITHIN_S = 10.0


@contextlib.contextmanager
def two_servers(settings: Settings, **changes: object) -> Iterator[tuple[str, str]]:
    """Two API servers with the same settings (database, Redis); their URLs."""
    with served(settings, **changes) as first, served(settings, **changes) as second:
        yield first, second


@contextlib.asynccontextmanager
async def clients(urls: tuple[str, str]) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client of each server."""
    async with (
        httpx.AsyncClient(base_url=urls[0]) as first,
        httpx.AsyncClient(base_url=urls[1]) as second,
    ):
        yield [first, second]


def _statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


async def test_one_users_requests_spread_over_two_servers_share_one_limit(
    api_settings: Settings, make_user: MakeUser
) -> None:
    person = await make_user()
    with two_servers(api_settings, rate_limit_user_per_minute=LIMIT) as urls:
        async with clients(urls) as servers:
            answers = [
                await servers[n % 2].get("/v1/auth/me", headers=person.headers)
                for n in range(LIMIT + 1)
            ]

    assert _statuses(answers) == [200] * LIMIT + [429]
    assert answers[-1].json()["error"] == "rate_limited"


async def test_login_attempts_spread_over_two_servers_share_one_limit(
    api_settings: Settings,
) -> None:
    email = new_email()
    with two_servers(
        api_settings, rate_limit_login_per_minute=LIMIT, rate_limit_login_ip_per_minute=LIMIT * 10
    ) as urls:
        async with clients(urls) as servers:
            await signup(servers[0], email)
            answers = [await login(servers[n % 2], email) for n in range(LIMIT + 1)]

    assert _statuses(answers) == [200] * LIMIT + [429]


@pytest.fixture
def own_redis(api_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose Redis is this test's own (it gets killed), started; stopped after."""
    redis_settings = api_settings.model_copy(
        update={"redis_port": free_port(), "state_dir": tmp_path}
    )
    redis_node.start(redis_settings)
    try:
        yield redis_settings
    finally:
        redis_node.stop(redis_settings)


def _kill_redis(redis_settings: Settings) -> None:
    pid = int(redis_node.pid_file(redis_settings).read_text())
    os.kill(pid, signal.SIGKILL)
    # The test process started it, so it reaps it; else it lingers as a zombie.
    os.waitpid(pid, 0)


async def _wait_until_logins_pass(servers: list[httpx.AsyncClient], email: str) -> None:
    """Log in on each server until it answers 200 (its limiter has found Redis again)."""
    deadline = time.monotonic() + BACK_WITHIN_S
    for server in servers:
        while (response := await login(server, email)).status_code != 200:
            assert response.status_code == 429, response.text
            assert time.monotonic() < deadline, f"logins still refused after {BACK_WITHIN_S} s"
            await asyncio.sleep(RETRY_INTERVAL_S / 5)


async def test_with_redis_killed_logins_get_429_and_trading_goes_on_until_redis_is_back(
    own_redis: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    await seed_reference_data(db_dsn)
    trader = await make_user(cash=Decimal("10000"))
    email = new_email()
    changes = {
        "redis_retry_interval_s": RETRY_INTERVAL_S,
        "rate_limit_user_per_minute": LIMIT * 10,
        "rate_limit_login_per_minute": LIMIT * 10,
        "rate_limit_login_ip_per_minute": LIMIT * 100,
    }
    with two_servers(own_redis, **changes) as urls:
        async with clients(urls) as servers:
            await signup(servers[0], email)
            before = [await login(server, email) for server in servers]

            _kill_redis(own_redis)
            logins = [await login(servers[n % 2], email) for n in range(6)]
            portfolio = [await s.get("/v1/portfolio", headers=trader.headers) for s in servers]
            orders = [await place(server, trader, order_body()) for server in servers]

            redis_node.start(own_redis)
            await _wait_until_logins_pass(servers, email)
            fresh = await make_user()
            shared = [
                await servers[n % 2].get("/v1/auth/me", headers=fresh.headers)
                for n in range(LIMIT * 10 + 1)
            ]

    assert _statuses(before) == [200, 200]
    assert _statuses(logins) == [429] * 6
    for refused in logins:
        assert refused.json()["error"] == "rate_limit_unavailable"
        assert 1 <= int(refused.headers["Retry-After"]) <= math.ceil(RETRY_INTERVAL_S)
    assert _statuses(portfolio) == [200, 200]
    assert _statuses(orders) == [201, 201], [o.text for o in orders]
    assert _statuses(shared) == [200] * LIMIT * 10 + [429]


async def test_with_a_wrong_redis_password_logins_get_429_and_users_are_still_served(
    api_settings: Settings, make_user: MakeUser
) -> None:
    person = await make_user()
    email = new_email()
    with served(api_settings, redis_password=SecretStr("not-the-password")) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await signup(client, email)
            refused = await login(client, email)
            me = await client.get("/v1/auth/me", headers=person.headers)

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "rate_limit_unavailable"
    assert me.status_code == 200, me.text
