"""A real stream worker process for integration tests, on per-test topics and a per-test group.

The worker is ``python -m faust -A streams.worker worker`` with BROKER_* variables pointing at the
session's Kafka and PostgreSQL and at the test's own database and topics. Every wait is bounded;
the process is stopped (and killed if it must be) when the test ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from core.settings import PROJECT_ROOT, Settings
from infra import topics
from streams.batch_consumer import group_id as batch_group_id
from tests.conftest import free_port

STOP_TIMEOUT_S = 20.0
POLL_S = 0.2


@dataclass(frozen=True)
class WorkerTopics:
    """The per-test topics a worker reads and writes (each with its dead-letter topic)."""

    ticks: str
    conflated: str
    orders: str
    execution_reports: str

    def all(self) -> list[str]:
        """Every topic name."""
        return [self.ticks, self.conflated, self.orders, self.execution_reports]


@contextmanager
def worker_topics(settings: Settings, new_topic: Callable[[int], str]) -> Iterator[WorkerTopics]:
    """Fresh one-partition topics, and their ``.dlq`` topics (deleted at the end)."""
    made = WorkerTopics(new_topic(1), new_topic(1), new_topic(1), new_topic(1))
    dlqs = [settings.dlq_topic(t) for t in made.all()]
    topics.ensure_topics(settings, [topics.TopicSpec(name, 1) for name in dlqs])
    try:
        yield made
    finally:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for future in admin.delete_topics(dlqs, operation_timeout=30).values():
            future.result()


@dataclass(frozen=True)
class Worker:
    """A running worker: its app id (Faust's group), its log file."""

    group_id: str
    log_path: Path
    process: subprocess.Popen[bytes]
    web_port: int

    def group_of(self, topic: str) -> str:
        """The consumer group in which this worker's agents consume ``topic`` (in batches)."""
        return batch_group_id(self.group_id, topic)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the worker's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def running_worker(
    settings: Settings,
    db_dsn: str,
    made: WorkerTopics,
    workdir: Path,
    app_module: str = "streams.worker",
    **env: str,
) -> Iterator[Worker]:
    """Start one worker process; stop it (SIGTERM, then SIGKILL) when the block ends.

    ``app_module`` is what ``faust -A`` loads: ``streams.worker`` runs every agent, an agent's
    own module (which imports the app) runs that agent alone.
    """
    group_id = f"test-streams-{uuid.uuid4().hex[:10]}"
    web_port = free_port()
    environ = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "BROKER_MODE": "test",
        "BROKER_KAFKA_PORT": str(settings.kafka_port),
        "BROKER_KAFKA_NODES": str(settings.kafka_nodes),
        "BROKER_PG_PORT": str(conninfo_to_dict(db_dsn)["port"]),
        "BROKER_PG_HA": str(settings.pg_ha).lower(),
        "BROKER_PG_DATABASE": str(conninfo_to_dict(db_dsn)["dbname"]),
        "BROKER_TOPIC_TICKS": made.ticks,
        "BROKER_TOPIC_CONFLATED": made.conflated,
        "BROKER_TOPIC_ORDERS": made.orders,
        "BROKER_TOPIC_EXECUTION_REPORTS": made.execution_reports,
        "BROKER_STREAMS_APP_ID": group_id,
        "BROKER_STREAMS_DATA_DIR": str(workdir / "faust-data"),
        "BROKER_STREAMS_WEB_PORT": str(web_port),
        "BROKER_STREAMS_COMMIT_INTERVAL_MS": "200",
        "BROKER_STREAMS_BATCH_WITHIN_MS": "50",
        **env,
    }
    log_path = workdir / f"{group_id}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", app_module, "worker", "-l", "info"],
            cwd=workdir,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(group_id, log_path, process, web_port)
    try:
        yield worker
    finally:
        stop(worker)


def stop(worker: Worker) -> None:
    """Stop the worker gracefully if it can, else kill it; never leave it running."""
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


def produce(settings: Settings, topic: str, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Produce (key, value) messages in order and wait until Kafka has them all."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5})
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0, "Kafka did not take every message"


def committed_offset(settings: Settings, group_id: str, topic: str) -> int:
    """The group's committed offset on partition 0 of ``topic`` (0 when none)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group_id})
    try:
        parts = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    except KafkaException:
        return 0  # the group coordinator is still being elected: nothing known yet
    finally:
        consumer.close()
    return max(parts[0].offset, 0)


def wait_until(condition: Callable[[], bool], timeout_s: float, worker: Worker, what: str) -> None:
    """Poll ``condition`` until true; fail with the worker's log after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            raise AssertionError(
                f"the worker exited ({worker.process.returncode}) waiting for"
                f" {what}:\n{worker.log_tail()}"
            )
        time.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}:\n{worker.log_tail()}")


def wait_consumed(
    settings: Settings, worker: Worker, topic: str, count: int, timeout_s: float = 90.0
) -> None:
    """Wait until the worker's group committed ``count`` messages of ``topic`` (all processed)."""
    group = worker.group_of(topic)
    wait_until(
        lambda: committed_offset(settings, group, topic) >= count,
        timeout_s,
        worker,
        f"{count} messages of {topic} consumed",
    )


def read_all(settings: Settings, topic: str, wait_s: float = 3.0) -> list[bytes]:
    """Every message value of a one-partition topic (reads until ``wait_s`` of silence)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-read-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    quiet_until = time.monotonic() + wait_s + 5  # the first poll joins the group
    try:
        while time.monotonic() < quiet_until:
            message = consumer.poll(POLL_S)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
                quiet_until = time.monotonic() + wait_s
    finally:
        consumer.close()
    return values


def allow_connections(settings: Settings, db_dsn: str, allowed: bool) -> None:
    """Open or close the test database to new connections (an outage the worker must ride)."""
    name = conninfo_to_dict(db_dsn)["dbname"]
    cluster = settings.model_copy(update={"pg_port": int(str(conninfo_to_dict(db_dsn)["port"]))})
    with psycopg.connect(cluster.pg_dsn_for("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(str(name)), sql.Literal(allowed)
            )
        )
