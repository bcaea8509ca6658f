"""The FastAPI application: routers, error mapping, the database pool, health and readiness."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from confluent_kafka.admin import AdminClient
from fastapi import FastAPI, Response, status
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api import docs_ui, errors, metrics
from api.body_limit import BodyLimit
from api.feeds.order_feed import OrderFeed
from api.feeds.price_feed import PriceFeed
from api.feeds.price_hub import PriceHub, send_heartbeats
from api.feeds.price_stream import watch_shutdown
from api.routers import (
    api_keys,
    auth,
    funds,
    kyc,
    market,
    orders,
    portfolio,
    stream,
    watchlist,
)
from api.security.ratelimit import close_rate_limiter, make_rate_limiter
from api.security.revocations import RevokedSessions
from api.services.kyc_review import run_reviewer
from api.stream_handoff import StreamHandoff
from core.calendar import calendar_from_settings
from core.db import AsyncPool, make_async_pool
from core.gc_tuning import tune_gc
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

READY_CHECK_TIMEOUT_S = 2.0
# The web page: plain files and JS modules, no build step.
STATIC_DIR = Path(__file__).parent / "static"
TITLE = "Broker API"
DESCRIPTION = """Every refusal answers `{"error": code, "detail": sentence}` (the ErrorBody schema).
Besides each operation's own codes, any request may get: 400 `malformed_body` (not JSON, not
UTF-8, nested too deeply), 404 `not_found`, 405 `method_not_allowed` (see the Allow header),
413 `body_too_large`, 422 `validation_failed` (`fields` lists each field and why), and for a
server bug 500 `internal_error`."""


def create_app(settings: Settings | None = None, *, own_process: bool = False) -> FastAPI:
    """Build the application with its database pool bound to the given settings.

    ``own_process``: the app is the process's only one (``python -m api``), so its start may tune
    the process's garbage collector; an app served inside another program leaves it alone.
    """
    settings = settings or get_settings()
    pool = make_async_pool(settings, "api")
    # Candle reads go to the standby of the HA pair; one server serves them otherwise.
    read_pool = make_async_pool(settings, "api-read", reads=True) if settings.pg_ha else pool
    price_hub = PriceHub()
    order_feed = OrderFeed(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Loading the holidays takes about a second: here, not in the first order; and malformed
        # market hours stop the start instead of every order.
        calendar_from_settings(settings)
        await pool.open(wait=False)
        if read_pool is not pool:
            await read_pool.open(wait=False)
        await rate_limiter.connect()
        # The simulated KYC provider runs beside the API; SKIP LOCKED makes many nodes safe.
        stop_reviewer = asyncio.Event()
        reviewer = asyncio.create_task(run_reviewer(pool, settings, stop_reviewer))
        # One md.conflated and one order updates consumer per process feed every client.
        price_feed = PriceFeed(settings, price_hub, pool)
        price_feed.start()
        order_feed.start()
        revoked_sessions.start()
        # One watcher per process ends every price stream when the server stops.
        stream_closer = asyncio.create_task(watch_shutdown(price_hub))
        heartbeats = asyncio.create_task(send_heartbeats(price_hub, settings.stream_heartbeat_s))
        # Serve at once when PostgreSQL or Kafka is away (readiness says so); otherwise wait a
        # moment for both feeds, so a first client's snapshot already holds the known prices.
        await _wait_all(
            [price_feed.ready, order_feed.ready, revoked_sessions.listening],
            settings.api_feeds_ready_wait_s,
        )
        if own_process:
            tune_gc(settings.api_gc_gen0_threshold)
        yield
        stream_closer.cancel()
        heartbeats.cancel()
        await order_feed.stop()
        await revoked_sessions.stop()
        await price_feed.stop()
        stop_reviewer.set()
        await _finish(reviewer, settings.shutdown_timeout_s)
        if read_pool is not pool:
            await read_pool.close()
        await pool.close()
        await close_rate_limiter(rate_limiter)

    # /docs is served from vendored files (api/docs_ui.py); ReDoc, from a CDN, is left out.
    app = FastAPI(
        title=TITLE,
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.read_pool = read_pool
    app.state.kyc_verified_until = {}
    app.state.access_tokens = {}  # verified access tokens (api/security/tokens.py)
    # Sessions ended anywhere, heard through PostgreSQL (api/security/revocations.py).
    app.state.revoked_sessions = revoked_sessions = RevokedSessions(settings)
    app.state.price_hub = price_hub
    app.state.order_feed = order_feed
    # Counters shared in Redis by every API process (see api/security/ratelimit.py).
    app.state.rate_limiter = rate_limiter = make_rate_limiter(settings)
    errors.install(app, db_retry_after_s=settings.pg_unavailable_retry_after_s)
    app.add_middleware(BodyLimit, bytes_max=settings.api_request_body_bytes_max)
    metrics.install(app)
    # Added last, so outside the metrics: a handed-off stream runs after the request is counted.
    app.add_middleware(StreamHandoff)
    for module in (auth, api_keys, kyc, funds, orders, market, portfolio, stream, watchlist):
        app.include_router(module.router, responses=errors.ROUTE_RESPONSES)
    docs_ui.install(app, TITLE)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    kafka_check = _KafkaCheck(settings)

    @app.get("/readyz", tags=["ops"])
    async def readyz(response: Response) -> dict[str, str]:
        """Readiness: 503 unless PostgreSQL answers; Kafka's state is reported beside it.

        Orders need only PostgreSQL (the outbox holds them while Kafka is away), so a process
        without Kafka stays in the front's rotation; its live prices pause meanwhile.
        """
        checks = {"postgres": await _postgres_ok(pool), "kafka": await kafka_check.state()}
        if checks["postgres"] != "ok":
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return checks

    app.mount("/app", StaticFiles(directory=STATIC_DIR, html=True), name="web")
    return app


async def _wait_all(events: list[asyncio.Event], timeout_s: float) -> None:
    """Wait until every event is set, at most ``timeout_s``; log when they are not."""
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout_s)
    except TimeoutError:
        log.warning("live feeds not ready after %.1f s; they keep retrying", timeout_s)


async def _finish(task: asyncio.Task[None], timeout_s: float) -> None:
    """Wait for a background task told to stop; cancel it if it overruns the timeout."""
    try:
        # On timeout, wait_for cancels the task and waits for it to unwind.
        await asyncio.wait_for(task, timeout=timeout_s)
    except TimeoutError:
        log.warning("background task did not stop in %.1f s; cancelled", timeout_s)
    except Exception:
        log.exception("background task failed")


async def _postgres_ok(pool: AsyncPool) -> str:
    try:
        async with pool.connection(timeout=READY_CHECK_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as its reason
        return f"error: {exc.__class__.__name__}"
    return "ok"


class _KafkaCheck:
    """Kafka's state, asked at most once per ``api_ready_kafka_check_interval_s``.

    The front checks readiness twice a second per process; a Kafka client per check would cost
    more than the rest of the check.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._state = "unknown"
        self._next_check = 0.0
        self._lock = asyncio.Lock()

    async def state(self) -> str:
        """The last known state, refreshed when older than the interval."""
        # One check at a time, and no caller waits for it: while a dead node makes the
        # check slow, readiness (which the front asks twice a second) answers from the last.
        if self._lock.locked():
            return self._state
        async with self._lock:
            now = time.monotonic()
            if now >= self._next_check:
                self._state = await _kafka_ok(self._settings)
                self._next_check = now + self._settings.api_ready_kafka_check_interval_s
            return self._state


async def _kafka_ok(settings: Settings) -> str:
    # A client per check: readiness is asked rarely, and a long-lived client would keep
    # reconnecting (and logging) while Kafka is down.
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        metadata = await run_in_threadpool(admin.list_topics, timeout=READY_CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as its reason
        return f"error: {exc.__class__.__name__}"
    return "ok" if metadata.brokers else "error: no brokers"
