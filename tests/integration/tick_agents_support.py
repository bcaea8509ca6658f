"""Helpers for the candles and conflate tests: a generated tick stream, its Polars answer, real
worker processes, topic reading."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from psycopg.conninfo import conninfo_to_dict

from core.contracts import DEAD_LETTERS, TICKS, DeadLetter, Tick
from core.instruments import DEFAULT_INSTRUMENTS
from core.settings import PROJECT_ROOT, Settings
from infra import topics
from streams.__main__ import worker_argv
from streams.batch_consumer import group_id as batch_group_id
from tests.conftest import free_port

NS_PER_S = 1_000_000_000
# Width as PostgreSQL spells it -> seconds.
WIDTHS_S: dict[str, int] = {
    "1 second": 1,
    "1 minute": 60,
    "5 minutes": 300,
    "15 minutes": 900,
    "1 hour": 3600,
    "1 day": 86_400,
}
SYMBOLS = tuple(i.symbol for i in DEFAULT_INSTRUMENTS[:6])
# 2024-09-16 23:10 UTC: the stream crosses midnight, so 1d has two buckets.
T0_NS = 1_726_528_200 * NS_PER_S
WAIT_S = 120.0
STOP_WAIT_S = 30.0


def ticks_group_of(app_id: str, ticks_topic: str) -> str:
    """The consumer group in which workers of ``app_id`` share the ticks topic."""
    return batch_group_id(app_id, ticks_topic)


@dataclass
class TickStream:
    """Messages to produce, in order, and what a correct consumer must make of them."""

    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    counted: list[Tick] = field(default_factory=list)  # the ticks that must be in the candles
    late: list[Tick] = field(default_factory=list)  # beyond the grace period: DLQ
    poison: int = 0  # malformed, wrong schema, unknown symbol: DLQ
    poison_unknown: int = 0  # of which valid ticks of an unknown symbol


def generate_stream(
    n: int, seed: int, *, poison: int = 0, late_beyond_grace: int = 0, grace_ms: int = 2_000
) -> TickStream:
    """Ticks over about n * 300 ms of exchange time, some slightly late, some far too late."""
    rng = random.Random(seed)
    out = TickStream()
    seqs = dict.fromkeys(SYMBOLS, 0)
    prices = {s: rng.randint(5_000, 500_000) for s in SYMBOLS}  # in 1e-2
    clock = T0_NS
    poison_at = set(rng.sample(range(n), poison))
    late_at = set(rng.sample(range(n // 4, n), late_beyond_grace))
    previous_symbol = SYMBOLS[0]
    for i in range(n):
        if i in poison_at:
            key, value = poison_message(rng, clock)
            out.messages.append((key, value))
            out.poison += 1
            out.poison_unknown += key == b"NOSUCH"
        # Mostly small steps, sometimes a quiet minute: many 1 s buckets, a few empty ones.
        clock += (
            int(rng.expovariate(1 / 150) * 1_000_000) if rng.random() > 0.002 else 90 * NS_PER_S
        )
        symbol = rng.choice(SYMBOLS)
        ts = clock
        if rng.random() < 0.05:
            ts = clock - rng.randrange(0, 500) * 1_000_000  # late, well within the grace period
        if i in late_at:
            # Same symbol as the last tick, so its partition's stream time is at the clock.
            symbol, ts = previous_symbol, clock - 10 * 60 * NS_PER_S - grace_ms * 1_000_000
        prices[symbol] = max(100, prices[symbol] + rng.randint(-20, 20))
        seqs[symbol] += 1
        tick = Tick(
            symbol=symbol,
            price=Decimal(prices[symbol]) / 100,
            size=rng.randint(1, 500),
            ts_event_ns=ts,
            seq=seqs[symbol],
        )
        (out.late if i in late_at else out.counted).append(tick)
        out.messages.append((symbol.encode(), TICKS.encode(tick)))
        if i not in late_at:
            previous_symbol = symbol
    return out


def poison_message(rng: random.Random, clock: int) -> tuple[bytes | None, bytes]:
    """A message that is not a valid tick of a known symbol."""
    kind = rng.randrange(4)
    if kind == 0:
        return None, bytes(rng.randrange(256) for _ in range(20))
    if kind == 1:
        return b"ACME", b'{"type":"tick.v1","symbol":"ACME","price":1.5,"size":1}'
    if kind == 2:
        return b"ACME", b'{"type":"conflated_price.v1","symbol":"ACME"}'
    unknown = Tick(symbol="NOSUCH", price=Decimal("1.00"), size=1, ts_event_ns=clock, seq=1)
    return b"NOSUCH", TICKS.encode(unknown)


def ticks_frame(ticks: list[Tick]) -> pl.DataFrame:
    """The ticks as a Polars frame (build it once when computing several widths)."""
    return pl.DataFrame(
        {
            "symbol": [t.symbol for t in ticks],
            "ts": [t.ts_event_ns for t in ticks],
            "seq": [t.seq for t in ticks],
            "price_e4": [int(t.price * 10_000) for t in ticks],
            "size": [t.size for t in ticks],
        },
        schema={
            "symbol": pl.String,
            "ts": pl.Int64,
            "seq": pl.Int64,
            "price_e4": pl.Int64,
            "size": pl.Int64,
        },
    )


def expected_candles(ticks: list[Tick] | pl.DataFrame, width_s: int) -> pl.DataFrame:
    """The candles of ``ticks`` at ``width_s``, computed by Polars from the ticks themselves."""
    width_ns = width_s * NS_PER_S
    frame = ticks if isinstance(ticks, pl.DataFrame) else ticks_frame(ticks)
    return ohlcv(frame.with_columns(bucket_s=(pl.col("ts") // width_ns) * width_s))


def ohlcv(frame: pl.DataFrame) -> pl.DataFrame:
    """Open, high, low, close, volume and trade count per (symbol, bucket_s) of a ticks frame."""
    return (
        frame.sort("symbol", "ts", "seq")
        .group_by("symbol", "bucket_s", maintain_order=True)
        .agg(
            open=pl.col("price_e4").first(),
            high=pl.col("price_e4").max(),
            low=pl.col("price_e4").min(),
            close=pl.col("price_e4").last(),
            volume=pl.col("size").sum(),
            trade_count=pl.len().cast(pl.Int64),
        )
        .sort("symbol", "bucket_s")
    )


def database_candles(dsn: str, width: str) -> pl.DataFrame:
    """Every symbol's candles at ``width`` as candles_between answers."""
    rows: list[tuple[Any, ...]] = []
    with psycopg.connect(dsn) as conn:
        for symbol in SYMBOLS:
            rows += conn.execute(
                "SELECT %s, extract(epoch FROM bucket_start)::bigint, (open * 10000)::bigint,"
                " (high * 10000)::bigint, (low * 10000)::bigint, (close * 10000)::bigint,"
                " volume, trade_count"
                " FROM candles_between(%s, %s::interval, '2000-01-01', '2100-01-01')",
                (symbol, symbol, width),
            ).fetchall()
    columns = ["symbol", "bucket_s", "open", "high", "low", "close", "volume", "trade_count"]
    schema = {c: pl.Int64 for c in columns} | {"symbol": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("symbol", "bucket_s")


def database_candles_at_once(dsn: str, width: str) -> pl.DataFrame:
    """Every symbol's candles at ``width`` from one call of the many-symbol candles_between, in
    the order it returns them."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT symbol, extract(epoch FROM bucket_start)::bigint, (open * 10000)::bigint,"
            " (high * 10000)::bigint, (low * 10000)::bigint, (close * 10000)::bigint,"
            " volume, trade_count"
            " FROM candles_between(%s::text[], %s::interval, '2000-01-01', '2100-01-01')",
            (list(SYMBOLS), width),
        ).fetchall()
    columns = ["symbol", "bucket_s", "open", "high", "low", "close", "volume", "trade_count"]
    schema = {c: pl.Int64 for c in columns} | {"symbol": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def seed_symbols(dsn: str) -> None:
    """Make the generated stream's symbols instruments (the test database starts empty)."""
    with psycopg.connect(dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO instruments (symbol) VALUES (%s) ON CONFLICT DO NOTHING",
            [(s,) for s in SYMBOLS],
        )


def produce(settings: Settings, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    """Send ``messages`` in order (keyed by symbol) and wait for every acknowledgement."""
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5, "acks": "all"}
    )
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(30) == 0


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Per partition, the offset after the last message."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(_tp(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def _tp(topic: str, partition: int) -> Any:
    from confluent_kafka import TopicPartition

    return TopicPartition(topic, partition)


