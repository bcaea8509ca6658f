"""SSE price streams per API process: clients held, tick-to-client delay, memory per connection.

One run: a fresh database (bench_sse) and topics, a real conflate worker (md.ticks ->
md.conflated), one API process (``python -m api``), and the load:

- CLIENT_PROCS processes of lean raw-socket clients (bench/sse_client.py) open ``clients``
  price streams of ``symbols_per_client`` symbols each (RLIMIT_NOFILE raised to its hard limit);
- ticks are produced at ``ticks_per_s`` over ``symbols`` symbols, each stamped with the wall
  clock as its exchange time, so a client's delay is arrival minus that stamp (one machine,
  one clock);
- the ceiling is a bare confluent-kafka consumer of md.conflated in this process: the delay
  from tick to the conflated topic (Kafka, the conflate worker and its interval), i.e. the
  best any API could do. The API's p99 delay is reported as a ratio to the ceiling's p99;
- memory per connection = (API RSS with every client connected - RSS before any) / clients;
- bytes per update of the protobuf WebSocket stream against the JSON SSE stream, measured by
  one client of each on the same flow (the ratio is the saving asked for by the seed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from websockets.asyncio.client import connect

from api.feeds.proto import prices_pb2
from api.security.tokens import issue_access_token
from bench import cpu
from bench.exceptions import BenchError
from bench.orders_api import percentile
from bench.orders_setup import api_server_process, free_port, served_settings
from bench.report import HostInfo, Result, Row
from bench.streams_ticks import migrated_database, running_workers, stream_topics
from core.contracts import CONFLATED_PRICES, TICKS, Tick
from core.instruments import Instrument, instrument_universe
from core.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

BENCH_DATABASE = "bench_sse"
GOAL_CLIENTS = 10_000
GOAL_EXTRA_DELAY_MS = 100
GOAL_BYTES_PER_CONNECTION = 20 * 1024
READY_TIMEOUT_S = 600.0
PRODUCE_STEP_S = 0.01
KB = 1024
PROBE_OPEN_TIMEOUT_S = 30.0
PROBE_SETTLE_S = 2.0
PROBE_S = 8.0


@dataclass(frozen=True)
class SseLoad:
    """How many clients (in how many processes), symbols, ticks and seconds."""

    clients: int = GOAL_CLIENTS
    client_procs: int = 4
    symbols: int = 50
    symbols_per_client: int = 5
    ticks_per_s: int = 1_000
    seconds: float = 30.0
    warmup_s: float = 10.0
    # Connects per second over all client processes: holding 10,000 streams is the goal, not
    # opening them at once (each open goes through auth and validation, ~1 ms of API CPU).
    connects_per_s: int = 500
    # The API's stream_client_batch_ms (0, the default: each stream writes as updates come).
    client_batch_ms: int = 0

    def __post_init__(self) -> None:
        figures = (self.clients, self.client_procs, self.symbols, self.symbols_per_client)
        if min(*figures, self.connects_per_s) < 1:
            raise ValueError(f"every SSE load figure must be positive: {self}")


@dataclass
class Collected:
    """What the threads of one run gathered."""

    ticks: int = 0
    ceiling_delays: list[float] = field(default_factory=list)
    probe: tuple[int, int, int, int] = (0, 0, 0, 0)
    cpu: dict[str, float] = field(default_factory=dict)  # busy cores while recording


def raise_open_files() -> int:
    """Raise this process's (and its children's) open-file limit to the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KB
    raise BenchError(f"no VmRSS for pid {pid}")


