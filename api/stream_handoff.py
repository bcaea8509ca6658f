"""Long streams run outside the request's middleware and dependency frames once they start.

A stream endpoint goes through everything a request does (auth, validation, error answers,
metrics) and sends its response headers; then, instead of streaming from deep inside that
stack, it leaves a ``Handoff`` in the scope and returns. This middleware, outermost, runs the
handoff after the stack has unwound: a long-lived stream then holds a few frames instead of
every layer's frames and FastAPI's exit stacks (kilobytes per stream, 10,000 streams).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

# Where a response leaves its stream in the scope (the same dict flows through every layer).
HANDOFF_SCOPE_KEY = "broker.stream_handoff"
Handoff = Callable[[Receive, Send], Awaitable[None]]
# The keys of an HTTP connection scope in the ASGI spec (3.0, HTTP 2.5).
ASGI_SCOPE_KEYS = frozenset(
    (
        "type",
        "asgi",
        "http_version",
        "method",
        "scheme",
        "path",
        "raw_path",
        "query_string",
        "root_path",
        "headers",
        "client",
        "server",
        "state",
        "extensions",
    )
)


class StreamHandoff:
    """Pure ASGI middleware: run a stream the app handed off, after the app returned."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slot: list[Handoff] = []
        scope[HANDOFF_SCOPE_KEY] = slot
        await self.app(scope, receive, send)
        if slot:
            # The layers below leave per-request objects in the scope (FastAPI's closed exit
            # stacks, the route); the connection keeps the scope for as long as it streams.
            for key in [k for k in scope if k not in ASGI_SCOPE_KEYS]:
                del scope[key]
        for stream in slot:
            await stream(receive, send)


def hand_off(scope: Scope, stream: Handoff) -> bool:
    """Leave ``stream`` to the middleware; False when it is not installed (run it yourself)."""
    slot = scope.get(HANDOFF_SCOPE_KEY)
    if not isinstance(slot, list):
        return False
    slot.append(stream)
    return True
