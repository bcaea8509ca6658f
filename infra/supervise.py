"""Every service of the run command under supervisord (from PyPI), which restarts what dies.

supervisord restarts a service that exits, whatever the reason, and logs the reason
("exited: api-1 (terminated by SIGKILL; not expected)"). A service that dies within
``supervisor_start_s`` of starting is retried after a backoff one second longer each time, at
most ``supervisor_retries_max`` times, then left FATAL: a service that cannot start does not
spin. The other services never stop because one died. Each service logs to its own file under
``state_dir/logs``, rotated by supervisord.

The services inherit supervisord's environment (the ``BROKER_*`` settings of the stack), plus
the few variables that tell two processes of one kind apart (their port).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xmlrpc.client import ServerProxy

from supervisor.xmlrpc import SupervisorTransport

from core.settings import PROJECT_ROOT, Settings, settings_env
from infra import front, procs, redis_node
from streams.__main__ import worker_argv

log = logging.getLogger(__name__)

# supervisord stops a service with SIGTERM and kills it (and its children) after this.
STOP_WAIT_S = 15
LOG_FILE_BYTES_MAX = "20MB"
LOG_FILE_BACKUPS = 2


@dataclass(frozen=True, slots=True)
class Program:
    """One supervised service process."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Lower starts first (infrastructure before the services that use it).
    priority: int = 500
    # False: started by ``start_deferred`` once the trading path serves, so its imports do not
    # compete with the trading services' for the CPU at start-up (Dagster's take seconds each).
    autostart: bool = True


def home(settings: Settings) -> Path:
    """supervisord's folder: configuration, socket, pid file and its own log."""
    return settings.state_dir / "supervisor"


def logs_dir(settings: Settings) -> Path:
    """Where each service's log file lives."""
    return settings.state_dir / "logs"


def config_file(settings: Settings) -> Path:
    """The rendered supervisord.conf."""
    return home(settings) / "supervisord.conf"


def socket_file(settings: Settings) -> Path:
    """supervisord's control socket (supervisorctl and the XML-RPC client use it)."""
    return home(settings) / "supervisor.sock"


def pid_file(settings: Settings) -> Path:
    """supervisord's pid file."""
    return home(settings) / "supervisord.pid"


def own_log(settings: Settings) -> Path:
    """supervisord's own log: every start, exit (with its reason) and give-up."""
    return home(settings) / "supervisord.log"


def service_log(settings: Settings, name: str) -> Path:
    """The log file of one service."""
    return logs_dir(settings) / f"{name}.log"


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def programs(settings: Settings) -> list[Program]:
    """The services of the default topology, each process of a kind numbered from 1."""
    found: list[Program] = [
        Program("redis", redis_node.foreground_argv(settings), priority=5),
        Program("front", front.foreground_argv(settings), priority=10),
        Program("gateway", _python("-m", "api.payments"), priority=100),
        Program("exchange", _python("-m", "fixbridge.simulator"), priority=100),
    ]
    for i, port in enumerate(front.api_ports(settings), start=1):
        found.append(
            Program(
                f"api-{i}",
                _python("-m", "api"),
                {"BROKER_API_PORT": str(port)},
                priority=200,
            )
        )
    for i in range(1, settings.relay_processes + 1):
        found.append(Program(f"relay-{i}", _python("-m", "streams.outbox_relay"), priority=300))
    for i in range(1, settings.bridge_processes + 1):
        found.append(Program(f"bridge-{i}", _python("-m", "fixbridge.bridge"), priority=300))
    for i in range(settings.streams_workers):
        argv = worker_argv(i, settings.streams_web_port)
        found.append(Program(f"streams-{i + 1}", argv, priority=300))
    # The code location in gRPC processes: the UIs and the daemon then start without loading
    # it. Both kinds run twice behind the front, which serves them on their configured ports.
    for i, port in enumerate(front.dagster_code_ports(settings), start=1):
        argv = _python("-m", "dagster_project", "code-server")
        env = {"BROKER_DAGSTER_CODE_PORT": str(port)}
        found.append(Program(f"dagster-code-{i}", argv, env, priority=390, autostart=False))
    uses_code_server = {"BROKER_DAGSTER_CODE_SERVER": "true"}
    for i, port in enumerate(front.dagster_webserver_ports(settings), start=1):
        argv = _python("-m", "dagster_project", "webserver")
        env = uses_code_server | {"BROKER_DAGSTER_PORT": str(port)}
        found.append(Program(f"dagster-webserver-{i}", argv, env, priority=400, autostart=False))
    # One daemon only: Dagster's scheduler and sensors must not run twice.
    daemon = _python("-m", "dagster_project", "daemon")
    found.append(Program("dagster-daemon", daemon, uses_code_server, priority=400, autostart=False))
    return found


