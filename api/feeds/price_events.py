"""What a price stream sends, as SSE text (JSON data) or as protobuf frames (the binary option).

Both streams follow the same script: with a Last-Event-ID, a ``resync`` first; then a snapshot
of the latest price of every symbol asked for; then updates, each with the next event id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from sse_starlette import ServerSentEvent

from api.feeds.price_hub import PriceClient, PriceHub, Quote
from api.feeds.proto import prices_pb2
from core.timestamps import utc_of_ns

_E4 = Decimal(10_000)
# The JSON of the newest quote formatted per symbol: what clients are sent is nearly always the
# hub's latest quote, so it is formatted once for all of them (found by identity, not hashing).
_LATEST_DATA: dict[str, tuple[Quote, bytes]] = {}


def iso_of_ns(ts_ns: int) -> str:
    """An ISO-8601 UTC string (microseconds) of nanoseconds since the Unix epoch."""
    return utc_of_ns(ts_ns).isoformat().replace("+00:00", "Z")


def quote_json(quote: Quote) -> dict[str, str]:
    """A quote as the JSON the API sends: decimal and time as strings."""
    return {"symbol": quote.symbol, "price": str(quote.price), "ts": iso_of_ns(quote.ts_ns)}


def resync_reason(last_event_id: str) -> str:
    """Why a resumed stream starts over."""
    return (
        f"resumed after event {last_event_id}: updates since then were conflated away;"
        " a fresh snapshot follows"
    )


def sse_event(event: str, event_id: int, data: object) -> bytes:
    """One SSE event as bytes."""
    return ServerSentEvent(
        json.dumps(data, separators=(",", ":")), event=event, id=str(event_id)
    ).encode()


def first_id(last_event_id: str | None) -> int:
    """The id of a stream's first event: after the one the client saw last, if any."""
    if last_event_id is not None and last_event_id.isdigit():
        return int(last_event_id) + 1
    return 1


def sse_opening(hub: PriceHub, client: PriceClient, last_event_id: str | None) -> tuple[bytes, int]:
    """A stream's first chunk (a ``resync`` when resumed, then the snapshot) and its last id.

    The client must already be added to the hub, so no update falls between the two.
    """
    event_id = first_id(last_event_id)
    head = b""
    if last_event_id is not None:
        head = sse_event("resync", event_id, {"reason": resync_reason(last_event_id)})
        event_id += 1
    snapshot = hub.snapshot(client.symbols)
    client.reset()
    head += sse_event("snapshot", event_id, {"prices": [quote_json(q) for q in snapshot]})
    return head, event_id


def sse_prices(batch: Sequence[Quote], last_id: int) -> tuple[bytes, int]:
    """One ``price`` event per quote, numbered after ``last_id``, and the last id used."""
    parts = []
    for quote in batch:
        last_id += 1
        parts.append(b"id: %d\r\nevent: price\r\ndata: %s\r\n\r\n" % (last_id, quote_data(quote)))
    return b"".join(parts), last_id


def quote_data(quote: Quote) -> bytes:
    """A quote's JSON, made once for all the clients it goes to (the same bytes as sse_event's)."""
    cached = _LATEST_DATA.get(quote.symbol)
    if cached is not None and cached[0] is quote:
        return cached[1]
    data = json.dumps(quote_json(quote), separators=(",", ":")).encode()
    _LATEST_DATA[quote.symbol] = (quote, data)
    return data


def price_e4(price: Decimal) -> int:
    """A price in ten-thousandths (exact for NUMERIC(18,4))."""
    return int(price * _E4)


def frame(
    kind: prices_pb2.Frame.Kind, event_id: int, quotes: Sequence[Quote], reason: str = ""
) -> bytes:
    """One protobuf frame."""
    message = prices_pb2.Frame(id=event_id, kind=kind, reason=reason)
    for quote in quotes:
        message.prices.add(symbol=quote.symbol, price_e4=price_e4(quote.price), ts_ns=quote.ts_ns)
    return bytes(message.SerializeToString())


async def protobuf_price_frames(
    hub: PriceHub, client: PriceClient, last_event_id: str | None
) -> AsyncIterator[bytes]:
    """The frames of one binary price stream: the same script as the SSE one."""
    event_id = first_id(last_event_id)
    if last_event_id is not None:
        yield frame(prices_pb2.Frame.RESYNC, event_id, (), resync_reason(last_event_id))
        event_id += 1
    snapshot = hub.snapshot(client.symbols)
    client.reset()
    yield frame(prices_pb2.Frame.SNAPSHOT, event_id, snapshot)
    while not client.closed:
        batch = await client.next_batch()
        if batch:  # an empty batch is the SSE heartbeat; WebSocket pings are the server's
            event_id += 1
            yield frame(prices_pb2.Frame.PRICES, event_id, batch)
