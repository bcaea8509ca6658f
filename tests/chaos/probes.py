"""Which process of a kind is active, and whether a killed service serves again.

"Serves" is each kind's own answer: the API and the front answer /readyz, a worker its web
page, the gateway /healthz, the exchange accepts FIX connections, Redis answers PING, Dagster's
UI /server_info and its code server a gRPC ping; a relay or bridge serves when some process of
its kind holds the lock or lease again (the killed one comes back as a standby).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from core.settings import Settings
from infra import procs, redis_node, services, supervise
from streams.outbox_relay import ADVISORY_LOCK_KEY, APPLICATION_NAME_PREFIX

PROBE_TIMEOUT_S = 2.0

_RELAY_LOCK_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s AND a.application_name LIKE %s"
)
_BRIDGE_LEASE_HOLDER = (
    "SELECT holder FROM bridge_lease WHERE session_id = %s AND expires_at > clock_timestamp()"
)


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=PROBE_TIMEOUT_S).status_code == httpx.codes.OK
    except httpx.HTTPError:
        return False


def _pid_of_pg_row(settings: Settings, query: str, params: tuple[object, ...]) -> int:
    try:
        with psycopg.connect(settings.pg_dsn, connect_timeout=2) as conn:
            row = conn.execute(query, params).fetchone()
    except psycopg.Error:
        return 0
    return 0 if row is None else int(str(row[0]).split(":")[1])


def active_relay_pid(settings: Settings) -> int:
    """The pid of the relay holding the outbox lock (0: none)."""
    holder_names = APPLICATION_NAME_PREFIX + "%"  # the prefix and the relay's pid
    return _pid_of_pg_row(settings, _RELAY_LOCK_HOLDER, (ADVISORY_LOCK_KEY, holder_names))


def active_bridge_pid(settings: Settings) -> int:
    """The pid of the bridge holding an unexpired lease (0: none); holders are host:pid:nonce."""
    return _pid_of_pg_row(settings, _BRIDGE_LEASE_HOLDER, (settings.bridge_sender_comp_id,))


def service_of_pid(settings: Settings, pid: int) -> str:
    """The supervised service whose process has this pid ("" when none)."""
    for status in supervise.statuses(settings):
        if status.pid == pid:
            return status.name
    return ""


def _code_server_answers(host: str, port: int) -> bool:
    # Dagster's own client: the import costs seconds, so only a test of Dagster pays it.
    from dagster._grpc.client import DagsterGrpcClient

    try:
        return bool(DagsterGrpcClient(port=port, host=host).ping("probe")["echo"] == "probe")
    except Exception:  # noqa: BLE001 - any failure of the call means "not serving"
        return False


def serving_through_front(settings: Settings, kind: str) -> Callable[[], bool]:
    """A check that Dagster's UIs (``dagster-webserver``) or code servers answer via the front."""
    if kind == "dagster-webserver":
        return lambda: _http_ok(
            f"http://{settings.dagster_host}:{settings.dagster_port}/server_info"
        )
    host, port = settings.dagster_code_host, settings.dagster_code_port
    return lambda: _code_server_answers(host, port)


def serving(settings: Settings, name: str) -> Callable[[], bool]:
    """A check that ``name`` (a supervised service) serves."""
    kind, _, index = name.rpartition("-") if name[-1].isdigit() else (name, "", "")
    number = int(index) if index else 1
    local = "http://127.0.0.1"
    match kind:
        case "api":
            return lambda: _http_ok(f"{local}:{settings.api_port + number - 1}/readyz")
        case "front":
            return lambda: services.front_ready(settings)
        case "streams":
            return lambda: _http_ok(f"{local}:{settings.streams_web_port + number - 1}/livez")
        case "gateway":
            return lambda: _http_ok(f"{local}:{settings.gateway_port}/healthz")
        case "exchange":
            return lambda: procs.port_open("127.0.0.1", settings.sim_fix_port)
        case "redis":
            return lambda: redis_node.ready(settings)
        case "relay":
            return lambda: active_relay_pid(settings) != 0
        case "bridge":
            return lambda: active_bridge_pid(settings) != 0
        case "dagster-webserver":
            return lambda: _http_ok(f"{local}:{settings.dagster_port + number}/server_info")
        case "dagster-code":
            return lambda: _code_server_answers(
                settings.dagster_code_host, settings.dagster_code_port + number
            )
    return lambda: True


# Dagster's run statuses before a run ends (dagster's DagsterRunStatus).
RUN_IN_PROGRESS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
RUN_ENDED = ("SUCCESS", "FAILURE", "CANCELED")
DAGSTER_POLL_S = 2.0
_RUNS_QUERY = """
query Runs($statuses: [RunStatus!]) {
  runsOrError(filter: {statuses: $statuses}) {
    ... on Runs { results { runId jobName status startTime endTime } }
  }
}
"""


def dagster_runs(settings: Settings, statuses: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """Dagster's runs in these statuses, asked of its UI; None while the UI does not answer."""
    url = f"http://{settings.dagster_host}:{settings.dagster_port}/graphql"
    body = {"query": _RUNS_QUERY, "variables": {"statuses": list(statuses)}}
    try:
        response = httpx.post(url, json=body, timeout=PROBE_TIMEOUT_S * 15)
        runs: list[dict[str, Any]] = response.json()["data"]["runsOrError"]["results"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return None
    return runs


def dagster_settled(settings: Settings) -> bool:
    """True once a run has ended (the start-up's demo reconciliation) and none is going on."""
    return bool(dagster_runs(settings, RUN_ENDED)) and dagster_runs(settings, RUN_IN_PROGRESS) == []


def wait_dagster_settled(settings: Settings, timeout_s: float) -> None:
    """Wait until ``dagster_settled``; fail after ``timeout_s`` naming the runs still going."""
    deadline = time.monotonic() + timeout_s
    while not dagster_settled(settings):
        if time.monotonic() > deadline:
            going = dagster_runs(settings, RUN_IN_PROGRESS)
            raise AssertionError(f"Dagster not settled after {timeout_s:.0f} s; going: {going}")
        time.sleep(DAGSTER_POLL_S)
