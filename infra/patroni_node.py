"""The PostgreSQL HA pair: two nodes, each a Patroni daemon running its own PostgreSQL.

Patroni (Debian's package, on /usr/bin/python3: it runs as the server's OS user, to whom the
project's virtualenv may be closed) keeps the leader key in etcd (infra/etcd_node.py),
promotes the synchronous standby when the leader's key expires, and rejoins an old leader
with pg_rewind. Chosen over pg_auto_failover, whose monitor is one more server and itself a
single point; Patroni also serves each node's role and lag on a REST API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.settings import Settings
from infra import etcd_node, postgres, procs

log = logging.getLogger(__name__)

REST_TIMEOUT_S = 1.0
MB = 1024 * 1024
# A standby further behind than this is not promoted (Patroni's maximum_lag_on_failover), and
# the pair is not "whole" with it: one more loss would find no node to promote.
FAILOVER_LAG_MAX_BYTES = MB


def home(settings: Settings) -> Path:
    """The pair's folder: one sub-folder per node (config, data, socket, log)."""
    return settings.state_dir / "pgha"


def node_dir(settings: Settings, node: int) -> Path:
    """Node ``node``'s folder."""
    return home(settings) / f"node{node}"


def data_dir(settings: Settings, node: int) -> Path:
    """Node ``node``'s PostgreSQL data directory."""
    return node_dir(settings, node) / "data"


def log_file(settings: Settings, node: int) -> Path:
    """Node ``node``'s log: Patroni's lines and its PostgreSQL's."""
    return node_dir(settings, node) / "patroni.log"


def _config_file(settings: Settings, node: int) -> Path:
    return node_dir(settings, node) / "patroni.yml"


def _pid_file(settings: Settings, node: int) -> Path:
    return home(settings) / f"patroni{node}.pid"


def rest_url(settings: Settings, node: int) -> str:
    """Node ``node``'s Patroni REST API."""
    return f"http://{settings.pg_host}:{settings.pg_ha_rest_port + node}"


def _replication_parameters() -> dict[str, str]:
    # pg_rewind needs hint bits in the WAL (or data checksums, which initdb also turns on);
    # a standby serves reads and says what it has applied to its leader.
    return {
        "wal_level": "replica",
        "wal_log_hints": "on",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "wal_keep_size": "256MB",
    }


def parameters(settings: Settings) -> dict[str, str]:
    """Every node's server parameters: the project's own (one home) and replication's."""
    return {**postgres.server_parameters(settings), **_replication_parameters()}


def config(settings: Settings, node: int) -> dict[str, Any]:
    """Node ``node``'s patroni.yml as a mapping."""
    role = {
        "username": settings.pg_user,
        "password": settings.pg_password.get_secret_value(),
    }
    address = f"{settings.pg_host}:{settings.pg_ports[node]}"
    rest = f"{settings.pg_host}:{settings.pg_ha_rest_port + node}"
    hba = [
        "local all all trust",
        f"host replication {settings.pg_user} {settings.pg_host}/32 scram-sha-256",
        f"host all all {settings.pg_host}/32 scram-sha-256",
    ]
    return {
        "scope": settings.pg_ha_scope,
        "name": f"node{node}",
        "log": {"level": "INFO"},
        "restapi": {"listen": rest, "connect_address": rest},
        "etcd3": {"hosts": [f"{settings.etcd_host}:{settings.etcd_client_port}"]},
        "bootstrap": {
            "dcs": {
                "ttl": settings.pg_ha_ttl_s,
                "loop_wait": settings.pg_ha_loop_wait_s,
                "retry_timeout": settings.pg_ha_retry_timeout_s,
                "maximum_lag_on_failover": FAILOVER_LAG_MAX_BYTES,
                # Only the synchronous standby may be promoted, so no acknowledged commit is
                # lost. Not strict: with the standby gone the primary keeps taking writes
                # alone, rather than stop trading when either node is lost.
                "synchronous_mode": True,
                "synchronous_mode_strict": False,
                "failsafe_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": parameters(settings),
                },
            },
            "initdb": [
                {"encoding": "UTF8"},
                {"locale": "C.UTF-8"},
                {"auth-local": "trust"},
                {"auth-host": "scram-sha-256"},
                "data-checksums",
            ],
        },
        "postgresql": {
            "listen": address,
            "connect_address": address,
            "data_dir": str(data_dir(settings, node)),
            "bin_dir": str(settings.pg_bin_dir),
            "pgpass": str(node_dir(settings, node) / "pgpass"),
            "authentication": {"superuser": role, "replication": role, "rewind": role},
            "parameters": {
                **parameters(settings),
                "unix_socket_directories": str(node_dir(settings, node)),
            },
            "pg_hba": hba,
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
    }


