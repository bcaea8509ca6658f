"""The rate limiter's fail policy when its shared counters (Redis) are lost.

Logins fail closed, per-user limits fail open to the process's own counters, Redis is tried again
at most once per retry interval, and the shared counters come back by themselves. The shared
storage is a hand-written fake: real in-memory counters that can be switched off or slowed down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from limits.aio.storage import MemoryStorage
from limits.errors import StorageError

from api import errors
from api.exceptions import RateLimitedError, RateLimitUnavailableError
from api.security.ratelimit import RateLimiter, close_rate_limiter, hit, hit_login
from core.settings import Settings

RETRY_INTERVAL_S = 5.0
LIMIT = 2


class FakeSharedStorage(MemoryStorage):
    """Shared counters that can be taken away like a lost Redis; counts the calls that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.delay_s = 0.0
        self.calls = 0

    async def _reach(self) -> None:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.down:
            raise StorageError(ConnectionError("Connection refused"))

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """One hit, if the store can be reached."""
        await self._reach()
        return await super().acquire_entry(key, limit, expiry, amount)

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The window's start and count, if the store can be reached."""
        await self._reach()
        return await super().get_moving_window(key, limit, expiry)


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = Settings(
    rate_limit_user_per_minute=LIMIT,
    rate_limit_login_per_minute=LIMIT,
    rate_limit_login_ip_per_minute=LIMIT * 10,
    redis_retry_interval_s=RETRY_INTERVAL_S,
    redis_timeout_s=0.05,
)


@pytest.fixture
def shared() -> FakeSharedStorage:
    return FakeSharedStorage()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def limiter(shared: FakeSharedStorage, clock: FakeClock) -> AsyncIterator[RateLimiter]:
    made = RateLimiter(SETTINGS, shared, clock=clock)
    yield made
    await close_rate_limiter(made)


async def _user_hit(limiter: RateLimiter, user: str = "7") -> None:
    await hit(limiter, limiter.user, user, "requests for this user")


async def test_while_redis_answers_two_processes_share_one_window(
    shared: FakeSharedStorage, clock: FakeClock
) -> None:
    first = RateLimiter(SETTINGS, shared, clock=clock)
    second = RateLimiter(SETTINGS, shared, clock=clock)
    try:
        await _user_hit(first)
        await _user_hit(second)
        with pytest.raises(RateLimitedError) as refused:
            await _user_hit(first)
    finally:
        await close_rate_limiter(first)
        await close_rate_limiter(second)

    assert refused.value.code == "rate_limited"
    assert 1 <= refused.value.retry_after_s <= 60


async def test_a_login_while_redis_is_lost_is_refused_with_429_rate_limit_unavailable(
    limiter: RateLimiter, shared: FakeSharedStorage
) -> None:
    shared.down = True

    with pytest.raises(RateLimitUnavailableError) as refused:
        await hit_login(limiter, "alice@example.com", "10.0.0.1")

    assert refused.value.code == "rate_limit_unavailable"
    assert errors.status_for(refused.value) == 429
    assert 1 <= refused.value.retry_after_s <= RETRY_INTERVAL_S
    assert limiter.redis_lost


async def test_logins_stay_refused_until_redis_answers_even_past_the_retry_interval(
    limiter: RateLimiter, shared: FakeSharedStorage, clock: FakeClock
) -> None:
    shared.down = True
    for _ in range(3):
        with pytest.raises(RateLimitUnavailableError):
            await hit_login(limiter, "alice@example.com", "10.0.0.1")
        clock.now += RETRY_INTERVAL_S + 0.1

    assert limiter.redis_lost


async def test_user_hits_while_redis_is_lost_count_in_this_process_and_still_refuse(
    limiter: RateLimiter, shared: FakeSharedStorage
) -> None:
    shared.down = True

    for _ in range(LIMIT):
        await _user_hit(limiter)
    with pytest.raises(RateLimitedError) as refused:
        await _user_hit(limiter)
    await _user_hit(limiter, user="8")

    assert type(refused.value) is RateLimitedError
    assert "at most 2 per minute" in refused.value.detail
    assert limiter.storage.events


async def test_redis_is_not_tried_again_before_the_retry_interval(
    limiter: RateLimiter, shared: FakeSharedStorage, clock: FakeClock
) -> None:
    shared.down = True
    await _user_hit(limiter)
    assert shared.calls == 1

    for n in range(20):
        await _user_hit(limiter, user=f"many-{n}")
    clock.now += RETRY_INTERVAL_S - 0.1
    await _user_hit(limiter, user="other")
    with pytest.raises(RateLimitUnavailableError):
        await hit_login(limiter, "alice@example.com", "10.0.0.1")
    assert shared.calls == 1

    clock.now += 0.2
    await _user_hit(limiter, user="other")
    assert shared.calls == 2


async def test_requests_arriving_together_after_the_interval_send_one_probe(
    limiter: RateLimiter, shared: FakeSharedStorage, clock: FakeClock
) -> None:
    shared.down = True
    await _user_hit(limiter)
    clock.now += RETRY_INTERVAL_S + 0.1
    shared.delay_s = 0.01

    await asyncio.gather(*(_user_hit(limiter, user=str(n)) for n in range(10)))

    assert shared.calls == 2


async def test_the_shared_counters_come_back_once_redis_answers_a_probe(
    limiter: RateLimiter, shared: FakeSharedStorage, clock: FakeClock
) -> None:
    shared.down = True
    await _user_hit(limiter)
    shared.down = False

    await _user_hit(limiter, user="before")
    assert limiter.redis_lost
    assert not shared.events

    clock.now += RETRY_INTERVAL_S + 0.1
    await _user_hit(limiter, user="after")
    await hit_login(limiter, "alice@example.com", "10.0.0.1")

    assert not limiter.redis_lost
    assert shared.events


async def test_a_redis_slower_than_the_timeout_counts_as_lost(
    limiter: RateLimiter, shared: FakeSharedStorage
) -> None:
    shared.delay_s = 1.0
    started = time.monotonic()

    await _user_hit(limiter)

    assert time.monotonic() - started < 0.5
    assert limiter.redis_lost


async def test_loss_and_return_are_logged_once_each(
    limiter: RateLimiter,
    shared: FakeSharedStorage,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="api.security.ratelimit")
    shared.down = True
    for n in range(3):
        await _user_hit(limiter, user=f"probe-{n}")
        clock.now += RETRY_INTERVAL_S + 0.1
    shared.down = False
    for n in range(3):
        await _user_hit(limiter, user=str(n))
        clock.now += RETRY_INTERVAL_S + 0.1

    levels = [(r.levelno, r.getMessage().split(":")[0]) for r in caplog.records]
    assert levels == [
        (logging.WARNING, "Redis lost (StorageError"),
        (logging.INFO, "Redis is back"),
    ]


async def test_a_limiter_started_without_redis_knows_it_at_once_and_one_with_it_does_not(
    limiter: RateLimiter, shared: FakeSharedStorage, clock: FakeClock
) -> None:
    with_redis = RateLimiter(SETTINGS, FakeSharedStorage(), clock=clock)
    try:
        await with_redis.connect()
    finally:
        await close_rate_limiter(with_redis)
    shared.down = True

    await limiter.connect()

    assert not with_redis.redis_lost
    assert limiter.redis_lost
    with pytest.raises(RateLimitUnavailableError):
        await hit_login(limiter, "alice@example.com", "10.0.0.1")
    assert shared.calls == 1
