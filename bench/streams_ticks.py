"""Ticks/s through the candles and conflate agents, beside two consumer ceilings on the same topic.

One run: a dedicated database (``bench_streams_ticks``: created, migrated, instruments seeded as
infra/seed.py does, dropped afterwards) and fresh topics. N pre-encoded ticks (TICKS codec,
prices on each instrument's tick, event time increasing per symbol) are produced to a
12-partition topic, then read back from that same topic by

- an aiokafka ``getmany`` drain loop (the client Faust itself uses) - the main ceiling;
- a bare confluent-kafka ``consume`` loop (bench/kafka_ceiling.py) - the raw client's ceiling;
- real Faust worker processes (``faust worker`` of an app loading only streams.candles and
  streams.conflate, BROKER_* variables pointing at the bench database and topics): one, and two
  in one consumer group, in rounds (1, 2 then 2, 1 ...; bench/scaling.py). Each worker run has a
  fresh group and empty candle state (candles, cursors and last prices truncated), so it does
  all the work again. A worker count's row carries its medians over the rounds.

The symbols are dealt round the partitions and every partition holds the same number of ticks,
so two workers of six partitions each have the same work (``symbol_partitions``).

A worker run is timed by its group's committed offsets (Consumer.committed): from the moment
the group is stable with all its members to the moment the commits reach the end of the topic,
so start-up and the first rebalance are not counted. The candles table must then count every
tick (sum of 1 s trade counts == N), or the run is refused.

Helpers shared with bench/streams_fills.py (database, topics, worker processes, offsets) are
public here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench import cpu, kafka_ceiling, scaling, streams_gate
from bench.exceptions import BenchError
from bench.pg_ceiling import bench_database
from bench.report import HostInfo, Result, Row
from core.contracts import TICKS, Tick
from core.instruments import Instrument, instrument_universe, seed_instruments
from core.settings import PROJECT_ROOT, Settings
from infra.migrate import apply_migrations
from infra.topics import ADMIN_TIMEOUT_S, TopicSpec, ensure_topics
from streams.batch_consumer import group_id as batch_group_id

log = logging.getLogger(__name__)

BENCH_DATABASE = "bench_streams_ticks"
GOAL_TICKS_PER_S_PER_WORKER = 50_000
GOAL_RATIO_TO_AIOKAFKA = 0.3
GOAL_SCALING_2_WORKERS = 1.7
# Exchange time between two consecutive ticks of the stream (all symbols): 10k ticks/s.
TICK_SPACING_NS = 100_000
# Faust commits every this often in the measured runs (the default is 1 s); finer steps of the
# committed offset make the measured window exact to ~0.2 s.
WORKER_COMMIT_INTERVAL_MS = 200
POLL_S = 0.1
STOP_TIMEOUT_S = 20.0
JOIN_TIMEOUT_S = 120.0
AIOKAFKA_GETMANY_TIMEOUT_MS = 1000
TICK_AGENT_MODULES = ("streams.candles", "streams.conflate")


@dataclass(frozen=True)
class TicksLoad:
    """How many ticks, over how many symbols and partitions, and with which worker counts."""

    ticks: int
    partitions: int = 12
    symbols: int = 100
    workers: tuple[int, ...] = (1, 2)
    # Each worker count runs once per round; the figures are the medians (bench/scaling.py).
    rounds: int = 3
    deadline_s: float = 1200.0
    seed: int = 20240916

    def __post_init__(self) -> None:
        if min(self.ticks, self.partitions, self.symbols, self.rounds, *self.workers) < 1:
            raise ValueError(f"every ticks load figure must be positive: {self}")
        if self.symbols < self.partitions:
            raise ValueError(f"fewer symbols than partitions leaves partitions empty: {self}")


# ---------------------------------------------------------------------------------------------
# Shared helpers: database, topics, worker processes, committed offsets.


@contextmanager
def migrated_database(
    settings: Settings, name: str, instruments: Sequence[Instrument]
) -> Iterator[str]:
    """A fresh database, migrated, ``instruments`` seeded; dropped afterwards. Yields its DSN."""
    with bench_database(settings, name) as database:
        dsn = settings.pg_dsn_for(database)
        apply_migrations(dsn)
        asyncio.run(_seed(dsn, instruments))
        yield dsn


async def _seed(dsn: str, instruments: Sequence[Instrument]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await seed_instruments(conn, instruments)
        await conn.commit()


@dataclass(frozen=True)
class StreamTopics:
    """The fresh topics one benchmark's workers read and write."""

    ticks: str
    conflated: str
    orders: str
    execution_reports: str
    extra: tuple[str, ...] = ()

    def env(self) -> dict[str, str]:
        """The BROKER_TOPIC_* variables naming these topics."""
        return {
            "BROKER_TOPIC_TICKS": self.ticks,
            "BROKER_TOPIC_CONFLATED": self.conflated,
            "BROKER_TOPIC_ORDERS": self.orders,
            "BROKER_TOPIC_EXECUTION_REPORTS": self.execution_reports,
        }


