"""One etcd member on loopback: the store in which Patroni keeps the leader key of the HA pair.

One member is enough here. Patroni runs with ``failsafe_mode: true``: when the store cannot be
reached, a leader keeps its role as long as it reaches every other member over their REST APIs
(``Ha._handle_dcs_error`` and ``check_failsafe_topology`` in patroni/ha.py), so losing etcd
alone demotes no one. What the single member cannot survive is etcd down *and* a node lost at
the same time: then nothing is promoted until etcd is back. Three etcd members on three
machines remove that, and buy nothing on one machine, which is itself the single point.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from core.settings import Settings
from infra import procs

log = logging.getLogger(__name__)

MEMBER_NAME = "etcd0"


def _home(settings: Settings) -> Path:
    return settings.state_dir / "etcd"


def log_file(settings: Settings) -> Path:
    """etcd's log."""
    return _home(settings) / "etcd.log"


def _pid_file(settings: Settings) -> Path:
    return _home(settings) / "etcd.pid"


def client_url(settings: Settings) -> str:
    """Where etcd serves its clients (Patroni)."""
    return f"http://{settings.etcd_host}:{settings.etcd_client_port}"


def _marker(settings: Settings) -> str:
    # The data folder is unique to this stack, so it tells our etcd from another stack's.
    return str(_home(settings) / "data")


def healthy(settings: Settings) -> bool:
    """True when etcd answers its health check with a healthy member."""
    try:
        answer = httpx.get(f"{client_url(settings)}/health", timeout=1.0)
        return bool(answer.json().get("health") == "true")
    except (httpx.HTTPError, ValueError):
        return False


def _argv(settings: Settings) -> list[str]:
    peer = f"http://{settings.etcd_host}:{settings.etcd_peer_port}"
    return [
        str(settings.etcd_bin),
        "--name",
        MEMBER_NAME,
        "--data-dir",
        _marker(settings),
        "--listen-client-urls",
        client_url(settings),
        "--advertise-client-urls",
        client_url(settings),
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        f"{MEMBER_NAME}={peer}",
        "--initial-cluster-state",
        "new",
    ]


def start(settings: Settings) -> None:
    """Start the member unless it runs; return once it is healthy."""
    _home(settings).mkdir(parents=True, exist_ok=True)
    if procs.live_pid(_pid_file(settings), _marker(settings)) is not None:
        procs.wait_until(lambda: healthy(settings), settings.startup_timeout_s, "etcd")
        return
    for port in (settings.etcd_client_port, settings.etcd_peer_port):
        if procs.port_open(settings.etcd_host, port):
            raise procs.InfraError(f"port {port} is taken by a process this stack did not start")
    pid = procs.spawn_daemon(
        "etcd",
        _argv(settings),
        _pid_file(settings),
        log_file(settings),
        lambda: healthy(settings),
        settings.startup_timeout_s,
    )
    log.info("etcd ready on %s (pid %d)", client_url(settings), pid)


def stop(settings: Settings) -> bool:
    """Stop the member if it runs; True when there was one to stop."""
    return procs.stop_daemon(_pid_file(settings), _marker(settings), settings.shutdown_timeout_s)


def status(settings: Settings) -> str:
    """One line: whether etcd runs and answers."""
    if procs.live_pid(_pid_file(settings), _marker(settings)) is None:
        return "etcd: stopped"
    state = "ready" if healthy(settings) else "not healthy"
    return f"etcd: {state}, {client_url(settings)}"
