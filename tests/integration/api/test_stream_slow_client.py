"""A client that reads nothing for 30 s while 1,000 updates/s flow: flat server memory, then
the latest prices. The API runs as its own process so its memory can be measured alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from psycopg.conninfo import conninfo_to_dict

from api.security.tokens import issue_access_token
from core.instruments import DEFAULT_INSTRUMENTS
from core.settings import PROJECT_ROOT, Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.test_stream_support import (
    T0_NS,
    PriceProducer,
    RawSse,
    conflated,
    seed_prices,
)

pytestmark = pytest.mark.integration

UPDATES_PER_S = 1_000
SILENT_S = 30
WARMUP_S = 5
# Growth allowed while the client is silent. Buffering every update for it would need ~30,000
# Python objects (well over 10 MB); holding the latest per symbol needs a few kilobytes.
RSS_GROWTH_MAX_KB = 5_000
START_TIMEOUT_S = 30.0


def rss_kb(pid: int) -> int:
    """The resident set size of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def api_process(
    api_settings: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Settings]]:
    """``python -m api`` on a fresh conflated topic; stopped at the end."""
    settings = api_settings.model_copy(update={"topic_conflated": new_topic(1)})
    asyncio.run(seed_prices(db_dsn, {}))
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "BROKER_MODE": "test",
        "BROKER_KAFKA_PORT": str(settings.kafka_port),
        "BROKER_KAFKA_NODES": str(settings.kafka_nodes),
        "BROKER_PG_PORT": str(settings.pg_port),
        "BROKER_PG_HA": str(settings.pg_ha).lower(),
        "BROKER_PG_DATABASE": str(conninfo_to_dict(db_dsn)["dbname"]),
        "BROKER_API_PORT": str(settings.api_port),
        "BROKER_TOPIC_CONFLATED": settings.topic_conflated,
        "BROKER_JWT_SECRET": settings.jwt_secret.get_secret_value(),
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "api"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{settings.api_port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                tmp_path / "api.log"
            ).read_text()
            time.sleep(0.2)
        yield process, settings
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def flow(producer: PriceProducer, symbols: list[str], seconds: int, stop: threading.Event) -> None:
    """UPDATES_PER_S updates spread over ``symbols`` for ``seconds``; prices end at n/100."""
    step = 0.01
    per_step = int(UPDATES_PER_S * step)
    n = 0
    start = time.monotonic()
    while n < UPDATES_PER_S * seconds and not stop.is_set():
        batch = []
        for _ in range(per_step):
            n += 1
            symbol = symbols[n % len(symbols)]
            batch.append(conflated(symbol, f"{100 + n / 100:.2f}", T0_NS + n * 1_000_000))
        producer.send(batch, flush=False)
        time.sleep(max(0.0, start + n / UPDATES_PER_S - time.monotonic()))
    producer.send([])


async def test_a_silent_client_keeps_server_memory_flat_then_gets_the_latest_prices(
    api_process: tuple[subprocess.Popen[bytes], Settings], make_user: MakeUser
) -> None:
    process, settings = api_process
    made = await make_user()
    token = issue_access_token(settings, made.id, two_factor=True)
    symbols = [i.symbol for i in DEFAULT_INSTRUMENTS]
    sse = await RawSse.open(
        f"http://127.0.0.1:{settings.api_port}",
        f"/v1/stream/prices?symbols={','.join(symbols)}",
        {"Authorization": f"Bearer {token}"},
        rcvbuf=4096,
    )
    assert sse.status == 200
    assert (await sse.next_event()).event == "snapshot"

    producer = PriceProducer(settings, settings.topic_conflated)
    stop = threading.Event()
    sender = asyncio.create_task(asyncio.to_thread(flow, producer, symbols, SILENT_S, stop))
    try:
        await asyncio.sleep(WARMUP_S)
        warm_kb = rss_kb(process.pid)
        await asyncio.sleep(SILENT_S - WARMUP_S)
        end_kb = rss_kb(process.pid)
        await sender
    finally:
        stop.set()
    sys.stdout.write(
        f"server RSS: {warm_kb} KiB after {WARMUP_S} s, {end_kb} KiB after {SILENT_S} s\n"
    )
    assert end_kb - warm_kb < RSS_GROWTH_MAX_KB

    # The last update of each symbol is n = total - k for the symbol at index (total - k) % 50.
    total = UPDATES_PER_S * SILENT_S
    latest = {symbols[n % len(symbols)]: f"{100 + n / 100:.2f}" for n in range(1, total + 1)}
    seen: dict[str, str] = {}
    while any(seen.get(s) != p for s, p in latest.items()):
        event = await sse.next_event(timeout_s=20)
        if event.event == "price":
            data = event.json()
            seen[data["symbol"]] = data["price"]
    sse.close()
