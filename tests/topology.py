"""The whole system started by the README's run command, on free ports (``topology``).

``bash infra/up.sh`` runs in a session of its own, as a terminal runs it: the Patroni pair and
three Kafka nodes, then every service under supervisord (two API processes behind the TLS
front, two stream workers, two relays, two bridges, the gateway, the exchange simulator and
Dagster), then the demo trader, then every log followed in the foreground. The last test of the
session ends it with Ctrl-C (tests/e2e/test_run_command.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from core.instruments import seed_instruments
from core.settings import PROJECT_ROOT, Settings, settings_env
from infra import procs, stack, supervise
from tests.conftest import OWNER_FILE, remove_state
from tests.e2e.support import quiet_instrument

PORT_TRIES_MAX = 200
# On a clean 2-core host: setup's checks, the pair, three Kafka nodes, every service, Dagster.
UP_TIMEOUT_S = 400.0
# Signup, 2FA, KYC review, a deposit through the gateway and two buys, on a busy 2-core host.
DEMO_TIMEOUT_S = 180.0
DOWN_TIMEOUT_S = 180.0
DEMO_READY_LINE = "demo trader ready"
# The whole system as the run command starts it: three Kafka nodes, so one may die.
KAFKA_NODES = 3
# Below Linux's ephemeral range (32768-60999): the chaos suite kills and restarts Kafka,
# PostgreSQL and Redis, and while one is down its clients keep reconnecting; a server port in
# the ephemeral range can be taken by such a client's own socket (a TCP self-connect), and the
# server then cannot bind it again.
PORT_RANGE = (20_000, 32_000)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_taken: set[int] = set()


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive free ports outside the ephemeral range."""
    for _ in range(PORT_TRIES_MAX):
        base = secrets.choice(range(PORT_RANGE[0], PORT_RANGE[1] - count))
        chosen = range(base, base + count)
        if not _taken.intersection(chosen) and all(_port_free(p) for p in chosen):
            _taken.update(chosen)
            return base
    raise RuntimeError(f"no {count} consecutive free ports in {PORT_TRIES_MAX} tries")


def topology_settings() -> Settings:
    """Settings of a whole system of its own: fresh state folder, every port free."""
    fix_port = free_ports()
    front_port = free_ports()
    # Each Kafka node: a client port and, next to it, its controller's (the settings' stride).
    kafka_port = free_ports(2 * KAFKA_NODES)
    settings = Settings(
        mode="test",
        state_dir=PROJECT_ROOT / ".local" / "test" / f"e2e-{uuid.uuid4().hex[:8]}",
        # The PostgreSQL pair (Patroni, etcd) as the run command starts it: a port per node.
        pg_ha=True,
        pg_port=free_ports(2),
        pg_ha_rest_port=free_ports(2),
        etcd_client_port=free_ports(),
        etcd_peer_port=free_ports(),
        redis_port=free_ports(),
        kafka_nodes=KAFKA_NODES,
        kafka_port=kafka_port,
        kafka_controller_port=kafka_port + 1,
        api_port=free_ports(2),
        front_https_port=front_port,
        front_http_port=free_ports(),
        api_public_url=f"https://127.0.0.1:{front_port}",
        streams_web_port=free_ports(2),
        gateway_port=free_ports(),
        sim_fix_port=fix_port,
        bridge_fix_port=fix_port,
        # The front's port, then one per process (two UIs, two code servers).
        dagster_port=free_ports(3),
        dagster_code_port=free_ports(3),
        market_always_open=True,
        # Faster failure detection than a person needs, so the tests wait less.
        bridge_heartbeat_s=2,
        bridge_reconnect_interval_s=1,
        # A heartbeat a second, so a stream's silence means something to the chaos suite.
        stream_heartbeat_s=1,
        # Tokens outlive the long chaos run.
        access_token_ttl_s=3_600,
    )
    return settings


@dataclass(frozen=True)
class RunCommand:
    """The run command of a topology: its process (a session leader) and its terminal output."""

    process: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        """Everything the run command printed so far."""
        return self.output.read_text(errors="replace")

    def interrupt(self) -> None:
        """Ctrl-C, as a terminal sends it: SIGINT to the whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)


_run_commands: dict[Path, RunCommand] = {}


def run_command_of(settings: Settings) -> RunCommand:
    """The run command that started the topology of ``settings``."""
    return _run_commands[settings.state_dir]


async def _seed_quiet_instrument(settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(settings.pg_dsn) as conn:
        await seed_instruments(conn, [quiet_instrument(settings)])
        await conn.commit()


def _start_run_command(settings: Settings) -> RunCommand:
    output = settings.state_dir / "up.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "infra/up.sh"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **settings_env(settings)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return RunCommand(process, output)


def _wait_demo_ready(run: RunCommand) -> None:
    """Wait until the run command made the demo trader (its last step), or fail with its output."""

    def printed() -> bool:
        if run.process.poll() is not None:
            raise AssertionError(f"the run command ended ({run.process.returncode}):\n{run.text()}")
        return DEMO_READY_LINE in run.text()

    procs.wait_until(printed, UP_TIMEOUT_S + DEMO_TIMEOUT_S, "the run command's demo trader")


def run_topology(settings: Settings) -> Iterator[Settings]:
    """Start the whole system with the run command; stop everything and remove its data after."""
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
    run: RunCommand | None = None
    try:
        run = _start_run_command(settings)
        _run_commands[settings.state_dir] = run
        _wait_demo_ready(run)
        # Listed after the start, as a new listing would be: the simulator never prints it.
        asyncio.run(_seed_quiet_instrument(settings))
        yield settings
    finally:
        if run is not None:
            run.interrupt()
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(timeout=DOWN_TIMEOUT_S)
            # The whole group: the log follower (tail | awk) too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.process.pid, signal.SIGKILL)
        tear_down(settings)


def tear_down(settings: Settings) -> None:
    """Stop every service and server of a topology and remove its state folder."""
    supervise.stop(settings)
    stack.stop(settings)
    remove_state(settings.state_dir)
