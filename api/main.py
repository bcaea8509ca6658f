"""The FastAPI application: routers, error mapping, the database pool, health and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from confluent_kafka.admin import AdminClient
from fastapi import FastAPI, Response, status
from starlette.concurrency import run_in_threadpool

from api import errors
from api.routers import api_keys, auth, funds, kyc, orders
from core.db import AsyncPool, make_async_pool
from core.settings import Settings, get_settings

READY_CHECK_TIMEOUT_S = 2.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application with its database pool bound to the given settings."""
    settings = settings or get_settings()
    pool = make_async_pool(settings, "api")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=False)
        yield
        await pool.close()

    app = FastAPI(title="Broker API", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.pool = pool
    errors.install(app)
    for module in (auth, api_keys, kyc, funds, orders):
        app.include_router(module.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(response: Response) -> dict[str, str]:
        """Readiness: PostgreSQL and Kafka both answer."""
        checks = {"postgres": await _postgres_ok(pool), "kafka": await _kafka_ok(settings)}
        if not all(v == "ok" for v in checks.values()):
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return checks

    return app


async def _postgres_ok(pool: AsyncPool) -> str:
    try:
        async with pool.connection(timeout=READY_CHECK_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as its reason
        return f"error: {exc.__class__.__name__}"
    return "ok"


async def _kafka_ok(settings: Settings) -> str:
    # A client per check: readiness is asked rarely, and a long-lived client would keep
    # reconnecting (and logging) while Kafka is down.
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        metadata = await run_in_threadpool(admin.list_topics, timeout=READY_CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as its reason
        return f"error: {exc.__class__.__name__}"
    return "ok" if metadata.brokers else "error: no brokers"
