"""The worker entry: the app with every agent registered (``faust -A streams.worker worker``)."""

from __future__ import annotations

from streams.app import app

# Agent modules register their agents on import; each is listed here once it exists.
AGENT_MODULES: tuple[str, ...] = (
    "streams.settle",
    "streams.stops",
    "streams.candles",
    "streams.conflate",
)

for _module in AGENT_MODULES:
    __import__(_module)

__all__ = ["app"]