def _write_config(settings: Settings, node: int) -> None:
    """Write the node's patroni.yml (JSON is YAML), readable by the server's OS user only."""
    path = _config_file(settings, node)
    path.write_text(json.dumps(config(settings, node), indent=2) + "\n")
    path.chmod(0o600)
    if postgres.as_root():
        user = postgres.os_user(settings)
        os.chown(path, user.pw_uid, user.pw_gid)


def _argv(settings: Settings, node: int) -> list[str]:
    # A clean environment: Patroni runs on the system's Python, not the project's virtualenv.
    run = ["env", "-i", "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"]
    patroni = [str(settings.patroni_bin), str(_config_file(settings, node))]
    if not postgres.as_root():
        return [*run, *patroni]
    user = settings.pg_os_user
    # setpriv execs (runuser forks), so the pid file names Patroni itself.
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *run, *patroni]


def _marker(settings: Settings, node: int) -> str:
    return str(_config_file(settings, node))


def rest_get(settings: Settings, node: int, path: str) -> httpx.Response | None:
    """GET a path of node ``node``'s REST API; None when it does not answer."""
    try:
        return httpx.get(f"{rest_url(settings, node)}{path}", timeout=REST_TIMEOUT_S)
    except httpx.HTTPError:
        return None


def _answers(settings: Settings, node: int, path: str) -> bool:
    answer = rest_get(settings, node, path)
    return answer is not None and answer.status_code == 200


def patroni_pid(settings: Settings, node: int) -> int | None:
    """The pid of node ``node``'s Patroni, when it runs."""
    return procs.live_pid(_pid_file(settings, node), _marker(settings, node))


def postmaster_pid(settings: Settings, node: int) -> int | None:
    """The pid of node ``node``'s PostgreSQL postmaster, when it runs."""
    pid = procs.read_pid(data_dir(settings, node) / "postmaster.pid")
    if pid is None or not procs.is_running(pid, "postgres"):
        return None
    return pid


def _clear_stale_postmaster(settings: Settings, node: int) -> None:
    # A killed postmaster stays a zombie (nothing reaps it here) and Patroni, seeing its pid
    # answer, would wait for it; the pid file of a postmaster that is gone is stale.
    pid_file = data_dir(settings, node) / "postmaster.pid"
    if pid_file.exists() and postmaster_pid(settings, node) is None:
        pid_file.unlink(missing_ok=True)


def start_node(settings: Settings, node: int) -> None:
    """Start node ``node``'s Patroni unless it runs (it starts or clones its PostgreSQL)."""
    if patroni_pid(settings, node) is not None:
        return
    node_dir(settings, node).mkdir(exist_ok=True)
    if postgres.as_root():
        user = postgres.os_user(settings)
        os.chown(node_dir(settings, node), user.pw_uid, user.pw_gid)
    for port in (settings.pg_ports[node], settings.pg_ha_rest_port + node):
        if postmaster_pid(settings, node) is None and procs.port_open(settings.pg_host, port):
            raise procs.InfraError(f"port {port} is taken by a process this stack did not start")
    _clear_stale_postmaster(settings, node)
    _write_config(settings, node)
    procs.spawn_daemon(
        f"Patroni node{node}",
        _argv(settings, node),
        _pid_file(settings, node),
        log_file(settings, node),
        lambda: _answers(settings, node, "/liveness"),
        settings.startup_timeout_s,
    )


def leader(settings: Settings) -> int | None:
    """The index of the node that is the primary now (its REST API says so), or None."""
    for node in range(settings.pg_ha_nodes):
        if _answers(settings, node, "/primary"):
            return node
    return None


def sync_standby(settings: Settings) -> int | None:
    """The index of the node that is the synchronous standby now, or None."""
    for node in range(settings.pg_ha_nodes):
        if _answers(settings, node, "/sync"):
            return node
    return None