def _quote(value: str) -> str:
    """A value for supervisord's ``environment=`` (quoted; % doubled for its interpolation)."""
    return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'


def render(settings: Settings, services: Iterable[Program]) -> str:
    """supervisord.conf for these services."""
    sock = socket_file(settings)
    lines = [
        "; Rendered by infra/supervise.py from the BROKER_* settings; edits here are overwritten.",
        "[unix_http_server]",
        f"file={sock}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={own_log(settings)}",
        f"logfile_maxbytes={LOG_FILE_BYTES_MAX}",
        f"pidfile={pid_file(settings)}",
        f"childlogdir={logs_dir(settings)}",
        f"directory={PROJECT_ROOT}",
        "loglevel=info",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{sock}",
        "",
    ]
    for program in services:
        env = {"PYTHONUNBUFFERED": "1", **program.env}
        lines += [
            f"[program:{program.name}]",
            "command=" + " ".join(a.replace("%", "%%") for a in program.argv),
            f"directory={PROJECT_ROOT}",
            "environment=" + ",".join(f"{k}={_quote(v)}" for k, v in env.items()),
            f"priority={program.priority}",
            f"autostart={'true' if program.autostart else 'false'}",
            "autorestart=true",
            f"startsecs={settings.supervisor_start_s}",
            f"startretries={settings.supervisor_retries_max}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_S}",
            # A service's own children (Dagster's code server, the simulator's tick workers)
            # are stopped with it.
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={service_log(settings, program.name)}",
            f"stdout_logfile_maxbytes={LOG_FILE_BYTES_MAX}",
            f"stdout_logfile_backups={LOG_FILE_BACKUPS}",
            "",
        ]
    return "\n".join(lines)


def prepare(settings: Settings, services: Iterable[Program]) -> Path:
    """Write every configuration the services need, then supervisord.conf; return its path."""
    from infra import tls

    tls.ensure_certificates(settings)
    front.prepare(settings)
    home(settings).mkdir(parents=True, exist_ok=True)
    logs_dir(settings).mkdir(parents=True, exist_ok=True)
    path = config_file(settings)
    path.write_text(render(settings, services))
    return path


def start(settings: Settings, services: list[Program] | None = None) -> list[Program]:
    """Start supervisord in the background with every service; a second start is harmless."""
    services = programs(settings) if services is None else services
    if running(settings):
        return services
    conf = prepare(settings, services)
    # A fresh log per run: restart counts are read from it.
    own_log(settings).unlink(missing_ok=True)
    env = {**os.environ, **settings_env(settings)}
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "supervisord"), "-c", str(conf)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise procs.InfraError(f"supervisord did not start: {result.stderr or result.stdout}")
    procs.wait_until(lambda: running(settings), settings.startup_timeout_s, "supervisord")
    log.info("supervisord runs %d services (logs in %s)", len(services), logs_dir(settings))
    return services