def _create_user(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (email, password_hash) VALUES (%s, 'bench') RETURNING id",
            (f"sse-{uuid.uuid4().hex[:8]}@bench.local",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def produce_ticks(
    settings: Settings,
    topic: str,
    instruments: Sequence[Instrument],
    rate: int,
    stop: threading.Event,
) -> int:
    """Ticks at ``rate`` per second, exchange time = now, until ``stop``; returns how many."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1})
    rng = random.Random(7)
    steps = {i.symbol: int(i.reference_price / i.tick_size) for i in instruments}
    seqs = dict.fromkeys(steps, 0)
    sent = 0
    start = time.monotonic()
    while not stop.is_set():
        due = int((time.monotonic() - start) * rate)
        while sent < due:
            inst = instruments[sent % len(instruments)]
            steps[inst.symbol] = max(1, steps[inst.symbol] + rng.randint(-3, 3))
            seqs[inst.symbol] += 1
            tick = Tick(
                symbol=inst.symbol,
                price=Decimal(steps[inst.symbol]) * inst.tick_size,
                size=1,
                ts_event_ns=time.time_ns(),
                seq=seqs[inst.symbol],
            )
            producer.produce(topic, key=inst.symbol.encode(), value=TICKS.encode(tick))
            sent += 1
        producer.poll(0)
        time.sleep(PRODUCE_STEP_S)
    producer.flush(30)
    return sent


def consume_delays(
    settings: Settings, topic: str, recording: threading.Event, stop: threading.Event
) -> list[float]:
    """The ceiling: delay (ms) from tick to a bare consumer of md.conflated."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"}
    )
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, high)])
    delays: list[float] = []
    try:
        while not stop.is_set():
            for message in consumer.consume(1000, 0.1):
                if message.error() is None and recording.is_set():
                    record = CONFLATED_PRICES.decode(message.value())
                    delays.append((time.time_ns() - record.ts_event_ns) / 1e6)
    finally:
        consumer.close()
    return delays


async def bytes_probe(
    url: str, token: str, symbols: str, recording: threading.Event, stop: threading.Event
) -> tuple[int, int, int, int]:
    """(SSE bytes, SSE updates, WebSocket bytes, WebSocket updates) while recording."""
    host_port = url.removeprefix("http://")
    host, port = host_port.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET /v1/stream/prices?symbols={symbols} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    counts = [0, 0, 0, 0]

    async def read_sse() -> None:
        while True:
            data = await reader.read(65_536)
            if not data:
                return
            if recording.is_set():
                counts[0] += len(data)
                counts[1] += data.count(b"event: price")

    ws_url = f"ws://{host_port}/v1/stream/prices/ws?symbols={symbols}&access_token={token}"

    async def read_ws() -> None:
        async with connect(ws_url, max_size=None, open_timeout=PROBE_OPEN_TIMEOUT_S) as ws:
            async for data in ws:
                if recording.is_set() and isinstance(data, bytes):
                    counts[2] += len(data) + 2  # the header of a short server frame
                    counts[3] += len(prices_pb2.Frame.FromString(data).prices)

    tasks = [asyncio.create_task(read_sse()), asyncio.create_task(read_ws())]
    while not stop.is_set() and not all(t.done() for t in tasks):
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    # A failed reader leaves its counts at zero (no row); the run goes on.
    await asyncio.gather(*tasks, return_exceptions=True)
    writer.close()
    return counts[0], counts[1], counts[2], counts[3]


def probe_bytes(url: str, token: str, symbols: str) -> tuple[int, int, int, int]:
    """Run the bytes probe for PROBE_S seconds (after PROBE_SETTLE_S to connect)."""
    recording, stop = threading.Event(), threading.Event()
    threading.Timer(PROBE_SETTLE_S, recording.set).start()
    threading.Timer(PROBE_SETTLE_S + PROBE_S, stop.set).start()
    try:
        counts = asyncio.run(bytes_probe(url, token, symbols, recording, stop))
    except (OSError, TimeoutError) as exc:
        log.warning("the bytes probe failed (no protobuf/JSON row): %s", exc)
        return 0, 0, 0, 0
    log.info("bytes probe (SSE bytes, updates, WebSocket bytes, updates): %s", counts)
    return counts


