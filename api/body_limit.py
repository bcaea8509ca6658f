"""A bound on request bodies: a larger one is refused with 413 before the app holds it in memory.

FastAPI reads a whole JSON body into memory before validating it, so without a bound one request
could make the process hold gigabytes.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors


class BodyLimit:
    """Pure ASGI middleware: refuse a body over ``bytes_max``, declared or streamed.

    A declared Content-Length over the bound is refused before the app runs; a chunked body is
    counted as it is read, and the read fails once it passes the bound (the route's error
    handling answers 413).
    """

    def __init__(self, app: ASGIApp, bytes_max: int) -> None:
        self.app = app
        self.bytes_max = bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        # Over 18 digits is past any real length; checking that first keeps int() off a huge text.
        if declared.isdigit() and (len(declared) > 18 or int(declared) > self.bytes_max):
            await errors.body_too_large_response(self.bytes_max)(scope, receive, send)
            return
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.bytes_max:
                    raise errors.body_too_large(self.bytes_max)
            return message

        await self.app(scope, receive_counted, send)
