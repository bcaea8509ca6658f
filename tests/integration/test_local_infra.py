"""The start/stop/status commands of infra/: idempotent, and they recover from a crash."""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.settings import PROJECT_ROOT, Settings
from infra import kafka_node, postgres, procs, redis_node, stack
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Settings]:
    """A stack of its own, because these tests kill and restart it."""
    settings = Settings(
        mode="test",
        state_dir=PROJECT_ROOT / ".local" / "test" / f"infra-{uuid.uuid4().hex[:8]}",
        pg_port=free_port(),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
    )
    try:
        yield settings
    finally:
        stack.stop(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def _kafka_pid(settings: Settings) -> int:
    pid = procs.read_pid(kafka_node.pid_file(settings))
    assert pid is not None
    return pid


def _redis_pid(settings: Settings) -> int:
    pid = procs.read_pid(redis_node.pid_file(settings))
    assert pid is not None
    return pid


def _postmaster_pid(settings: Settings) -> int:
    return int((postgres.data_dir(settings) / "postmaster.pid").read_text().split()[0])


def test_second_start_is_harmless_and_keeps_the_running_servers(own_stack: Settings) -> None:
    stack.start(own_stack)
    pids = _kafka_pid(own_stack), _postmaster_pid(own_stack), _redis_pid(own_stack)

    stack.start(own_stack)

    assert (_kafka_pid(own_stack), _postmaster_pid(own_stack), _redis_pid(own_stack)) == pids
    assert all("ready" in line for line in stack.status(own_stack))
    with psycopg.connect(own_stack.pg_dsn) as conn:
        # Seeding ran twice and left one row per instrument of the exchange's universe.
        count = conn.execute("SELECT count(*) FROM instruments").fetchone()
    assert count == (own_stack.sim_symbols_count,)


def test_start_after_kill_9_recovers_stale_pid_files_and_keeps_data(own_stack: Settings) -> None:
    stack.start(own_stack)
    with psycopg.connect(own_stack.pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survivor (n int)")
        conn.execute("INSERT INTO survivor VALUES (42)")
    os.kill(_kafka_pid(own_stack), signal.SIGKILL)
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
    assert kafka_node.pid_file(own_stack).exists()
    assert Path(postgres.data_dir(own_stack) / "postmaster.pid").exists()
    assert redis_node.pid_file(own_stack).exists()
    assert stack.status(own_stack) == ["redis: stopped", "postgres: stopped", "kafka: stopped"]

    stack.start(own_stack)

    assert all("ready" in line for line in stack.status(own_stack))
    with psycopg.connect(own_stack.pg_dsn) as conn:
        assert conn.execute("SELECT n FROM survivor").fetchall() == [(42,)]


def test_stop_stops_everything_and_a_second_stop_is_harmless(own_stack: Settings) -> None:
    stack.start(own_stack)

    stack.stop(own_stack)
    stack.stop(own_stack)

    assert stack.status(own_stack) == ["redis: stopped", "postgres: stopped", "kafka: stopped"]
    assert not procs.port_open(own_stack.kafka_host, own_stack.kafka_port)
    assert not procs.port_open(own_stack.pg_host, own_stack.pg_port)
    assert not procs.port_open(own_stack.redis_host, own_stack.redis_port)
