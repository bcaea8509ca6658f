"""The SSE price stream over real HTTP, fed through real Kafka (a per-test md.conflated topic)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser, serve
from tests.integration.api.test_stream_support import (
    T0_NS,
    PriceProducer,
    RawSse,
    conflated,
    prices_of,
    seed_prices,
)

pytestmark = pytest.mark.integration

NS_PER_S = 1_000_000_000
INTERVAL_MS = 250


@pytest.fixture
def stream_settings(api_settings: Settings, new_topic: Callable[[int], str]) -> Settings:
    """The API reads a fresh conflated topic; short heartbeats; two streams per user."""
    return api_settings.model_copy(
        update={
            "topic_conflated": new_topic(1),
            "stream_heartbeat_s": 1.0,
            "stream_client_interval_ms": INTERVAL_MS,
            "stream_connections_per_user_max": 2,
            "stream_symbols_per_client_max": 3,
        }
    )


@pytest.fixture
def stream_url(stream_settings: Settings, db_dsn: str) -> Iterator[str]:
    """The API, started after ACME has a last price in the database."""
    asyncio.run(seed_prices(db_dsn, {"ACME": ("1500.0500", T0_NS)}))
    yield from serve(stream_settings)


@pytest.fixture
def producer(stream_settings: Settings) -> PriceProducer:
    return PriceProducer(stream_settings, stream_settings.topic_conflated)


async def open_prices(url: str, token: str, symbols: str, **headers: str) -> RawSse:
    return await RawSse.open(
        url,
        f"/v1/stream/prices?symbols={symbols}",
        {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **headers},
    )


async def test_the_stream_starts_with_a_snapshot_then_sends_only_newer_prices(
    stream_url: str, make_user: MakeUser, producer: PriceProducer
) -> None:
    made = await make_user()
    sse = await open_prices(stream_url, made.token, "ACME,ALPHA")
    assert sse.status == 200
    assert sse.headers["content-type"].startswith("text/event-stream")

    first = await sse.next_event()
    assert first.event == "snapshot"
    assert first.json() == {
        "prices": [{"symbol": "ACME", "price": "1500.0500", "ts": "2026-09-21T14:13:20Z"}]
    }

    producer.send(
        [
            conflated("ACME", "1400.00", T0_NS - NS_PER_S),  # older than the snapshot: dropped
            conflated("ALPHA", "640.10", T0_NS + NS_PER_S),
            conflated("ACME", "1501.00", T0_NS + 2 * NS_PER_S),
        ]
    )
    events = [await sse.next_event() for _ in range(2)]
    assert sorted(prices_of(events)) == [("ACME", "1501.00"), ("ALPHA", "640.10")]
    ids = [int(e.id or 0) for e in [first, *events]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    sse.close()


async def test_a_symbol_gets_at_most_one_update_per_interval_and_the_last_one_arrives(
    stream_url: str, make_user: MakeUser, producer: PriceProducer
) -> None:
    made = await make_user()
    sse = await open_prices(stream_url, made.token, "ACME")
    assert (await sse.next_event()).event == "snapshot"

    # 100 updates 10 ms apart: 25 times faster than the client may be sent them.
    sent_at = time.monotonic()
    for n in range(1, 101):
        producer.send([conflated("ACME", f"{1500 + n}.00", T0_NS + n * NS_PER_S)], flush=False)
        await asyncio.sleep(0.01)
    producer.send([])
    received: list[tuple[float, str]] = []
    while not received or received[-1][1] != "1600.00":
        event = await sse.next_event()
        received.append((time.monotonic(), event.json()["price"]))
    span_s = received[-1][0] - sent_at
    # n updates at least INTERVAL_MS apart need (n - 1) intervals; one more for clock slack.
    assert len(received) <= span_s * 1000 / INTERVAL_MS + 2, (len(received), span_s)
    prices = [Decimal(p) for _, p in received]
    assert prices == sorted(prices)  # only ever newer
    sse.close()


async def test_a_resumed_stream_gets_a_resync_and_a_fresh_snapshot(
    stream_url: str, make_user: MakeUser
) -> None:
    made = await make_user()
    sse = await open_prices(stream_url, made.token, "ACME", **{"Last-Event-ID": "41"})
    resync = await sse.next_event()
    snapshot = await sse.next_event()
    assert (resync.event, resync.id) == ("resync", "42")
    assert "41" in resync.json()["reason"]
    assert (snapshot.event, snapshot.id) == ("snapshot", "43")
    assert snapshot.json()["prices"][0]["symbol"] == "ACME"
    sse.close()


async def test_an_idle_stream_gets_heartbeat_comments(stream_url: str, make_user: MakeUser) -> None:
    made = await make_user()
    sse = await open_prices(stream_url, made.token, "ALPHA")
    assert (await sse.next()).event == "snapshot"
    heartbeat = await sse.next(timeout_s=10)
    assert heartbeat.comment is not None and heartbeat.event is None
    sse.close()


async def test_limits_and_unknown_symbols_are_refused_with_a_reason(
    stream_url: str, make_user: MakeUser
) -> None:
    made = await make_user()
    too_many = await open_prices(stream_url, made.token, "ACME,ALPHA,APEXB,ATLAS")
    unknown = await open_prices(stream_url, made.token, "ACME,NOSUCH")
    assert (too_many.status, unknown.status) == (422, 404)
    assert "too_many_symbols" in too_many.body and "NOSUCH" in unknown.body

    open_streams = [await open_prices(stream_url, made.token, "ACME") for _ in range(2)]
    assert [s.status for s in open_streams] == [200, 200]
    refused = await open_prices(stream_url, made.token, "ACME")
    assert refused.status == 429 and "at most 2" in refused.body
    for sse in open_streams:
        sse.close()
    other = await make_user()
    assert (await open_prices(stream_url, other.token, "ACME")).status == 200


async def test_a_closed_stream_frees_its_place_for_the_same_user(
    stream_url: str, make_user: MakeUser
) -> None:
    made = await make_user()
    streams = [await open_prices(stream_url, made.token, "ACME") for _ in range(2)]
    for sse in streams:
        assert (await sse.next_event()).event == "snapshot"
        sse.close()
    # The server notices each disconnect by itself (nothing is sent to these clients).
    again = await open_prices(stream_url, made.token, "ACME")
    for _ in range(100):
        if again.status == 200:
            break
        await asyncio.sleep(0.1)
        again = await open_prices(stream_url, made.token, "ACME")
    assert again.status == 200, again.body
    again.close()