def _start_clients(
    url: str, token: str, load: SseLoad, symbols: list[str], workdir: Path
) -> list[tuple[subprocess.Popen[str], IO[str]]]:
    procs: list[tuple[subprocess.Popen[str], IO[str]]] = []
    per_proc = -(-load.clients // load.client_procs)
    for index in range(load.client_procs):
        count = min(per_proc, load.clients - index * per_proc)
        if count <= 0:
            break
        err = (workdir / f"sse-client-{index}.log").open("w")
        argv = [url, token, str(count), ",".join(symbols), str(load.symbols_per_client)]
        argv += [str(index * per_proc), str(load.connects_per_s / load.client_procs)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sse_client", *argv],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        procs.append((proc, err))
    return procs


def _tell(procs: list[tuple[subprocess.Popen[str], IO[str]]], line: str) -> None:
    for proc, _ in procs:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()


def measure(settings: Settings, host: HostInfo, load: SseLoad) -> list[Row]:
    """Run the load once; rows: the Kafka ceiling, the API's delay, protobuf vs JSON bytes."""
    nofile = raise_open_files()
    instruments = instrument_universe(load.symbols)
    symbols = [i.symbol for i in instruments]
    workdir = settings.state_dir / "bench" / f"sse-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        migrated_database(settings, BENCH_DATABASE, instruments) as dsn,
        stream_topics(settings, ticks_partitions=3, reports_partitions=1) as made,
        running_workers(
            settings,
            count=1,
            modules=("streams.conflate",),
            database=BENCH_DATABASE,
            made=made,
            watch_topic=made.ticks,
        ),
    ):
        served = served_settings(settings, BENCH_DATABASE, pool_size_max=10).model_copy(
            update={
                "topic_conflated": made.conflated,
                "api_port": free_port(),
                "stream_connections_per_user_max": load.clients + 10,
                "stream_symbols_per_client_max": max(load.symbols, 1),
                "stream_client_batch_ms": load.client_batch_ms,
            }
        )
        token = issue_access_token(served, _create_user(dsn), two_factor=False)
        with api_server_process(served, workdir / "api.log") as api:
            url = f"http://{served.api_host}:{served.api_port}"
            return _run(
                settings,
                served,
                host,
                load,
                api,
                url,
                token,
                symbols,
                instruments,
                made.ticks,
                made.conflated,
                workdir,
                nofile,
            )
    raise BenchError("unreachable")


def _run(
    settings: Settings,
    served: Settings,
    host: HostInfo,
    load: SseLoad,
    api: subprocess.Popen[bytes],
    url: str,
    token: str,
    symbols: list[str],
    instruments: Sequence[Instrument],
    ticks_topic: str,
    conflated_topic: str,
    workdir: Path,
    nofile: int,
) -> list[Row]:
    stop, recording = threading.Event(), threading.Event()
    results = Collected()

    def ticks() -> None:
        results.ticks = produce_ticks(settings, ticks_topic, instruments, load.ticks_per_s, stop)

    def ceiling() -> None:
        results.ceiling_delays = consume_delays(settings, conflated_topic, recording, stop)

    threads = [threading.Thread(target=t) for t in (ticks, ceiling)]
    rss_before = rss_bytes(api.pid)
    procs = _start_clients(url, token, load, symbols, workdir)
    try:
        connected = failed = 0
        for proc, _ in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            if not line or line[0] != "ready":
                raise BenchError(f"an SSE client process did not start (see {workdir})")
            connected += int(line[1])
            failed += int(line[2])
        rss_connected = rss_bytes(api.pid)
        log.info(
            "%d streams open (%d refused); API RSS %.1f MB", connected, failed, rss_connected / 1e6
        )
        for thread in threads:
            thread.start()
        time.sleep(load.warmup_s)
        recording.set()
        _tell(procs, "go")
        groups = {"api": [api.pid], "clients": [proc.pid for proc, _ in procs]}
        cpu0 = cpu.sample([pid for pids in groups.values() for pid in pids])
        time.sleep(load.seconds)
        results.cpu = cpu.busy_cores(cpu0, cpu.sample(cpu0.processes), groups)
        _tell(procs, "stop")
        recording.clear()
        client_results = []
        for proc, _ in procs:
            assert proc.stdout is not None
            client_results.append(json.loads(proc.stdout.readline()))
        for proc, _ in procs:
            proc.wait(timeout=60)
        # Bytes per update on the same flow, once the load clients are gone.
        results.probe = probe_bytes(url, token, ",".join(symbols[:10]))
    finally:
        stop.set()
        for proc, err in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            err.close()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=60)
    return _rows(
        served,
        host,
        load,
        results,
        client_results,
        connected,
        failed,
        rss_before,
        rss_connected,
        nofile,
    )


