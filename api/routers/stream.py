"""Live streams: prices (SSE, or protobuf frames over a WebSocket) and the caller's orders (SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, WebSocket
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.websockets import WebSocketDisconnect

from api.deps import CurrentPrincipal, PoolDep, SettingsDep, principal_of_token
from api.exceptions import DomainError
from api.feeds.order_feed import OrderFeed, Resync
from api.feeds.price_events import protobuf_price_frames
from api.feeds.price_hub import PriceClient, PriceHub
from api.feeds.price_stream import PriceStreamResponse
from api.services.market import SYMBOLS_TEXT_CHARS_MAX, check_stream_request
from core.db import AsyncPool
from core.settings import Settings

router = APIRouter(prefix="/v1/stream", tags=["stream"])
log = logging.getLogger(__name__)

SymbolsQuery = Annotated[
    str,
    Query(
        max_length=SYMBOLS_TEXT_CHARS_MAX,
        description="Comma-separated symbols, e.g. ACME,BETA.",
    ),
]
# WebSocket close code for a refused request (RFC 6455: policy violation).
WS_POLICY_VIOLATION = 1008


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """``action``, made safe to call more than once (it runs the first time only)."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return run


def _hub(request: Request | WebSocket) -> PriceHub:
    hub: PriceHub = request.app.state.price_hub
    return hub


async def _open_client(
    hub: PriceHub, pool: AsyncPool, settings: Settings, user_id: int, symbols: str
) -> PriceClient:
    """Check the request against the limits, then register a client with the hub."""
    wanted = await check_stream_request(pool, settings, hub, symbols, hub.connections(user_id))
    client = PriceClient(
        user_id,
        wanted,
        settings.stream_client_interval_ms / 1000,
        settings.stream_client_batch_ms / 1000,
    )
    hub.add(client)
    return client


@router.get(
    "/prices",
    summary="Live prices (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_prices(
    request: Request,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    pool: PoolDep,
    symbols: SymbolsQuery,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> PriceStreamResponse:
    """A snapshot of the latest price per symbol (``snapshot``), then ``price`` updates.

    At most one update per symbol per ``stream_client_interval_ms``; a slow reader gets the
    newest prices, never a backlog. A reconnect with ``Last-Event-ID`` gets ``resync`` and a
    fresh snapshot. Heartbeat comments keep proxies from closing an idle stream.
    """
    hub = _hub(request)
    client = await _open_client(hub, pool, settings, principal.user_id, symbols)
    # The response releases the client however the stream ends (also if it never starts).
    return PriceStreamResponse(hub, client, last_event_id, _once(lambda: hub.remove(client)))


@router.get(
    "/orders",
    summary="Your order updates (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_orders(
    request: Request, principal: CurrentPrincipal, settings: SettingsDep
) -> EventSourceResponse:
    """Each change of your orders (new, partial fill, fill, cancel, reject) as an ``order``.

    The data is the order as GET /v1/orders/{id} returns it. If updates were lost (the stream
    fell too far behind) a ``resync`` event ends the stream.
    """
    feed: OrderFeed = request.app.state.order_feed
    subscriber = feed.subscribe(principal.user_id)
    release = _once(lambda: feed.unsubscribe(subscriber))

    async def events() -> AsyncIterator[ServerSentEvent]:
        event_id = 0
        try:
            while True:
                item = await subscriber.queue.get()
                event_id += 1
                if isinstance(item, Resync):
                    reason = json.dumps({"reason": item.reason})
                    yield ServerSentEvent(reason, event="resync", id=str(event_id))
                    return
                yield ServerSentEvent(item.model_dump_json(), event="order", id=str(event_id))
        finally:
            release()

    return EventSourceResponse(
        events(), ping=settings.stream_heartbeat_s, background=BackgroundTask(release)
    )


@router.websocket("/prices/ws")
async def stream_prices_ws(
    websocket: WebSocket,
    symbols: SymbolsQuery,
    access_token: Annotated[str | None, Query(max_length=4096)] = None,
    last_event_id: Annotated[str | None, Query(max_length=32)] = None,
) -> None:
    """Live prices as protobuf ``Frame`` messages (api/feeds/proto/prices.proto), binary.

    Authenticate with ``Authorization: Bearer`` or ``?access_token=`` (browsers cannot set
    headers on a WebSocket). A refusal closes with code 1008 and the reason.
    """
    settings: Settings = websocket.app.state.settings
    pool: AsyncPool = websocket.app.state.pool
    hub = _hub(websocket)
    header = websocket.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else access_token
    try:
        if not token:
            raise DomainError("send 'Authorization: Bearer <token>' or ?access_token=")
        principal = await principal_of_token(websocket.app.state, token)
        client = await _open_client(hub, pool, settings, principal.user_id, symbols)
    except DomainError as exc:
        # Accepted first so the client can read the reason (a refusal before it is a bare 403).
        await websocket.accept()
        await websocket.close(code=WS_POLICY_VIOLATION, reason=exc.detail[:120])
        return
    await websocket.accept()
    sender = asyncio.create_task(_send_frames(websocket, hub, client, last_event_id))
    try:
        # The client sends nothing; receiving only notices when it goes away.
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await sender
        hub.remove(client)


async def _send_frames(
    websocket: WebSocket, hub: PriceHub, client: PriceClient, last_event_id: str | None
) -> None:
    async for data in protobuf_price_frames(hub, client, last_event_id):
        await websocket.send_bytes(data)
