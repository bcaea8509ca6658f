"""The binary price stream (protobuf frames over a WebSocket) beside the JSON SSE stream.

Same prices, same script (snapshot, updates, resync on resume); the bytes per update of each
are measured on the same flow and their ratio printed (bench/sse.py reports it too).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from api.feeds.proto import prices_pb2
from core.instruments import DEFAULT_INSTRUMENTS
from core.settings import Settings
from tests.integration.api.conftest import MakeUser, serve
from tests.integration.api.test_stream_support import (
    T0_NS,
    PriceProducer,
    RawSse,
    conflated,
    seed_prices,
)

pytestmark = pytest.mark.integration

SYMBOLS = [i.symbol for i in DEFAULT_INSTRUMENTS[:20]]
ROUNDS = 5
# The seed asks protobuf to save ~60 % of the bandwidth.
RATIO_MAX = 0.4


@pytest.fixture
def stream_settings(api_settings: Settings, new_topic: Callable[[int], str]) -> Settings:
    return api_settings.model_copy(update={"topic_conflated": new_topic(1)})


@pytest.fixture
def stream_url(stream_settings: Settings, db_dsn: str) -> Iterator[str]:
    asyncio.run(seed_prices(db_dsn, {}))
    yield from serve(stream_settings)


def ws_url(http_url: str, token: str, symbols: str, **extra: str) -> str:
    query = "&".join(
        f"{k}={v}" for k, v in {"symbols": symbols, "access_token": token, **extra}.items()
    )
    return http_url.replace("http://", "ws://") + f"/v1/stream/prices/ws?{query}"


async def test_protobuf_frames_carry_the_same_prices_in_fewer_bytes(
    stream_url: str, stream_settings: Settings, make_user: MakeUser
) -> None:
    made = await make_user()
    symbols = ",".join(SYMBOLS)
    sse = await RawSse.open(
        stream_url,
        f"/v1/stream/prices?symbols={symbols}",
        {"Authorization": f"Bearer {made.token}"},
    )
    async with connect(ws_url(stream_url, made.token, symbols)) as ws:
        snapshot = prices_pb2.Frame.FromString(await ws.recv(decode=False))
        assert snapshot.kind == prices_pb2.Frame.SNAPSHOT and snapshot.id == 1
        assert (await sse.next_event()).event == "snapshot"
        start_bytes = sse.bytes_read

        producer = PriceProducer(stream_settings, stream_settings.topic_conflated)
        expected: set[tuple[str, str]] = set()
        for r in range(1, ROUNDS + 1):
            batch = [
                conflated(s, f"{1000 + 10 * i + r}.05", T0_NS + r * 10**9)
                for i, s in enumerate(SYMBOLS)
            ]
            expected |= {(p.symbol, str(p.price)) for p in batch}
            producer.send(batch)
            await asyncio.sleep(stream_settings.stream_client_interval_ms / 1000 * 1.5)

        ws_seen: set[tuple[str, str]] = set()
        ws_bytes = 0
        last_id = 1
        while len(ws_seen) < len(expected):
            data = await asyncio.wait_for(ws.recv(decode=False), 20)
            ws_bytes += len(data) + 2  # plus the 2-byte WebSocket header of a short frame
            frame = prices_pb2.Frame.FromString(data)
            assert frame.kind == prices_pb2.Frame.PRICES and frame.id > last_id
            last_id = frame.id
            ws_seen |= {(p.symbol, str(Decimal(p.price_e4) / 10_000)) for p in frame.prices}
        sse_seen: set[tuple[str, str]] = set()
        while len(sse_seen) < len(expected):
            event = await sse.next_event()
            sse_seen.add((event.json()["symbol"], event.json()["price"]))
        sse_bytes = sse.bytes_read - start_bytes
    sse.close()
    as_decimal = {(s, Decimal(p)) for s, p in expected}
    assert {(s, Decimal(p)) for s, p in ws_seen} == as_decimal
    assert {(s, Decimal(p)) for s, p in sse_seen} == as_decimal
    ratio = ws_bytes / sse_bytes
    updates = len(expected)
    sys.stdout.write(
        f"bytes per update: protobuf/WebSocket {ws_bytes / updates:.1f},"
        f" JSON SSE {sse_bytes / updates:.1f}, ratio {ratio:.2f}\n"
    )
    assert ratio <= RATIO_MAX


async def test_binary_stream_resumes_with_resync_and_refuses_bad_requests(
    stream_url: str, make_user: MakeUser
) -> None:
    made = await make_user()
    async with connect(ws_url(stream_url, made.token, "ACME", last_event_id="9")) as ws:
        resync = prices_pb2.Frame.FromString(await ws.recv(decode=False))
        snapshot = prices_pb2.Frame.FromString(await ws.recv(decode=False))
    assert (resync.kind, resync.id) == (prices_pb2.Frame.RESYNC, 10) and "9" in resync.reason
    assert (snapshot.kind, snapshot.id) == (prices_pb2.Frame.SNAPSHOT, 11)
    refusals = [
        (ws_url(stream_url, "not-a-token", "ACME"), "token"),
        (ws_url(stream_url, made.token, "NOSUCH"), "NOSUCH"),
    ]
    for url, why in refusals:
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008 and why in closed.value.rcvd.reason