def _rows(
    served: Settings,
    host: HostInfo,
    load: SseLoad,
    results: Collected,
    client_results: list[dict[str, Any]],
    connected: int,
    failed: int,
    rss_before: int,
    rss_connected: int,
    nofile: int,
) -> list[Row]:
    ceiling_delays = sorted(results.ceiling_delays)
    delays = sorted(float(d) for r in client_results for d in r["delays_ms"])
    if not ceiling_delays or not delays:
        raise BenchError("no prices reached the clients or the bare consumer")
    conditions = {
        "clients": load.clients,
        "client_procs": load.client_procs,
        "connects_per_s": load.connects_per_s,
        "symbols": load.symbols,
        "symbols_per_client": load.symbols_per_client,
        "ticks_per_s": load.ticks_per_s,
        "seconds": load.seconds,
        "conflation_ms": served.conflation_ms,
        "client_interval_ms": served.stream_client_interval_ms,
        "client_batch_ms": served.stream_client_batch_ms,
        "rlimit_nofile": nofile,
    }
    ceiling = Result.now(
        "kafka.conflated_delay_p99",
        percentile(ceiling_delays, 0.99),
        "ms",
        conditions,
        host,
        {"p50_ms": percentile(ceiling_delays, 0.5), "updates": len(ceiling_delays)},
    )
    per_conn = (rss_connected - rss_before) / max(connected, 1)
    result = Result.now(
        "api.sse_delay_p99",
        percentile(delays, 0.99),
        "ms",
        conditions,
        host,
        {
            "p50_ms": percentile(delays, 0.5),
            "max_ms": delays[-1],
            "clients_connected": connected,
            "clients_refused": failed,
            "clients_alive_at_end": sum(int(r["alive"]) for r in client_results),
            "events": sum(int(r["events"]) for r in client_results),
            "bytes_per_connection": round(per_conn),
            "rss_before_mb": round(rss_before / 1e6, 1),
            "rss_connected_mb": round(rss_connected / 1e6, 1),
            **results.cpu,
        },
    )
    rows = [Row(ceiling), Row(result, ceiling)]
    sse_bytes, sse_updates, ws_bytes, ws_updates = results.probe
    if sse_updates and ws_updates:
        json_per = Result.now(
            "api.sse_json_bytes_per_update",
            sse_bytes / sse_updates,
            "bytes",
            conditions,
            host,
            {"updates": sse_updates},
        )
        proto_per = Result.now(
            "api.ws_protobuf_bytes_per_update",
            ws_bytes / ws_updates,
            "bytes",
            conditions,
            host,
            {"updates": ws_updates},
        )
        rows += [Row(json_per), Row(proto_per, json_per)]
    return rows


def goals(rows: Sequence[Row], conflation_ms: int) -> list[str]:
    """The issue's goals against the rows."""
    lines = []
    for row in rows:
        r = row.result
        if r.name == "api.sse_delay_p99":
            clients = r.details.get("clients_connected", 0)
            per_conn = r.details.get("bytes_per_connection", 0)
            goal_ms = conflation_ms + GOAL_EXTRA_DELAY_MS
            lines.append(
                f"SSE clients held: {clients:,}, goal {GOAL_CLIENTS:,}"
                f" {'met' if clients >= GOAL_CLIENTS else 'NOT met'}"
            )
            lines.append(
                f"p99 tick->client {r.value:.0f} ms, goal {goal_ms} ms"
                f" {'met' if r.value <= goal_ms else 'NOT met'} (ceiling ratio {row.ratio:.2f})"
            )
            lines.append(
                f"memory per connection {per_conn / KB:.1f} KB, goal 20 KB"
                f" {'met' if per_conn <= GOAL_BYTES_PER_CONNECTION else 'NOT met'}"
            )
        if r.name == "api.ws_protobuf_bytes_per_update" and row.ratio is not None:
            lines.append(
                f"protobuf/WebSocket {r.value:.1f} bytes per update = {row.ratio:.2f} of JSON SSE"
                f" ({1 - row.ratio:.0%} saved; the seed asks ~60 %)"
            )
    return lines