@contextmanager
def stream_topics(
    settings: Settings, *, ticks_partitions: int, reports_partitions: int
) -> Iterator[StreamTopics]:
    """Fresh topics (and the DLQs the agents may write to); all deleted afterwards."""
    prefix = f"bench.streams.{uuid.uuid4().hex[:8]}"
    made = StreamTopics(
        f"{prefix}.ticks", f"{prefix}.conflated", f"{prefix}.orders", f"{prefix}.reports"
    )
    specs = [
        TopicSpec(made.ticks, ticks_partitions),
        TopicSpec(made.conflated, 1),
        TopicSpec(made.orders, 1),
        TopicSpec(made.execution_reports, reports_partitions),
    ]
    specs += [TopicSpec(settings.dlq_topic(spec.name), 1) for spec in list(specs)]
    ensure_topics(settings, specs)
    try:
        yield made
    finally:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        futures = admin.delete_topics([s.name for s in specs], operation_timeout=ADMIN_TIMEOUT_S)
        for future in futures.values():
            try:
                future.result()
            except KafkaException as exc:
                log.warning("could not delete a bench topic: %s", exc)


def produce_messages(
    settings: Settings,
    topic: str,
    messages: Sequence[tuple[bytes, bytes]],
    deadline: float,
    partition_of: Mapping[bytes, int] | None = None,
) -> kafka_ceiling.Throughput:
    """Produce keyed messages with the ceiling's batching; time it up to the final flush.

    ``partition_of`` places each key on its partition; None leaves it to the key's hash."""
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, **kafka_ceiling.PRODUCER_CONFIG}
    )
    sent = size = 0
    start = time.perf_counter()
    for key, value in messages:
        while True:
            try:
                if partition_of is None:
                    producer.produce(topic, value=value, key=key)
                else:
                    producer.produce(topic, value=value, key=key, partition=partition_of[key])
                break
            except BufferError:
                producer.poll(kafka_ceiling.BUFFER_FULL_WAIT_S)
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"produce missed its deadline after {sent:_} messages"
                    ) from None
        sent += 1
        size += len(value)
        if sent % kafka_ceiling.PRODUCE_POLL_EVERY == 0:
            producer.poll(0)
    unsent = producer.flush(max(0.0, deadline - time.monotonic()))
    if unsent:
        raise BenchError(f"produce: {unsent:_} messages still queued at the deadline")
    return kafka_ceiling.Throughput(sent, size, time.perf_counter() - start)


def end_offsets(settings: Settings, topic: str, partitions: int) -> dict[int, int]:
    """Per partition, the offset after its last message."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "bench-ends"})
    try:
        return {
            p: int(
                consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=kafka_ceiling.METADATA_TIMEOUT_S
                )[1]
            )
            for p in range(partitions)
        }
    finally:
        consumer.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_command(modules: Sequence[str], web_port: int, gate_dir: Path) -> list[str]:
    """A ``faust worker`` of the one app with only ``modules``' agents, held at ``gate_dir``."""
    imports = "; ".join(f"import {m}" for m in modules)
    gate = f"from bench.streams_gate import install; install({str(gate_dir)!r})"
    code = f"{imports}; {gate}; from streams.app import app; app.main()"
    return [sys.executable, "-c", code, "worker", "-l", "info", "--web-port", str(web_port)]


