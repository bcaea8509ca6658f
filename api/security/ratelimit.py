"""Rate limits (the ``limits`` library): per user, per API key, and login attempts.

A moving window: at most N hits in any 60 s, and a refused caller is told how long until the
oldest hit leaves the window (``Retry-After``).

The counters live in this process's memory (``MemoryStorage``), so each API process counts
alone: with several processes (uvicorn workers, or nodes behind a load balancer) a caller gets up
to N per process. Running more than one needs a shared store: ``limits`` supports Redis
(``limits.aio`` with ``async+redis://``), and only ``make_rate_limiter`` would change.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.exceptions import RateLimitedError
from core.settings import Settings


class _Sweeper(threading.Timer):
    """A timer that fires every ``interval`` seconds until cancelled, not once."""

    def run(self) -> None:
        while not self.finished.wait(self.interval):
            self.function(*self.args, **self.kwargs)


class SweptMemoryStorage(MemoryStorage):
    """``MemoryStorage`` whose expired hits are dropped by one long-lived thread.

    The library's storage starts a new one-shot 10 ms ``Timer`` thread on a hit whenever the
    previous one has finished: under load about a hundred thread starts a second, each blocking
    the event loop in ``Thread.start`` until the new thread runs (py-spy: 5-13 % of the API's
    samples while placing orders). It restarts a timer only when ``timer.is_alive()`` is false,
    so a repeating timer in that attribute makes it start none. Relies on limits 5.8's private
    names (the version is pinned); tests/unit/test_ratelimit_storage.py checks them.
    """

    def __init__(self, sweep_interval_s: float) -> None:
        super().__init__()
        self.timer.cancel()
        expire: Callable[[], None] = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
        self.timer = _Sweeper(sweep_interval_s, expire)
        self.timer.daemon = True
        self.timer.start()

    def close(self) -> None:
        """Stop the sweeping thread (the counters stay usable, unswept)."""
        self.timer.cancel()


@dataclass(frozen=True, slots=True)
class RateLimiter:
    """One app's limiter and the limit of each kind of caller."""

    strategy: MovingWindowRateLimiter
    storage: SweptMemoryStorage
    user: RateLimitItem
    api_key: RateLimitItem
    login_email: RateLimitItem
    login_ip: RateLimitItem


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """A limiter over in-process memory with the limits from the settings."""
    # The synchronous MemoryStorage is a few dict and list operations under a lock: cheap enough
    # to call from the event loop, and it expires old hits on a timer thread, not per request.
    storage = SweptMemoryStorage(settings.rate_limit_sweep_interval_s)
    return RateLimiter(
        strategy=MovingWindowRateLimiter(storage),
        storage=storage,
        user=RateLimitItemPerMinute(settings.rate_limit_user_per_minute, namespace="user"),
        api_key=RateLimitItemPerMinute(settings.rate_limit_api_key_per_minute, namespace="key"),
        login_email=RateLimitItemPerMinute(
            settings.rate_limit_login_per_minute, namespace="login-email"
        ),
        login_ip=RateLimitItemPerMinute(
            settings.rate_limit_login_ip_per_minute, namespace="login-ip"
        ),
    )


def close_rate_limiter(limiter: RateLimiter) -> None:
    """Stop the limiter's sweeping thread (at application shutdown)."""
    limiter.storage.close()


def hit(limiter: RateLimiter, item: RateLimitItem, identifier: str, what: str) -> None:
    """Count one hit for ``identifier``; RateLimitedError when its window is full."""
    if limiter.strategy.hit(item, identifier):
        return
    stats = limiter.strategy.get_window_stats(item, identifier)
    retry_after_s = max(1, math.ceil(stats.reset_time - time.time()))
    raise RateLimitedError(
        f"too many {what}: at most {item.amount} per minute; retry in {retry_after_s} s",
        retry_after_s=retry_after_s,
    )


def hit_login(limiter: RateLimiter, email: str, client_ip: str) -> None:
    """Count a login attempt against both the email and the client's address."""
    hit(limiter, limiter.login_ip, client_ip, "login attempts from this address")
    hit(limiter, limiter.login_email, email, "login attempts for this account")
