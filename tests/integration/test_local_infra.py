"""The start/stop/status commands of infra/: idempotent, and they recover from a crash.

The stack here runs three Kafka nodes, as the run command does: the cluster outlives one node.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from core.settings import PROJECT_ROOT, Settings
from infra import kafka_node, postgres, procs, redis_node, stack, topics
from tests.conftest import free_port
from tests.topology import KAFKA_NODES, free_ports

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Settings]:
    """A stack of its own, because these tests kill and restart it."""
    kafka_port = free_ports(2 * KAFKA_NODES)
    settings = Settings(
        mode="test",
        state_dir=PROJECT_ROOT / ".local" / "test" / f"infra-{uuid.uuid4().hex[:8]}",
        pg_port=free_port(),
        # One PostgreSQL server: these tests kill and restart it; the pair is test_pg_ha's.
        pg_ha=False,
        kafka_nodes=KAFKA_NODES,
        kafka_port=kafka_port,
        kafka_controller_port=kafka_port + 1,
        redis_port=free_port(),
    )
    try:
        yield settings
    finally:
        stack.stop(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def _kafka_pids(settings: Settings) -> list[int]:
    pids = [procs.read_pid(kafka_node.pid_file(settings, i)) for i in range(KAFKA_NODES)]
    assert None not in pids
    return [p for p in pids if p is not None]


STOPPED = [
    "redis: stopped",
    "postgres: stopped",
    *(f"kafka-{i + 1}: stopped" for i in range(KAFKA_NODES)),
]


def _redis_pid(settings: Settings) -> int:
    pid = procs.read_pid(redis_node.pid_file(settings))
    assert pid is not None
    return pid


def _postmaster_pid(settings: Settings) -> int:
    return int((postgres.data_dir(settings) / "postmaster.pid").read_text().split()[0])


def test_second_start_is_harmless_and_keeps_the_running_servers(own_stack: Settings) -> None:
    stack.start(own_stack)
    pids = _kafka_pids(own_stack), _postmaster_pid(own_stack), _redis_pid(own_stack)

    stack.start(own_stack)

    assert (_kafka_pids(own_stack), _postmaster_pid(own_stack), _redis_pid(own_stack)) == pids
    lines = stack.status(own_stack)
    assert all("ready" in line for line in lines), lines
    assert sum("active controller" in line for line in lines) == 1, lines
    assert lines[-1].startswith("kafka cluster: ready, 3 nodes, replication 3, min in sync 2"), (
        lines
    )
    with psycopg.connect(own_stack.pg_dsn) as conn:
        # Seeding ran twice and left one row per instrument of the exchange's universe.
        count = conn.execute("SELECT count(*) FROM instruments").fetchone()
    assert count == (own_stack.sim_symbols_count,)


def test_start_after_kill_9_recovers_stale_pid_files_and_keeps_data(own_stack: Settings) -> None:
    stack.start(own_stack)
    with psycopg.connect(own_stack.pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survivor (n int)")
        conn.execute("INSERT INTO survivor VALUES (42)")
    for pid in _kafka_pids(own_stack):
        os.kill(pid, signal.SIGKILL)
    os.kill(_postmaster_pid(own_stack), signal.SIGKILL)
    redis_pid = _redis_pid(own_stack)
    os.kill(redis_pid, signal.SIGKILL)
    # The test process started Redis (stack.start), so it reaps it; else it lingers as a zombie.
    os.waitpid(redis_pid, 0)
    procs.wait_until(
        lambda: (
            not postgres.ready(own_stack)
            and not kafka_node.ready(own_stack)
            and not redis_node.ready(own_stack)
        ),
        30,
        "death",
    )
    # The pid files the crash left behind still name the dead processes.
    assert all(kafka_node.pid_file(own_stack, i).exists() for i in range(KAFKA_NODES))
    assert Path(postgres.data_dir(own_stack) / "postmaster.pid").exists()
    assert redis_node.pid_file(own_stack).exists()
    assert stack.status(own_stack) == STOPPED

    stack.start(own_stack)

    assert all("ready" in line for line in stack.status(own_stack))
    with psycopg.connect(own_stack.pg_dsn) as conn:
        assert conn.execute("SELECT n FROM survivor").fetchall() == [(42,)]


def test_stop_stops_everything_and_a_second_stop_is_harmless(own_stack: Settings) -> None:
    stack.start(own_stack)

    stack.stop(own_stack)
    stack.stop(own_stack)

    assert stack.status(own_stack) == STOPPED
    for index in range(KAFKA_NODES):
        assert not procs.port_open(own_stack.kafka_host, own_stack.kafka_node_port(index))
    assert not procs.port_open(own_stack.pg_host, own_stack.pg_port)
    assert not procs.port_open(own_stack.redis_host, own_stack.redis_port)


def test_a_kafka_node_killed_loses_no_acknowledged_write_and_rejoins(own_stack: Settings) -> None:
    stack.start(own_stack)
    topic = f"test.{uuid.uuid4().hex[:8]}"
    topics.ensure_topics(own_stack, [topics.TopicSpec(topic, 3)])
    victim = kafka_node.busiest_leader(own_stack, [topic])
    producer = Producer(
        {"bootstrap.servers": own_stack.kafka_bootstrap, "acks": "all", "enable.idempotence": True}
    )
    acked: list[bytes] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            acked.append(msg.value() or b"")

    def produce(count: int, start: int) -> None:
        for n in range(start, start + count):
            producer.produce(topic, str(n).encode(), on_delivery=delivered)
        assert producer.flush(60) == 0

    produce(200, 0)
    os.kill(_kafka_pids(own_stack)[victim], signal.SIGKILL)
    produce(200, 200)

    lines = stack.status(own_stack)
    assert lines[2 + victim] == f"kafka-{victim + 1}: stopped", lines
    assert lines[-1].startswith("kafka cluster: degraded"), lines
    assert sorted(acked, key=int) == [str(n).encode() for n in range(400)]
    consumer = Consumer(
        {
            "bootstrap.servers": own_stack.kafka_bootstrap,
            "group.id": topic,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(seen) < len(acked) and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            seen.append(message.value() or b"")
    consumer.close()
    assert sorted(seen, key=int) == sorted(acked, key=int)

    stack.start(own_stack)

    procs.wait_until(
        lambda: stack.status(own_stack)[-1].startswith("kafka cluster: ready"), 60, "in sync"
    )
