"""The run command's services as one unit: start them supervised, report on them, follow logs."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import httpx

from core.settings import Settings
from core.tls import client_ssl_context
from infra import (
    demo,
    etcd_node,
    front,
    kafka_node,
    patroni_node,
    postgres,
    procs,
    redis_node,
    stack,
    supervise,
)

log = logging.getLogger(__name__)

READY_PROBE_TIMEOUT_S = 2.0


def up(settings: Settings) -> None:
    """PostgreSQL and Kafka in the background, then every service (Redis too) supervised,
    then (outside production) the demo trader."""
    stack.start(settings, redis=False)
    start(settings)
    if settings.demo_trader and settings.mode != "production":
        for line in demo.ensure_and_describe(settings):
            log.info("%s", line)


def start(settings: Settings) -> None:
    """Start every service under supervisord and wait until the front serves a ready API."""
    supervise.start(settings)
    wait_front_ready(settings, settings.supervisor_ready_timeout_s)
    log.info("the system is served at %s", settings.front_url)
    started = supervise.start_deferred(settings)
    if started:
        log.info("starting now that trading is served: %s", ", ".join(started))
        # Returning once they all serve leaves a calm system to the caller (a person, a test):
        # the front answers as soon as one UI does, while the others may still be importing.
        try:
            procs.wait_until(
                lambda: dagster_all_ready(settings), settings.supervisor_ready_timeout_s, "Dagster"
            )
        except procs.InfraError:
            log.warning("Dagster's UI does not answer yet; it keeps starting (make status)")


def _server_info_ok(host: str, port: int) -> bool:
    try:
        answer = httpx.get(f"http://{host}:{port}/server_info", timeout=READY_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return answer.status_code == httpx.codes.OK


def dagster_ready(settings: Settings) -> bool:
    """True when Dagster's UI answers through the front."""
    return _server_info_ok(settings.dagster_host, settings.dagster_port)


def dagster_all_ready(settings: Settings) -> bool:
    """True when the UI answers through the front and every UI and code server process serves."""
    ports = [settings.dagster_port, *front.dagster_webserver_ports(settings)]
    if not all(_server_info_ok(settings.dagster_host, port) for port in ports):
        return False
    # A code server listens once it has loaded the code location.
    return all(
        procs.port_open(settings.dagster_code_host, port)
        for port in front.dagster_code_ports(settings)
    )


def front_ready(settings: Settings) -> bool:
    """True when the front answers ``/readyz`` with 200 over verified TLS."""
    try:
        response = httpx.get(
            f"{settings.front_url}/readyz",
            verify=client_ssl_context(settings),
            timeout=READY_PROBE_TIMEOUT_S,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == httpx.codes.OK


def wait_front_ready(settings: Settings, timeout_s: float) -> None:
    """Wait until the front serves, or raise InfraError naming the services not running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if front_ready(settings):
            return
        fatal = [s.name for s in supervise.statuses(settings) if s.state == "FATAL"]
        if fatal:
            raise procs.InfraError(
                f"gave up starting {fatal}: see {supervise.logs_dir(settings)} and"
                f" {supervise.own_log(settings)}"
            )
        time.sleep(procs.POLL_INTERVAL_S * 5)
    down = [s.name for s in supervise.statuses(settings) if s.state != "RUNNING"]
    raise procs.InfraError(
        f"the front did not serve within {timeout_s:.0f}s; not running: {down or 'none'};"
        f" logs in {supervise.logs_dir(settings)}"
    )


def status_lines(settings: Settings) -> list[str]:
    """A line per server (PostgreSQL, Kafka) and per supervised service."""
    if not supervise.running(settings):
        return [*stack.status(settings), "services: not supervised (start them with `make up`)"]
    lines = stack.status(settings, redis=False)
    return [*lines, *(s.line() for s in supervise.statuses(settings))]


def all_up(lines: list[str]) -> bool:
    """True when every server is ready and every service runs."""
    return all(("ready" in line) or (" RUNNING " in line) for line in lines)


def log_path(settings: Settings, name: str) -> Path:
    """The log file of a server or a supervised service."""
    servers = {
        "postgres": postgres.log_file,
        "kafka": kafka_node.log_file,
        "redis": redis_node.log_file,
        "etcd": etcd_node.log_file,
    }
    node = name.removeprefix("postgres")
    if settings.pg_ha and node.isdigit():
        return patroni_node.log_file(settings, int(node))
    if name in servers and not (name == "redis" and supervise.running(settings)):
        return servers[name](settings)
    kafka_nodes = {f"kafka-{i + 1}": i for i in range(settings.kafka_nodes)}
    if name in kafka_nodes:
        return kafka_node.log_file(settings, kafka_nodes[name])
    if name == "supervisor":
        return supervise.own_log(settings)
    return supervise.service_log(settings, name)


# tail names the file before each run of lines from it ("==> path <=="); awk turns that into
# a prefix on every line, so the merged stream says which service wrote what.
_PREFIX_AWK = (
    r'/^==> .* <==$/ { n = $2; sub(/.*\//, "", n); sub(/\.log$/, "", n); next }'
    r' NF { printf "%-18s | %s\n", n, $0; fflush() }'
)


def follow(settings: Settings) -> None:
    """Replace this process with a follower of every service's log, prefixed by service."""
    files = [str(supervise.own_log(settings))]
    files += sorted(str(p) for p in supervise.logs_dir(settings).glob("*.log"))
    # The last few lines of each log first: what every service said as it started.
    script = 'tail -n 3 -F "$@" 2>/dev/null | awk "$0"'
    os.execvp("bash", ["bash", "-c", script, _PREFIX_AWK, *files])  # noqa: S606
