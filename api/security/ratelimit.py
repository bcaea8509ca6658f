"""Rate limits (the ``limits`` library): per user, per API key, and login attempts.

A moving window: at most N hits in any 60 s, and a refused caller is told how long until the
oldest hit leaves the window (``Retry-After``).

The counters live in Redis (``limits.aio``'s Redis storage over one connection pool per app), so
every API process behind the front counts against the same windows. Each Redis call is bounded by
``redis_timeout_s``. When Redis is lost (down, slow, refusing the password):

- logins fail closed: they are answered 429 ``rate_limit_unavailable``, since otherwise
  passwords could be guessed without limit for as long as Redis stays away;
- per-user and per-API-key limits fail open to this process's own in-memory counters, so trading
  goes on and each process still limits alone (a caller then gets up to N per process).

While Redis is lost, one request at most every ``redis_retry_interval_s`` tries it again (the
others do not wait on a server known to be away); the first answer brings the shared counters
back. Each change is logged once: WARNING when lost, INFO when back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable

import redis.asyncio
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter as SharedWindow
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter as LocalWindow
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from api.exceptions import RateLimitedError, RateLimitUnavailableError
from core.settings import Settings

log = logging.getLogger(__name__)

# What "Redis is lost" looks like: the storage wraps every redis-py error (connection refused,
# authentication, a full pool) in StorageError; TimeoutError is our own bound on a call.
_LOST_ERRORS: tuple[type[BaseException], ...] = (StorageError, TimeoutError, OSError)


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


class RateLimiter:
    """One app's limiter: shared counters in Redis, this process's own while Redis is lost."""

    def __init__(
        self,
        settings: Settings,
        shared_storage: AsyncStorage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared_storage = shared_storage
        self.shared = SharedWindow(shared_storage)
        # The fallback: a few dict and list operations under a lock, cheap enough to call from
        # the event loop; old hits are dropped by one sweeping thread, not per request.
        self.storage = SweptMemoryStorage(settings.rate_limit_sweep_interval_s)
        self.local = LocalWindow(self.storage)
        self.user = RateLimitItemPerMinute(settings.rate_limit_user_per_minute, namespace="user")
        self.api_key = RateLimitItemPerMinute(
            settings.rate_limit_api_key_per_minute, namespace="key"
        )
        self.login_email = RateLimitItemPerMinute(
            settings.rate_limit_login_per_minute, namespace="login-email"
        )
        self.login_ip = RateLimitItemPerMinute(
            settings.rate_limit_login_ip_per_minute, namespace="login-ip"
        )
        self._timeout_s = settings.redis_timeout_s
        self._retry_interval_s = settings.redis_retry_interval_s
        self._clock = clock
        self._lost = False
        self._next_try_at = 0.0
        # Calls in flight at most as many as the pool's connections, queued first come first
        # served: the pool's own wait wakes its waiters in no order, and under load some waited
        # past the timeout while Redis was answering in a few milliseconds (a false loss). The
        # wait here counts within the call's bound: a queue longer than that means Redis is lost.
        self._in_flight = asyncio.Semaphore(settings.redis_connections_max)
        # Set when the limiter owns its Redis connections, so shutdown closes them.
        self.redis_pool: redis.asyncio.BlockingConnectionPool | None = None

    @property
    def redis_lost(self) -> bool:
        """True while the shared counters are known to be unreachable."""
        return self._lost

    def seconds_until_retry(self) -> int:
        """Whole seconds (at least 1) until Redis is tried again."""
        return max(1, math.ceil(self._next_try_at - self._clock()))

    async def hit_shared(self, item: RateLimitItem, identifier: str) -> float | None:
        """One hit in Redis: 0.0 when allowed, the window's reset time when refused, None if lost.

        While lost, only one call per retry interval reaches Redis; the others answer None at
        once.
        """
        probing = self._lost
        if probing:
            now = self._clock()
            if now < self._next_try_at:
                return None
            # Claimed before the await, so the requests arriving meanwhile do not probe too.
            self._next_try_at = now + self._retry_interval_s
        try:
            async with asyncio.timeout(self._timeout_s), self._in_flight:
                if await self.shared.hit(item, identifier):
                    reset_time = 0.0
                else:
                    stats = await self.shared.get_window_stats(item, identifier)
                    reset_time = stats.reset_time
        except _LOST_ERRORS as exc:
            self._mark_lost(exc)
            return None
        # Only a probe brings Redis back: a call begun before the loss may still finish late.
        if probing and self._lost:
            self._lost = False
            log.info("Redis is back: rate-limit counters are shared by every API process again")
        return reset_time

    async def connect(self) -> None:
        """Open a first connection to Redis (at startup), so a lost Redis is known and logged."""
        try:
            async with asyncio.timeout(self._timeout_s), self._in_flight:
                # A read of a window nobody hits: the same path as a request, errors included.
                await self.shared.get_window_stats(self.login_ip, "startup-check")
        except _LOST_ERRORS as exc:
            self._mark_lost(exc)

    def hit_local(self, item: RateLimitItem, identifier: str) -> float:
        """One hit in this process's counters: 0.0 when allowed, else the window's reset time."""
        if self.local.hit(item, identifier):
            return 0.0
        return self.local.get_window_stats(item, identifier).reset_time

    def _mark_lost(self, exc: BaseException) -> None:
        self._next_try_at = self._clock() + self._retry_interval_s
        if self._lost:
            return
        self._lost = True
        log.warning(
            "Redis lost (%s: %s): logins are refused and per-user limits count in this process "
            "alone until it answers; retrying at most every %.1f s",
            exc.__class__.__name__,
            exc,
            self._retry_interval_s,
        )


def make_redis_pool(settings: Settings) -> redis.asyncio.BlockingConnectionPool:
    """One app's connections to Redis: bounded, each call bounded, no retries of their own."""
    # The limiter's queue keeps calls within the pool's connections; a blocking pool (waiting at
    # most the call's bound) is the second guard. redis-py's own retries would stretch a call
    # past the bound; a lost Redis is handled by the fail policy instead.
    # Keyword arguments, not the URL: a password needs no URL-escaping this way.
    return redis.asyncio.BlockingConnectionPool(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password.get_secret_value(),
        db=0,
        max_connections=settings.redis_connections_max,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def make_redis_storage(
    settings: Settings, pool: redis.asyncio.BlockingConnectionPool
) -> RedisStorage:
    """The shared counters in Redis over the given pool."""
    return RedisStorage(
        # Only names the server: the pool connects, with the password.
        f"async+redis://{settings.redis_host}:{settings.redis_port}/0",
        wrap_exceptions=True,
        implementation="redispy",
        # User and API key ids are unique within one database, so the keys name it.
        key_prefix=f"ratelimit:{settings.pg_database}",
        # limits types its options as scalars, but hands connection_pool to redis-py as it is.
        connection_pool=pool,  # type: ignore[arg-type]
    )


def make_rate_limiter(
    settings: Settings, shared_storage: AsyncStorage | None = None
) -> RateLimiter:
    """A limiter with the limits from the settings, over Redis unless another storage is given."""
    if shared_storage is not None:
        return RateLimiter(settings, shared_storage)
    pool = make_redis_pool(settings)
    limiter = RateLimiter(settings, make_redis_storage(settings, pool))
    limiter.redis_pool = pool
    return limiter


async def close_rate_limiter(limiter: RateLimiter) -> None:
    """Stop the fallback's sweeping thread and close the Redis connections (at shutdown)."""
    limiter.storage.close()
    if limiter.redis_pool is not None:
        await limiter.redis_pool.disconnect()


def _refuse(item: RateLimitItem, reset_time: float, what: str) -> RateLimitedError:
    retry_after_s = max(1, math.ceil(reset_time - time.time()))
    return RateLimitedError(
        f"too many {what}: at most {item.amount} per minute; retry in {retry_after_s} s",
        retry_after_s=retry_after_s,
    )


async def hit(limiter: RateLimiter, item: RateLimitItem, identifier: str, what: str) -> None:
    """Count one hit for ``identifier``; RateLimitedError when its window is full.

    Without Redis the hit counts in this process alone (fail open).
    """
    reset_time = await limiter.hit_shared(item, identifier)
    if reset_time is None:
        reset_time = limiter.hit_local(item, identifier)
    if reset_time:
        raise _refuse(item, reset_time, what)


async def _hit_or_refuse(limiter: RateLimiter, item: RateLimitItem, key: str, what: str) -> None:
    reset_time = await limiter.hit_shared(item, key)
    if reset_time is None:
        retry_after_s = limiter.seconds_until_retry()
        raise RateLimitUnavailableError(
            "logins are paused for a moment: the login attempt counters cannot be reached; "
            f"retry in {retry_after_s} s",
            retry_after_s=retry_after_s,
        )
    if reset_time:
        raise _refuse(item, reset_time, what)


async def hit_login(limiter: RateLimiter, email: str, client_ip: str) -> None:
    """Count a login attempt against both the email and the client's address.

    Without Redis the attempt is refused (fail closed): password guessing must stay limited
    for the whole system, and a pause of logins while Redis is away is the smaller harm.
    """
    await _hit_or_refuse(limiter, limiter.login_ip, client_ip, "login attempts from this address")
    await _hit_or_refuse(limiter, limiter.login_email, email, "login attempts for this account")
