"""A Redis server from the machine's Debian package (redis-server 7), under the project's .local.

The API processes keep their shared rate-limit counters in it. ``start`` runs it in the
background with a pid file (``python -m infra start``, the tests); ``foreground_argv`` is the same
server in the foreground, for a process supervisor. Both use the config file ``prepare`` writes.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import redis

from core.settings import Settings
from infra import procs

log = logging.getLogger(__name__)

# A readiness probe is a single PING on loopback: a short bound is plenty.
PING_TIMEOUT_S = 2.0


def home(settings: Settings) -> Path:
    """This stack's Redis folder: config, working directory, log and pid file."""
    return settings.state_dir / "redis"


def config_file(settings: Settings) -> Path:
    """The server's config file (it holds the password, so only its owner may read it)."""
    return home(settings) / "redis.conf"


def pid_file(settings: Settings) -> Path:
    """The server's pid file (written by ``start``)."""
    return home(settings) / "redis.pid"


def log_file(settings: Settings) -> Path:
    """The server's log when ``start`` runs it in the background."""
    return home(settings) / "redis.log"


def _marker(settings: Settings) -> str:
    # The config path tells this stack's server from any other redis-server process.
    return str(config_file(settings))


def config_text(settings: Settings) -> str:
    """The server configuration: loopback only, a password, no persistence."""
    password = settings.redis_password.get_secret_value()
    return "\n".join(
        [
            f"bind {settings.redis_host}",
            f"port {settings.redis_port}",
            "protected-mode yes",
            # Quoted, so a password with spaces or '#' stays one argument.
            f'requirepass "{_quote(password)}"',
            f'dir "{_quote(str(home(settings)))}"',
            # The same file serves the background start (output to redis.log through the
            # parent) and a supervisor, which reads the foreground process's output.
            "daemonize no",
            'logfile ""',
            # Keep the command line as started, so the pid file's process can be recognised.
            "set-proc-title no",
            # The counters are ephemeral (each lives one rate-limit window): after a restart the
            # windows start empty, which costs at most one window of extra hits. Writing RDB
            # snapshots or an append-only file of thousands of hits a second would buy nothing.
            'save ""',
            "appendonly no",
            # A bound on memory; when reached, drop the counters closest to expiry rather than
            # refuse writes (refused writes would turn every login away).
            f"maxmemory {settings.redis_maxmemory_mb}mb",
            "maxmemory-policy volatile-ttl",
            "",
        ]
    )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise procs.InfraError("redis-server is not on PATH; run infra/setup.sh to install it")
    return binary


def prepare(settings: Settings) -> Path:
    """Write the config file (readable by its owner only) and create the folder; its path."""
    home(settings).mkdir(parents=True, exist_ok=True)
    path = config_file(settings)
    # Created with mode 0600 before the password is written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(config_text(settings))
    os.chmod(path, 0o600)
    return path


def foreground_argv(settings: Settings) -> list[str]:
    """The command that runs this stack's Redis in the foreground (for a supervisor)."""
    return [_server_binary(), str(prepare(settings))]


def ready(settings: Settings) -> bool:
    """True when the server answers PING with the configured password."""
    client = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password.get_secret_value(),
        socket_timeout=PING_TIMEOUT_S,
        socket_connect_timeout=PING_TIMEOUT_S,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def start(settings: Settings) -> int:
    """Start the server unless it already runs; return its pid once it answers PING."""
    pid = procs.live_pid(pid_file(settings), _marker(settings))
    if pid is not None:
        procs.wait_until(lambda: ready(settings), settings.startup_timeout_s, "Redis")
        return pid
    if procs.port_open(settings.redis_host, settings.redis_port):
        raise procs.InfraError(
            f"port {settings.redis_port} is taken by a process this stack did not start"
        )
    return procs.spawn_daemon(
        "Redis",
        foreground_argv(settings),
        pid_file(settings),
        log_file(settings),
        lambda: ready(settings),
        settings.startup_timeout_s,
    )


def stop(settings: Settings) -> bool:
    """Stop the server if it runs; True when there was one to stop."""
    return procs.stop_daemon(pid_file(settings), _marker(settings), settings.shutdown_timeout_s)


def status(settings: Settings) -> str:
    """One line saying whether the server runs and where it listens."""
    pid = procs.live_pid(pid_file(settings), _marker(settings))
    if pid is None:
        return "redis: stopped"
    state = "ready" if ready(settings) else "starting"
    return f"redis: {state}, pid {pid}, {settings.redis_host}:{settings.redis_port}"