def start_deferred(settings: Settings, services: list[Program] | None = None) -> list[str]:
    """Start the services not started with supervisord (in priority order); their names."""
    services = programs(settings) if services is None else services
    deferred = sorted((p for p in services if not p.autostart), key=lambda p: p.priority)
    rpc = client(settings).supervisor
    started = []
    for program in deferred:
        if rpc.getProcessInfo(program.name)["statename"] in ("STOPPED", "EXITED", "FATAL"):
            rpc.startProcess(program.name, False)  # no wait: supervisord watches the start
            started.append(program.name)
    return started


def running(settings: Settings) -> bool:
    """True when this stack's supervisord answers on its socket."""
    if not socket_file(settings).exists():
        return False
    try:
        state = client(settings).supervisor.getState()
    except OSError:
        return False
    return bool(state.get("statename") == "RUNNING")


def client(settings: Settings) -> Any:
    """An XML-RPC proxy to supervisord (``supervisor.*`` methods)."""
    transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_file(settings)}")
    return ServerProxy("http://127.0.0.1", transport=transport)


def stop(settings: Settings) -> None:
    """Stop every service and supervisord; stopping what is not running is harmless."""
    pid = procs.read_pid(pid_file(settings))
    if not running(settings):
        if pid is not None and procs.is_running(pid, "supervisord"):
            procs.terminate(pid, "supervisord", settings.shutdown_timeout_s)
        return
    with contextlib.suppress(OSError):
        client(settings).supervisor.shutdown()
    if pid is not None:
        # supervisord stops the services one priority after another, each within STOP_WAIT_S.
        priorities = {p.priority for p in programs(settings)}
        timeout_s = STOP_WAIT_S * len(priorities) + settings.shutdown_timeout_s
        procs.wait_until(lambda: not procs.is_running(pid, "supervisord"), timeout_s, "shutdown")
    log.info("supervisord and its services stopped")


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One line of the status command."""

    name: str
    state: str
    pid: int
    uptime_s: int
    restarts: int

    def line(self) -> str:
        """The human form: name, state, pid, uptime, restarts."""
        hours, rest = divmod(self.uptime_s, 3600)
        minutes, seconds = divmod(rest, 60)
        uptime = f"{hours}:{minutes:02d}:{seconds:02d}" if self.pid else "-"
        pid = str(self.pid) if self.pid else "-"
        return (
            f"{self.name:<18} {self.state:<9} pid {pid:<8} up {uptime:<10} restarts {self.restarts}"
        )


def statuses(settings: Settings) -> list[ServiceStatus]:
    """Every service's state, pid, uptime and restarts since supervisord started."""
    infos = client(settings).supervisor.getAllProcessInfo()
    spawned = _spawn_counts(own_log(settings))
    found = []
    for info in infos:
        pid = int(info["pid"])
        uptime_s = int(info["now"]) - int(info["start"]) if pid else 0
        restarts = max(0, spawned.get(str(info["name"]), 0) - 1)
        found.append(
            ServiceStatus(str(info["name"]), str(info["statename"]), pid, uptime_s, restarts)
        )
    return found


def _spawn_counts(path: Path) -> dict[str, int]:
    """How often each service was spawned, from supervisord's log of this run."""
    counts: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(errors="replace").splitlines():
            marker = line.find("spawned: '")
            if marker >= 0:
                name = line[marker + len("spawned: '") :].split("'", 1)[0]
                counts[name] = counts.get(name, 0) + 1
    return counts


def pid_of(settings: Settings, name: str) -> int:
    """The pid of a running service (0 when it is not running)."""
    return int(client(settings).supervisor.getProcessInfo(name)["pid"])


def wait_running(settings: Settings, name: str, timeout_s: float, not_pid: int = 0) -> int:
    """Wait until ``name`` is RUNNING with a pid other than ``not_pid``; return that pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client(settings).supervisor.getProcessInfo(name)
        if info["statename"] == "RUNNING" and int(info["pid"]) not in (0, not_pid):
            return int(info["pid"])
        time.sleep(procs.POLL_INTERVAL_S)
    raise procs.InfraError(f"{name} was not running again within {timeout_s:.0f}s")
