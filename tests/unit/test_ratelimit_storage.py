"""The rate limiter's in-process storage (the fallback while Redis is lost): no thread per hit,
expired hits still dropped, limits still hold."""

from __future__ import annotations

import threading
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage as AsyncMemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.security.ratelimit import SweptMemoryStorage, close_rate_limiter, make_rate_limiter
from core.settings import Settings

# Longer than the 10 ms one-shot timer limits' own MemoryStorage would restart after.
PAST_ONE_SHOT_TIMER_S = 0.05


def test_hits_start_no_thread_once_the_storage_exists() -> None:
    storage = SweptMemoryStorage(sweep_interval_s=60.0)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(1000)
    try:
        sweeper = storage.timer
        threads_before = set(threading.enumerate())
        for n in range(3):
            assert limiter.hit(item, f"user-{n}")
            time.sleep(PAST_ONE_SHOT_TIMER_S)

        assert storage.timer is sweeper
        assert sweeper.is_alive()
        # Threads of earlier tests may end meanwhile; none may start.
        assert set(threading.enumerate()) - threads_before == set()
    finally:
        storage.close()


def test_the_sweeper_drops_expired_hits() -> None:
    storage = SweptMemoryStorage(sweep_interval_s=0.05)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(5)
    try:
        assert limiter.hit(item, "someone")
        assert any(storage.events.values())

        deadline = time.monotonic() + 5.0
        while any(storage.events.values()) and time.monotonic() < deadline:
            time.sleep(0.05)

        assert not any(storage.events.values())
    finally:
        storage.close()


async def test_close_stops_the_sweeper() -> None:
    limiter = make_rate_limiter(Settings(), AsyncMemoryStorage())

    await close_rate_limiter(limiter)
    limiter.storage.timer.join(timeout=5.0)

    assert not limiter.storage.timer.is_alive()


def test_a_full_window_is_still_refused() -> None:
    limiter = make_rate_limiter(Settings(rate_limit_user_per_minute=2), AsyncMemoryStorage())
    try:
        assert limiter.hit_local(limiter.user, "7") == 0.0
        assert limiter.hit_local(limiter.user, "7") == 0.0
        assert limiter.hit_local(limiter.user, "7") > time.time()
        assert limiter.hit_local(limiter.user, "8") == 0.0
    finally:
        limiter.storage.close()
