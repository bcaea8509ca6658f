"""A running stream worker reports per-agent metrics and its liveness over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
from confluent_kafka import Producer

from core.contracts import TICKS, Tick
from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings
from tests.integration.worker_support import running_worker, worker_topics

pytestmark = pytest.mark.integration

WAIT_S = 60.0


def _metric(body: str, name: str, agent: str) -> float:
    prefix = f'{name}{{agent="{agent}"}} '
    for line in body.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


async def test_a_worker_reads_lz4_ticks_counts_them_in_metrics_and_livez_is_ok(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(5))
    now_ns = time.time_ns()
    ticks = [
        Tick(symbol="ACME", price=Decimal("1520.40"), size=10, ts_event_ns=now_ns + i, seq=i)
        for i in range(20)
    ]
    with (
        worker_topics(running_stack, new_topic) as made,
        running_worker(running_stack, db_dsn, made, tmp_path) as worker,
    ):
        # Compressed as the exchange simulator's feed is (lz4): the worker must read it.
        producer = Producer(
            {"bootstrap.servers": running_stack.kafka_bootstrap, "compression.type": "lz4"}
        )
        for key, value in [(t.kafka_key(), TICKS.encode(t)) for t in ticks] + [
            (b"ACME", b"not json")
        ]:
            producer.produce(made.ticks, key=key, value=value)
        assert producer.flush(30) == 0
        url = f"http://127.0.0.1:{worker.web_port}"
        deadline = time.monotonic() + WAIT_S
        body = ""
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                try:
                    body = (await client.get(f"{url}/metrics")).text
                except httpx.TransportError:
                    body = ""
                if _metric(body, "stream_events_total", "candles") >= len(ticks) and _metric(
                    body, "stream_dead_letters_total", "candles"
                ):
                    break
                await asyncio.sleep(0.5)
            livez = await client.get(f"{url}/livez")

        assert _metric(body, "stream_events_total", "candles") >= len(ticks), worker.log_tail()
        assert _metric(body, "stream_dead_letters_total", "candles") >= 1
        assert livez.status_code == 200
        assert livez.json()["status"] == "ok"