@dataclass
class WorkerGroup:
    """Worker processes of one fresh consumer group (the Faust app id); see ``running_workers``."""

    app_id: str
    group_id: str  # the consumer group of the watched topic (streams/batch_consumer.group_id)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def check_alive(self) -> None:
        """Raise BenchError with the log's tail when a worker has exited."""
        for proc, path in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                tail = path.read_text(errors="replace")[-3000:]
                raise BenchError(f"worker {proc.pid} exited ({proc.returncode}):\n{tail}")


@contextmanager
def running_workers(
    settings: Settings,
    *,
    count: int,
    modules: Sequence[str],
    database: str,
    made: StreamTopics,
    watch_topic: str | None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[WorkerGroup]:
    """Start ``count`` workers of a fresh app; stop all (SIGTERM, then SIGKILL) at the end.

    The group watched (membership, committed offsets) is the batch consumer's of
    ``watch_topic``, whose workers wait at a gate until all are ready; None: Faust's own group
    (the app id), for Faust agents, started one after another.
    """
    app_id = f"bench-streams-{uuid.uuid4().hex[:8]}"
    workdir = settings.state_dir / "bench" / app_id
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONUNBUFFERED": "1",
        "BROKER_MODE": settings.mode,
        "BROKER_KAFKA_HOST": settings.kafka_host,
        "BROKER_KAFKA_PORT": str(settings.kafka_port),
        "BROKER_KAFKA_NODES": str(settings.kafka_nodes),
        "BROKER_PG_HOST": settings.pg_host,
        "BROKER_PG_PORT": str(settings.pg_port),
        "BROKER_PG_HA": str(settings.pg_ha).lower(),
        "BROKER_PG_DATABASE": database,
        "BROKER_STREAMS_APP_ID": app_id,
        "BROKER_STREAMS_DATA_DIR": str(workdir / "faust-data"),
        "BROKER_STREAMS_COMMIT_INTERVAL_MS": str(WORKER_COMMIT_INTERVAL_MS),
        **made.env(),
        **(extra_env or {}),
    }
    watched = app_id if watch_topic is None else batch_group_id(app_id, watch_topic)
    group = WorkerGroup(app_id, watched)
    gate_dir = workdir / "gate"
    gate_dir.mkdir()
    try:
        for index in range(count):
            port = _free_port()
            path = workdir / f"worker-{index}.log"
            with path.open("wb") as out:
                proc = subprocess.Popen(
                    worker_command(modules, port, gate_dir),
                    cwd=workdir,
                    env=env | {"BROKER_STREAMS_WEB_PORT": str(port)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            group.procs.append(proc)
            group.logs.append(path)
            if watch_topic is None and index + 1 < count:
                # Started together, Faust workers were seen rebalancing forever: join one by one.
                _wait_stable(settings, group, index + 1)
        # Every worker started and waits at the gate: open it, so they join the group together
        # (a worker that joined first would drain the topic alone while the others start).
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while watch_topic is not None and streams_gate.ready_count(gate_dir) < count:
            group.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{count} worker(s) not ready after {JOIN_TIMEOUT_S} s")
            time.sleep(POLL_S)
        streams_gate.open_gate(gate_dir)
        log.info("started %d worker(s) of group %s, logs in %s", count, app_id, workdir)
        yield group
    finally:
        for proc in group.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in group.procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _group_stable(admin: AdminClient, group_id: str, members: int) -> bool:
    try:
        description = admin.describe_consumer_groups([group_id])[group_id].result()
    except KafkaException:
        return False
    return str(description.state).endswith("STABLE") and len(description.members) == members


def _wait_stable(settings: Settings, group: WorkerGroup, members: int) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not _group_stable(admin, group.group_id, members):
        group.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"group {group.group_id} not stable with {members} member(s)")
        time.sleep(POLL_S)


def _committed_total(consumer: Consumer, topic: str, partitions: int) -> int:
    try:
        parts = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)],
            timeout=kafka_ceiling.METADATA_TIMEOUT_S,
        )
    except KafkaException:
        return 0  # the group coordinator is being elected: nothing known yet
    return sum(max(part.offset, 0) for part in parts)


