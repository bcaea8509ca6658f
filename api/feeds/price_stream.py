"""The SSE price stream as a response that sends from one loop, lean enough for 10,000 per process.

sse-starlette's ``EventSourceResponse`` runs a task group of four tasks per stream (the stream,
the heartbeat, a disconnect listener, a shutdown listener) and a cancel scope per send. Here
the request's own task sends whatever the hub wakes it for: updates, or a heartbeat (one timer
per process, ``send_heartbeats``); after the headers it runs outside the request's middleware
stack (api/stream_handoff.py). One small task per stream waits for the disconnect, and one
watcher per process (``watch_shutdown``) ends every stream when the server stops. The headers,
the heartbeat comments and HEAD come from sse-starlette as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from api.feeds.price_events import sse_opening, sse_prices
from api.feeds.price_hub import PriceClient, PriceHub
from api.stream_handoff import hand_off


class _NoContent:
    """The parent's required body iterator, never iterated: this response sends by itself."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        raise NotImplementedError("PriceStreamResponse sends its events itself")


_NO_CONTENT = _NoContent()
_HEADERS: dict[tuple[tuple[bytes, bytes], ...], list[tuple[bytes, bytes]]] = {}


def _shared_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """One list object for every response with the same headers (they are never mutated)."""
    return _HEADERS.setdefault(tuple(headers), headers)


class PriceStreamResponse(EventSourceResponse):
    """One client's price stream: opening chunk, then batches of updates, heartbeats between."""

    def __init__(
        self,
        hub: PriceHub,
        client: PriceClient,
        last_event_id: str | None,
        release: Callable[[], None],
    ) -> None:
        super().__init__(_NO_CONTENT)
        # Per stream, for 10,000 streams: the parent's send lock is never used here (one task
        # sends), and the headers, the same for every stream, are shared.
        del self._send_lock
        self.raw_headers = _shared_headers(self.raw_headers)
        self._hub = hub
        self._client = client
        self._last_event_id = last_event_id
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, then stream (handed off to run outside the request's stack)."""
        if scope["method"].upper() == "HEAD":
            # Headers only (sse-starlette's HEAD answer); the stream never starts.
            try:
                await super().__call__(scope, receive, send)
            finally:
                self._release()
            return
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
        except BaseException:
            self._release()
            raise
        if not hand_off(scope, self._stream):
            await self._stream(receive, send)

    async def _stream(self, receive: Receive, send: Send) -> None:
        """Until the client leaves or the server stops; the client is released in any case."""
        client = self._client
        listener = asyncio.get_running_loop().create_task(_close_on_disconnect(receive, client))
        try:
            chunk, event_id = sse_opening(self._hub, client, self._last_event_id)
            while not client.closed:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                batch = await client.next_batch()
                if batch:
                    chunk, event_id = sse_prices(batch, event_id)
                else:
                    chunk = self._heartbeat()
            # Ended by the server: finish the response so the connection can close.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            # A server on ASGI spec 2.4 raises on a send to a client that left.
            client.close()
        finally:
            listener.cancel()
            self._release()

    def _heartbeat(self) -> bytes:
        if self.ping_message_factory is not None:
            return self.ping_message_factory().encode()
        return ServerSentEvent(comment=f"ping - {datetime.now(UTC)}", sep=self.sep).encode()


async def _close_on_disconnect(receive: Receive, client: PriceClient) -> None:
    """Wait for the client to leave, then end its stream (the request body is empty)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    client.close()


async def watch_shutdown(hub: PriceHub) -> None:
    """End every price stream once the server starts to stop (one watcher per process).

    sse-starlette's own shutdown signal (its hook on uvicorn's exit handler, or uvicorn's
    ``should_exit``), watched once here rather than once per stream.
    """
    await EventSourceResponse._listen_for_exit_signal()  # its shutdown signal, private
    hub.close()