def applied_offsets(dsn: str, topic: str) -> dict[int, int]:
    """What the candles agent says it applied, per partition (next offset to apply)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT partition, last_offset + 1 FROM candles_applied_offsets WHERE topic = %s",
            (topic,),
        ).fetchall()
    return {int(p): int(o) for p, o in rows}


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_all_applied(settings: Settings, dsn: str, topic: str) -> None:
    """Wait until the candles agent applied every message of ``topic``."""
    ends = {p: o for p, o in end_offsets(settings, topic).items() if o > 0}
    wait_until(
        lambda: all(applied_offsets(dsn, topic).get(p, 0) >= o for p, o in ends.items()),
        f"candles to apply {ends}",
    )


@dataclass
class WorkerTopics:
    """The per-test topics a worker reads and writes."""

    ticks: str
    conflated: str
    orders: str
    execution_reports: str

    @property
    def dlq(self) -> str:
        return self.ticks + ".dlq"


@contextmanager
def worker_topics(
    settings: Settings, new_topic: Callable[[int], str], partitions: int
) -> Iterator[WorkerTopics]:
    """Fresh topics for one test (and the ticks DLQ, which new_topic does not name)."""
    names = WorkerTopics(new_topic(partitions), new_topic(1), new_topic(1), new_topic(1))
    topics.ensure_topics(settings, [topics.TopicSpec(names.dlq, 1)])
    try:
        yield names
    finally:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for future in admin.delete_topics([names.dlq], operation_timeout=30).values():
            future.result()


class Workers:
    """Real ``faust worker`` processes of one consumer group; killed at the end of the test."""

    def __init__(
        self, settings: Settings, dsn: str, names: WorkerTopics, workdir: Path, **extra_env: str
    ) -> None:
        self.app_id = f"test-streams-{uuid.uuid4().hex[:8]}"
        self.ticks_topic = names.ticks
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = (
            os.environ
            | {
                "PYTHONPATH": str(PROJECT_ROOT),
                "PYTHONUNBUFFERED": "1",
                "BROKER_MODE": "test",
                "BROKER_KAFKA_PORT": str(settings.kafka_port),
                "BROKER_KAFKA_NODES": str(settings.kafka_nodes),
                "BROKER_PG_PORT": str(conninfo_to_dict(dsn)["port"]),
                "BROKER_PG_HA": str(settings.pg_ha).lower(),
                "BROKER_PG_DATABASE": str(conninfo_to_dict(dsn)["dbname"]),
                "BROKER_TOPIC_TICKS": names.ticks,
                "BROKER_TOPIC_CONFLATED": names.conflated,
                "BROKER_TOPIC_ORDERS": names.orders,
                "BROKER_TOPIC_EXECUTION_REPORTS": names.execution_reports,
                "BROKER_STREAMS_APP_ID": self.app_id,
                "BROKER_STREAMS_DATA_DIR": str(workdir / "faust-data"),
            }
            | extra_env
        )

    @property
    def ticks_group(self) -> str:
        """The consumer group of the tick agents (they consume below Faust, in batches)."""
        return ticks_group_of(self.app_id, self.ticks_topic)

    def start(self, app_id: str | None = None) -> subprocess.Popen[bytes]:
        """Start one more worker (in this group, or in ``app_id``'s)."""
        env = self.env | {"BROKER_STREAMS_WEB_PORT": str(free_port())}
        if app_id is not None:
            env["BROKER_STREAMS_APP_ID"] = app_id
        index = len(self.procs)
        log = (self.workdir / f"worker-{index}.log").open("wb")
        proc = subprocess.Popen(
            worker_argv(0, int(env["BROKER_STREAMS_WEB_PORT"])),
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def kill_9(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill ``proc`` without letting it commit or clean up."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=STOP_WAIT_S)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop ``proc`` gracefully (SIGTERM), killing it if it takes too long."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        """Stop every worker still running."""
        for proc in self.procs:
            self.stop(proc)

    def logs(self) -> str:
        """The tail of every worker's log, for a failing assertion."""
        parts = []
        for path in sorted(self.workdir.glob("worker-*.log")):
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)


@contextmanager
def running_workers(
    settings: Settings,
    dsn: str,
    names: WorkerTopics,
    workdir: Path,
    count: int = 1,
    **extra_env: str,
) -> Iterator[Workers]:
    """``count`` workers of one fresh group, all stopped at the end whatever happens."""
    workers = Workers(settings, dsn, names, workdir, **extra_env)
    try:
        for _ in range(count):
            workers.start()
        yield workers
    except BaseException:
        sys.stderr.write(workers.logs())
        raise
    finally:
        workers.stop_all()


def read_dead_letters(
    settings: Settings,
    topic: str,
    want: Callable[[list[DeadLetter]], bool],
    timeout_s: float = WAIT_S,
    quiet_s: float = 0.0,
) -> list[DeadLetter]:
    """Read the DLQ from the start until ``want`` holds and nothing came for ``quiet_s``."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + timeout_s
    last_s = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if want(letters) and time.monotonic() - last_s >= quiet_s:
                break
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                letters.append(DEAD_LETTERS.decode(message.value()))
                last_s = time.monotonic()
    finally:
        consumer.close()
    assert want(letters), f"the DLQ did not fill as expected: {len(letters)} letters"
    return letters