@dataclass(frozen=True)
class GroupRun:
    """What a worker group consumed while measured, and the whole run's wall time."""

    messages: int
    duration_s: float
    wall_s: float
    startup_s: float
    cpu: dict[str, float]  # busy cores in the window: the host's and the workers' (bench/cpu.py)

    @property
    def msgs_per_s(self) -> float:
        """Messages per second in the measured window."""
        return self.messages / self.duration_s

    def timings(self) -> dict[str, float]:
        """The window, start-up and wall seconds, rounded for a result's details."""
        return {
            "duration_s": round(self.duration_s, 3),
            "startup_s": round(self.startup_s, 3),
            "wall_s": round(self.wall_s, 3),
        }


def measure_group(
    settings: Settings,
    group: WorkerGroup,
    topic: str,
    partitions: int,
    total: int,
    deadline: float,
) -> GroupRun:
    """Time ``group`` from stable membership until its committed offsets reach ``total``."""
    started = time.perf_counter()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group.group_id,
            "enable.auto.commit": False,
        }
    )
    try:
        while not _group_stable(admin, group.group_id, len(group.procs)):
            group.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"group {group.group_id} never became stable")
            time.sleep(POLL_S)
        pids = [proc.pid for proc in group.procs]
        cpu0 = cpu.sample(pids)
        t0 = time.perf_counter()
        c0 = _committed_total(consumer, topic, partitions)
        committed = c0
        while committed < total:
            group.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"group {group.group_id} committed {committed:_} of {total:_}")
            time.sleep(POLL_S)
            committed = _committed_total(consumer, topic, partitions)
        t1 = time.perf_counter()
        cores = cpu.busy_cores(cpu0, cpu.sample(pids), {"workers": pids})
    finally:
        consumer.close()
    if c0 >= total:
        raise BenchError("the workers consumed everything before the group was stable")
    return GroupRun(total - c0, t1 - t0, t1 - started, t0 - started, cores)


# ---------------------------------------------------------------------------------------------
# Ticks.


def symbol_partitions(load: TicksLoad, instruments: Sequence[Instrument]) -> dict[bytes, int]:
    """Each symbol's partition (key -> partition): the symbols dealt round the partitions in turn.

    Why not the key's hash: 100 symbols hashed onto 12 partitions gave partitions of 4% to 12% of
    the ticks, and one of two workers 52% of them, so the 2-worker run measured that worker's
    tail alone. Each symbol still lives in one partition, as the agents require."""
    return {i.symbol.encode(): n % load.partitions for n, i in enumerate(instruments)}


def make_ticks(
    load: TicksLoad, instruments: Sequence[Instrument], partition_of: Mapping[bytes, int]
) -> list[tuple[bytes, bytes]]:
    """(key, TICKS-encoded value) pairs: a random walk on each instrument's tick, time rising.

    Tick n goes to partition n mod P (a random symbol of it), so every partition holds the same
    number of ticks within one."""
    rng = random.Random(load.seed)
    steps = {i.symbol: int(i.reference_price / i.tick_size) for i in instruments}
    seqs = dict.fromkeys(steps, 0)
    keys = {i.symbol: i.symbol.encode() for i in instruments}
    by_partition: list[list[Instrument]] = [[] for _ in range(load.partitions)]
    for inst in instruments:
        by_partition[partition_of[keys[inst.symbol]]].append(inst)
    t0 = time.time_ns() - load.ticks * TICK_SPACING_NS
    encode = TICKS.encode
    out: list[tuple[bytes, bytes]] = []
    for n in range(load.ticks):
        inst = rng.choice(by_partition[n % load.partitions])
        symbol = inst.symbol
        steps[symbol] = max(1, steps[symbol] + rng.randint(-3, 3))
        seqs[symbol] += 1
        tick = Tick(
            symbol=symbol,
            price=Decimal(steps[symbol]) * inst.tick_size,
            size=rng.randint(1, 500),
            ts_event_ns=t0 + n * TICK_SPACING_NS,
            seq=seqs[symbol],
        )
        out.append((keys[symbol], encode(tick)))
    return out