def start(settings: Settings) -> None:
    """Start etcd and both nodes; return once there is a primary and a synchronous standby."""
    postgres.prepare_os_user_dir(settings, home(settings))
    etcd_node.start(settings)
    # The first node bootstraps the cluster; the others clone it once it leads.
    start_node(settings, 0)
    procs.wait_until(lambda: leader(settings) is not None, settings.startup_timeout_s, "a leader")
    for node in range(1, settings.pg_ha_nodes):
        start_node(settings, node)
    procs.wait_until(
        lambda: whole(settings), settings.startup_timeout_s, "a synchronous standby caught up"
    )
    procs.wait_until(lambda: postgres.ready(settings), settings.startup_timeout_s, "the primary")
    postgres.ensure_database(settings)


def stop_node(settings: Settings, node: int) -> bool:
    """Stop node ``node``'s Patroni (it stops its PostgreSQL); True when it ran."""
    return procs.stop_daemon(
        _pid_file(settings, node), _marker(settings, node), settings.shutdown_timeout_s
    )


def stop(settings: Settings) -> bool:
    """Stop the standbys, then the leader (no failover on the way), then etcd."""
    if not home(settings).exists():
        return etcd_node.stop(settings)
    first = leader(settings)
    order = sorted(range(settings.pg_ha_nodes), key=lambda node: node == first)
    stopped = [stop_node(settings, node) for node in order]
    for node in range(settings.pg_ha_nodes):
        # A postmaster whose Patroni was killed outlives it: stop it too.
        pid = postmaster_pid(settings, node)
        if pid is not None:
            procs.terminate(pid, "postgres", settings.shutdown_timeout_s)
    etcd_node.stop(settings)
    return any(stopped)


def kill_patroni(settings: Settings, node: int) -> int | None:
    """SIGKILL node ``node``'s Patroni (its PostgreSQL keeps running); the pid killed."""
    return _kill(patroni_pid(settings, node))


def kill_postmaster(settings: Settings, node: int) -> int | None:
    """SIGKILL node ``node``'s postmaster (Patroni restarts it); the pid killed."""
    return _kill(postmaster_pid(settings, node))


def _kill(pid: int | None) -> int | None:
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    # Our child (a Patroni we spawned) is reaped here; a postmaster is init's.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)
    return pid


@dataclass(frozen=True)
class Member:
    """One node as Patroni's /cluster reports it."""

    name: str
    role: str
    state: str
    timeline: int | None
    lag_mb: float | None


def members(settings: Settings) -> list[Member]:
    """Every node's role, state, timeline and lag, from the first REST API that answers."""
    for node in range(settings.pg_ha_nodes):
        answer = rest_get(settings, node, "/cluster")
        if answer is None or answer.status_code != 200:
            continue
        return [_member(raw) for raw in answer.json().get("members", [])]
    return []


def _member(raw: dict[str, Any]) -> Member:
    lag = raw.get("lag")
    return Member(
        name=str(raw.get("name")),
        role=str(raw.get("role")),
        state=str(raw.get("state")),
        timeline=raw.get("timeline"),
        lag_mb=lag / MB if isinstance(lag, int) else None,
    )


def whole(settings: Settings) -> bool:
    """True when a leader runs and a synchronous standby has caught up: one more loss is safe.

    Just after a primary's crash the standby follows a new timeline and is a plain replica
    for a while; a second loss before it is in sync again would find no node to promote.
    """
    found = members(settings)
    leader = any(m.role == "leader" and m.state == "running" for m in found)
    return leader and any(
        m.role == "sync_standby"
        and m.state in ("running", "streaming")
        and m.lag_mb is not None
        and m.lag_mb * MB < FAILOVER_LAG_MAX_BYTES
        for m in found
    )


def status(settings: Settings) -> list[str]:
    """A line per node: role (leader, sync_standby, replica), state, timeline, lag."""
    found = {m.name: m for m in members(settings)}
    lines = []
    for node in range(settings.pg_ha_nodes):
        name = f"node{node}"
        where = f"{settings.pg_host}:{settings.pg_ports[node]}"
        member = found.get(name)
        if member is None:
            running = "patroni running" if patroni_pid(settings, node) else "stopped"
            lines.append(f"postgres {name}: {running}, not in the cluster, {where}")
            continue
        lag = "" if member.lag_mb is None else f", lag {member.lag_mb:.1f} MB"
        ready = "ready" if member.state in ("running", "streaming") else "not ready"
        lines.append(
            f"postgres {name}: {ready}, {member.role}, {member.state}, timeline "
            f"{member.timeline}{lag}, {where}"
        )
    return [etcd_node.status(settings), *lines]
