"""Prometheus metrics for the API: requests and latency per route, served at ``/metrics``."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Observe:
    """Pure ASGI middleware (no BaseHTTPMiddleware task and stream per request)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            # Label by the route's template (/v1/orders/{order_id}), never the raw path: ids in
            # labels would grow the series without bound. The router leaves it in the scope.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            method = scope["method"]
            self.latency.labels(method, route).observe(time.perf_counter() - started)
            self.requests.labels(method, route, str(status)).inc()


def install(app: FastAPI) -> None:
    """Count and time every request, and serve the registry at GET /metrics."""
    registry = CollectorRegistry()
    requests = Counter(
        "api_requests", "HTTP requests answered", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "api_request_duration_seconds",
        "Time to answer an HTTP request",
        ["method", "route"],
        buckets=LATENCY_BUCKETS_S,
        registry=registry,
    )
    app.add_middleware(_Observe, requests=requests, latency=latency)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        """The Prometheus text exposition of this process's metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
