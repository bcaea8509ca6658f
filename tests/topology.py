"""The whole system as the run command starts it, on free ports (the ``topology`` fixture).

PostgreSQL and Kafka as ``python -m infra start`` runs them, then every service under
supervisord as ``python -m infra supervise`` does: two API processes behind the TLS front,
two stream workers, two relays, two bridges, the gateway, the exchange simulator and Dagster.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import uuid
from collections.abc import Iterator

import psycopg

from core.instruments import seed_instruments
from core.settings import PROJECT_ROOT, Settings
from infra import services, stack, supervise
from tests.conftest import OWNER_FILE, remove_state
from tests.e2e.support import quiet_instrument

PORT_TRIES_MAX = 200
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


async def _seed_quiet_instrument(settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(settings.pg_dsn) as conn:
        await seed_instruments(conn, [quiet_instrument(settings)])
        await conn.commit()


def run_topology(settings: Settings) -> Iterator[Settings]:
    """Start the whole supervised system; stop every process and remove its data after."""
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
    try:
        stack.start(settings, redis=False)
        asyncio.run(_seed_quiet_instrument(settings))
        services.start(settings)
        yield settings
    finally:
        tear_down(settings)


def tear_down(settings: Settings) -> None:
    """Stop every service and server of a topology and remove its state folder."""
    supervise.stop(settings)
    stack.stop(settings)
    remove_state(settings.state_dir)