async def _aiokafka_drain(
    settings: Settings, topic: str, partitions: int, total: int, deadline: float
) -> kafka_ceiling.Throughput:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [AioTopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = size = 0
        start = time.perf_counter()
        while count < total:
            if time.monotonic() > deadline:
                raise BenchError(f"aiokafka drain read {count:_} of {total:_} by the deadline")
            batches = await consumer.getmany(timeout_ms=AIOKAFKA_GETMANY_TIMEOUT_MS)
            for records in batches.values():
                count += len(records)
                size += sum(len(r.value or b"") for r in records)
        duration_s = time.perf_counter() - start
    finally:
        await consumer.stop()
    return kafka_ceiling.Throughput(count, size, duration_s)


def aiokafka_ceiling(
    settings: Settings, host: HostInfo, topic: str, partitions: int, total: int, deadline: float
) -> Result:
    """The aiokafka ``getmany`` drain of ``topic`` from the beginning (assigned, no group)."""
    got = asyncio.run(_aiokafka_drain(settings, topic, partitions, total, deadline))
    conditions: dict[str, str | int] = {
        "messages": total,
        "partitions": partitions,
        "consumer": "aiokafka getmany, assign-from-beginning-no-commit, client defaults",
        "getmany_timeout_ms": AIOKAFKA_GETMANY_TIMEOUT_MS,
    }
    details = {
        "messages_read": got.messages,
        "duration_s": round(got.duration_s, 3),
        "mb_per_s": round(got.mb_per_s, 2),
    }
    return Result.now("aiokafka.getmany", got.msgs_per_s, "msgs/s", conditions, host, details)


def confluent_ceiling(
    settings: Settings,
    host: HostInfo,
    topic: str,
    partitions: int,
    total: int,
    message_bytes: int,
    deadline: float,
) -> Result:
    """bench/kafka_ceiling.py's confluent-kafka consume loop, on this run's topic."""
    load = kafka_ceiling.KafkaLoad(total, message_bytes, partitions)
    got = kafka_ceiling.consume(settings, topic, load, deadline)
    conditions: dict[str, str | int] = {
        "messages": total,
        "partitions": partitions,
        "consume_batch": load.consume_batch,
        "consumer": "confluent-kafka consume, assign-from-beginning-no-commit",
        "consumer_queued_min_messages": kafka_ceiling.CONSUMER_CONFIG["queued.min.messages"],
        "consumer_partition_fetch_bytes": kafka_ceiling.CONSUMER_CONFIG[
            "max.partition.fetch.bytes"
        ],
    }
    details = {
        "messages_read": got.messages,
        "duration_s": round(got.duration_s, 3),
        "mb_per_s": round(got.mb_per_s, 2),
    }
    return Result.now("kafka.consume", got.msgs_per_s, "msgs/s", conditions, host, details)


def _reset_tick_state(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE candles, candles_applied_offsets, last_prices")


def _counted_ticks(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        # Each tick is in one 1 s candle (and in a stored 1 m and 1 d one too).
        row = conn.execute(
            "SELECT coalesce(sum(trade_count), 0) FROM candles"
            " WHERE bucket_width = interval '1 second'"
        ).fetchone()
    return int(row[0]) if row else 0


def measure(settings: Settings, host: HostInfo, load: TicksLoad) -> list[Row]:
    """Both ceilings, then ticks/s per worker for each worker count, on one topic.

    Each worker count runs once per round, in alternating order; its row carries the medians
    over the rounds and, for more than one worker, the scaling against one (bench/scaling.py)."""
    deadline = time.monotonic() + load.deadline_s
    instruments = instrument_universe(load.symbols)
    with (
        migrated_database(settings, BENCH_DATABASE, instruments) as dsn,
        stream_topics(settings, ticks_partitions=load.partitions, reports_partitions=1) as made,
    ):
        partition_of = symbol_partitions(load, instruments)
        messages = make_ticks(load, instruments, partition_of)
        message_bytes = round(sum(len(v) for _, v in messages) / len(messages))
        produced = produce_messages(settings, made.ticks, messages, deadline, partition_of)
        del messages
        log.info("produced %d ticks at %.0f msgs/s", produced.messages, produced.msgs_per_s)
        ends = end_offsets(settings, made.ticks, load.partitions)
        if sum(ends.values()) != load.ticks:
            raise BenchError(f"topic holds {sum(ends.values()):_} ticks, not {load.ticks:_}")
        if max(ends.values()) - min(ends.values()) > 1:
            raise BenchError(f"partitions hold unequal ticks: {ends}")
        aio = aiokafka_ceiling(settings, host, made.ticks, load.partitions, load.ticks, deadline)
        log.info("aiokafka getmany drain: %.0f msgs/s", aio.value)
        raw = confluent_ceiling(
            settings, host, made.ticks, load.partitions, load.ticks, message_bytes, deadline
        )
        log.info("confluent-kafka consume: %.0f msgs/s", raw.value)
        runs: dict[int, list[scaling.RoundFigures]] = {count: [] for count in load.workers}
        for round_index in range(load.rounds):
            for count in scaling.round_order(load.workers, round_index):
                run = _run_workers(settings, dsn, made, load, count, deadline)
                runs[count].append(run)
                log.info(
                    "round %d, %d worker(s): %.0f ticks/s per worker",
                    round_index + 1,
                    count,
                    run.msgs_per_s / count,
                )
    conditions: dict[str, str | int] = {
        "agents": "candles+conflate",
        "ticks": load.ticks,
        "partitions": load.partitions,
        "symbols": load.symbols,
        "placement": "symbols dealt round the partitions; equal ticks per partition",
        "message_bytes": message_bytes,
        "batch_max": settings.streams_tick_batch_max,
        "batch_within_ms": settings.streams_batch_within_ms,
        "commit_interval_ms": WORKER_COMMIT_INTERVAL_MS,
        "window": "group stable -> committed offsets at end",
        "figures": f"median of {load.rounds} rounds, worker counts in alternating order",
    }
    rows = [Row(aio), Row(raw)]
    for count in load.workers:
        figures = scaling.summary(count, runs[count], runs.get(1))
        per_worker = figures.pop("per_worker")
        details = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
        details["ratio_to_kafka_consume"] = round(per_worker / raw.value, 4)
        mine = Result.now(
            f"streams.ticks.{count}w.per_worker",
            per_worker,
            "msgs/s",
            {"workers": count, **conditions},
            host,
            details,
        )
        rows += [Row(mine, aio), Row(mine, raw)]
    return rows


def _run_workers(
    settings: Settings,
    dsn: str,
    made: StreamTopics,
    load: TicksLoad,
    count: int,
    deadline: float,
) -> scaling.RoundFigures:
    """One run of ``count`` fresh workers over the whole topic, from empty candle state."""
    _reset_tick_state(dsn)
    with running_workers(
        settings,
        count=count,
        modules=TICK_AGENT_MODULES,
        database=BENCH_DATABASE,
        made=made,
        watch_topic=made.ticks,
    ) as group:
        run = measure_group(settings, group, made.ticks, load.partitions, load.ticks, deadline)
    counted = _counted_ticks(dsn)
    if counted != load.ticks:
        raise BenchError(f"{count} worker(s): candles count {counted:_} of {load.ticks:_}")
    return scaling.RoundFigures(
        run.msgs_per_s, run.cpu["workers_busy_cores"], run.cpu["host_busy_cores"]
    )


def goals(rows: Sequence[Row]) -> list[str]:
    """The issue's goals against the rows: per worker rate, ratio to aiokafka, 2-worker scaling."""
    lines = []
    for row in rows:
        if row.ceiling is None or row.ceiling.name != "aiokafka.getmany":
            continue
        value, ratio_aio = row.result.value, row.ratio or 0.0
        rate_verdict = "met" if value >= GOAL_TICKS_PER_S_PER_WORKER else "NOT met"
        lines.append(
            f"{row.result.name}: {value:,.0f} ticks/s per worker, goal"
            f" {GOAL_TICKS_PER_S_PER_WORKER:,} {rate_verdict};"
            f" {ratio_aio:.3f} of the aiokafka drain, goal {GOAL_RATIO_TO_AIOKAFKA}"
            f" {'met' if ratio_aio >= GOAL_RATIO_TO_AIOKAFKA else 'NOT met'}"
        )
        details = row.result.details
        factor = details.get("scaling_vs_1_worker")
        if factor is not None:
            verdict = "met" if factor >= GOAL_SCALING_2_WORKERS else "NOT met"
            lines.append(
                f"{row.result.name}: {factor:.2f}x one worker (median of {details['rounds']}"
                f" rounds, {details['scaling_min']:.2f}-{details['scaling_max']:.2f}),"
                f" goal {GOAL_SCALING_2_WORKERS}x {verdict}"
            )
    return lines
