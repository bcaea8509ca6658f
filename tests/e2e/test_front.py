"""The public front: TLS 1.3 only, HSTS, redirects, rotation of API processes, live streams."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from decimal import Decimal

import httpx
import pytest
from confluent_kafka import Producer
from websockets.asyncio.client import connect

from api.feeds.proto import prices_pb2
from core.settings import Settings
from core.tls import client_ssl_context
from infra import front, supervise
from tests.e2e.support import (
    front_client,
    produce_tick,
    quiet_instrument,
    signed_up_token,
)

pytestmark = pytest.mark.e2e

TLS_HANDSHAKE_TIMEOUT_S = 10
ROTATION_BOUND_S = 2.0
POLL_S = 0.02
# Slack over the conflation interval for an update to cross Kafka, the API and the front.
STREAM_SLACK_MS = 100
LATENCY_SAMPLES = 12
# An update later than this is stuck, not slow. How slow updates are is measured by the SSE
# benchmark (bench/sse.py), not here: on the 2-core host running the whole system, one update
# in a dozen was seen 0.5-1.4 s late while the others took 70-250 ms.
STREAM_STUCK_MS = 5_000


def _s_client(settings: Settings, version_flag: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"{settings.front_host}:{settings.front_https_port}",
            version_flag,
            "-CAfile",
            str(settings.ca_cert_path),
            "-verify_return_error",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=TLS_HANDSHAKE_TIMEOUT_S,
        check=False,
    )


def test_front_negotiates_tls_1_3_with_a_verified_certificate(topology: Settings) -> None:
    result = _s_client(topology, "-tls1_3")

    assert result.returncode == 0, result.stderr
    assert "New, TLSv1.3" in result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout


def test_front_refuses_tls_1_2(topology: Settings) -> None:
    result = _s_client(topology, "-tls1_2")

    assert result.returncode != 0
    assert "alert protocol version" in result.stderr


def test_plain_http_is_redirected_to_the_same_path_over_https(topology: Settings) -> None:
    url = f"http://{topology.front_host}:{topology.front_http_port}/v1/market/symbols?x=1"

    response = httpx.get(url, follow_redirects=False)

    assert response.status_code == httpx.codes.MOVED_PERMANENTLY
    assert response.headers["location"] == f"{topology.front_url}/v1/market/symbols?x=1"


def test_every_answer_through_the_front_carries_hsts(topology: Settings) -> None:
    with front_client(topology) as http:
        answers = [http.get("/healthz"), http.get("/no/such/route"), http.get("/app/")]

    for answer in answers:
        assert answer.headers["strict-transport-security"].startswith("max-age=")
    # The web page is served through the front too.
    assert answers[2].status_code == 200 and "<html" in answers[2].text.lower()


def test_a_hung_api_process_leaves_rotation_within_2_s_and_returns(topology: Settings) -> None:
    pid = supervise.pid_of(topology, "api-1")
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        while front.server_states(topology)["api1"].startswith("UP"):
            assert time.monotonic() - stopped_at < ROTATION_BOUND_S + 1, "still in rotation"
            time.sleep(POLL_S)
        out_after_s = time.monotonic() - stopped_at
        # Meanwhile every request is served by the other process.
        with front_client(topology) as http:
            codes = {http.get("/healthz").status_code for _ in range(20)}
    finally:
        os.kill(pid, signal.SIGCONT)

    assert out_after_s <= ROTATION_BOUND_S
    assert codes == {200}
    # Generous: the claim is the way out; the way back only must happen.
    deadline = time.monotonic() + 30
    while front.server_states(topology)["api1"] != "UP":
        assert time.monotonic() < deadline, "api1 did not come back into rotation"
        time.sleep(POLL_S * 10)


def test_a_price_update_reaches_an_sse_client_through_the_front_within_the_interval(
    settled_topology: Settings,
) -> None:
    topology = settled_topology
    instrument = quiet_instrument(topology)
    with front_client(topology) as http:
        token = signed_up_token(http)
    seen: dict[Decimal, float] = {}
    ready = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with (
            front_client(topology) as http,
            http.stream(
                "GET",
                f"/v1/stream/prices?symbols={instrument.symbol}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=httpx.Timeout(10, read=60),
            ) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("event: snapshot"):
                    ready.set()
                if line.startswith("data: ") and '"price"' in line:
                    data = json.loads(line[6:])
                    seen.setdefault(Decimal(str(data["price"])), time.monotonic())
                if done.is_set():
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(30), "no snapshot through the front"
    producer = Producer({"bootstrap.servers": topology.kafka_bootstrap, "linger.ms": 0})
    interval_s = (topology.conflation_ms + topology.stream_client_interval_ms) / 1000
    sent: dict[Decimal, float] = {}
    price = instrument.reference_price
    for _ in range(LATENCY_SAMPLES):
        price += instrument.tick_size
        sent[price] = time.monotonic()
        produce_tick(producer, topology, instrument.symbol, price)
        time.sleep(interval_s * 2)
    time.sleep(1)
    done.set()

    delays_ms = [(seen[k] - t) * 1000 for k, t in sent.items() if k in seen]
    assert len(delays_ms) == LATENCY_SAMPLES, f"updates lost: sent {sent}, seen {seen}"
    # Within the interval, as a rule: an update held back until the next tick (a second
    # later) would put the median over it.
    bound_ms = topology.conflation_ms + STREAM_SLACK_MS
    assert statistics.median(delays_ms) <= bound_ms, delays_ms
    assert max(delays_ms) <= STREAM_STUCK_MS, delays_ms


async def test_the_websocket_price_stream_upgrades_through_the_front(topology: Settings) -> None:
    instrument = quiet_instrument(topology)
    with front_client(topology) as http:
        token = signed_up_token(http)
    url = (
        f"wss://{topology.front_public_host}:{topology.front_https_port}/v1/stream/prices/ws"
        f"?symbols={instrument.symbol}&access_token={token}"
    )
    producer = Producer({"bootstrap.servers": topology.kafka_bootstrap, "linger.ms": 0})
    price = instrument.reference_price + 50 * instrument.tick_size

    async with connect(url, ssl=client_ssl_context(topology)) as ws:
        snapshot = prices_pb2.Frame.FromString(await asyncio.wait_for(ws.recv(decode=False), 30))
        produce_tick(producer, topology, instrument.symbol, price)
        update = prices_pb2.Frame.FromString(await asyncio.wait_for(ws.recv(decode=False), 30))

    assert snapshot.kind == prices_pb2.Frame.SNAPSHOT
    assert update.kind == prices_pb2.Frame.PRICES
    assert [p.symbol for p in update.prices] == [instrument.symbol]
