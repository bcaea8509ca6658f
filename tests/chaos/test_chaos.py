"""Kill one process at a time, with SIGKILL, while traders place orders and watch prices.

The whole system runs as the run command starts it, past its start-up (the ``settled_topology``
fixture: the start-up's demo reconciliation run has ended). Orders come
without pause from several traders through the TLS front, each retried with its own
idempotency key for up to 10 s as a careful client would, and SSE clients stay connected.
In turn: an API process, a stream worker, the active bridge, the active relay, Redis, the
payment gateway and the front are killed; then the Kafka node that leads most partitions of
the orders and execution-reports topics (the cluster has three); then PostgreSQL's primary: its
postmaster (Patroni restarts it), then its Patroni and postmaster together (the synchronous
standby is promoted). After each process kill: every other service kept running, the killed one
serves again within 10 s, and no order failed after the client's retries. After the Kafka
node's kill: no order failed either, and the suite starts the node again (as an operator would)
once its figures are taken. After each PostgreSQL kill: orders are accepted again within 30 s,
and the killed node is started again and rejoins as the synchronous standby. At the end:
every check of tests/chaos/checks.py (exchange state, ClOrdID once, fills settled once, the
ledger invariants, a reconciliation with zero breaks, no half-done refusal) and the streams
(no gap in event ids without a resync). The figures go to .local/test-artifacts/chaos-*/.

The short form runs in CI; ``--chaos-long`` (``make chaos``) runs at least 5 minutes of load
and every kill twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from core.settings import Settings
from core.tls import client_ssl_context
from infra import kafka_node, patroni_node, procs, supervise
from tests.browser.chromium import ARTIFACTS_DIR
from tests.chaos import checks, probes
from tests.chaos.figures import KillEvent, kill_figures, write_figures
from tests.chaos.load import (
    LoadPlan,
    OrderLoad,
    OrderRecord,
    Outcome,
    find_failed,
    longest_stretch_without_accept,
    summarize,
)
from tests.chaos.sse_watch import SseWatch, longest_silence, problems
from tests.chaos.users import prepare_traders, tick_sizes

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(3_600)]

SYMBOLS = ("ACME", "ALPHA")
TRADERS = 6
SSE_CLIENTS = 6
# The service kinds killed in turn; "bridge" and "relay" mean the active one of the two.
PROCESS_KILLS = ("api-1", "streams-1", "bridge", "relay", "redis", "gateway", "front")
# A node of a replicated cluster: the others go on serving, so no order may fail.
NODE_KILLS = ("kafka-leader",)
# PostgreSQL's primary: its postmaster alone (Patroni restarts it), then Patroni and postmaster
# (the synchronous standby is promoted). Orders may fail meanwhile; they are accepted again
# within PG_BACK_BOUND_S, and nothing acknowledged is lost.
INFRA_RESTARTS = ("postgres-primary", "patroni-primary")
PG_BACK_BOUND_S = 30.0
# A restarted node's rejoin (pg_rewind, catch-up) under the load, on a 2-core host.
PAIR_WHOLE_BOUND_S = 120.0
# How long a killed Kafka node stays down before the suite starts it again, as an operator
# would: the cluster serves without it meanwhile.
NODE_DOWN_S = 10.0
# A Kafka node's JVM start and catch-up, on a loaded 2-core host.
NODE_BACK_BOUND_S = 120.0
SERVE_AGAIN_BOUND_S = 10.0
WARMUP_S = 20.0
# Quiet time after each kill's recovery, so the windows of two kills do not overlap.
SETTLE_S = 6.0
LONG_LOAD_S_MIN = 300.0
POLL_S = 0.1


@dataclass(frozen=True)
class Outage:
    """One kill: which service, when, when it served again, whether it was infrastructure.

    ``infra``: a server whose death may fail orders (excluded from the no-failure check);
    ``longest_without_accept_s`` is kept for node and infra kills, whose figures go to the docs.
    """

    event: KillEvent
    infra: bool
    others_kept: bool
    node: bool = False


def _kill_targets(rounds: int) -> list[str]:
    return [*PROCESS_KILLS * rounds, *NODE_KILLS * rounds, *INFRA_RESTARTS * rounds]


def _resolve(settings: Settings, target: str) -> str:
    """The supervised name of a target: the active bridge or relay, else the name itself."""
    match target:
        case "bridge":
            return probes.service_of_pid(settings, probes.active_bridge_pid(settings))
        case "relay":
            return probes.service_of_pid(settings, probes.active_relay_pid(settings))
    return target


def _wait(check: Callable[[], bool], timeout_s: float) -> float | None:
    """Poll until check() holds; the epoch time it first held, or None after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(POLL_S)
    return None


def _kill_process(settings: Settings, target: str) -> Outage:
    name = _resolve(settings, target)
    assert name, f"no active {target} to kill"
    before = {s.name: s.pid for s in supervise.statuses(settings)}
    pid = before[name]
    probe = probes.serving(settings, name)

    def back() -> bool:
        info = supervise.client(settings).supervisor.getProcessInfo(name)
        if info["statename"] != "RUNNING" or int(info["pid"]) in (0, pid):
            return False
        if target == "bridge":
            return probes.active_bridge_pid(settings) not in (0, pid)
        return probe()

    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    served_at = _wait(back, SERVE_AGAIN_BOUND_S * 3)
    after = {s.name: s.pid for s in supervise.statuses(settings)}
    kept = all(after[n] == p for n, p in before.items() if n != name)
    return Outage(KillEvent(name, killed_at, served_at), infra=False, others_kept=kept)


def _kill_kafka_leader(settings: Settings, target: str) -> Outage:
    """SIGKILL the node leading most order and report partitions; restart it once measured."""
    index = kafka_node.busiest_leader(
        settings, [settings.topic_orders, settings.topic_execution_reports]
    )
    pid = kafka_node.node_pid(settings, index)
    assert pid is not None, f"kafka node {index + 1} does not run"
    before = {s.name: s.pid for s in supervise.statuses(settings)}
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    # The cluster serves on without it: a quiet spell shows in the figures, not in a restart.
    time.sleep(NODE_DOWN_S)
    procs.wait_until(lambda: not procs.is_running(pid, ""), 60, "the killed node to die")
    try:
        kafka_node.start(settings)
    except procs.InfraError as exc:
        raise AssertionError(f"{exc}\n{procs.tail(kafka_node.log_file(settings, index))}") from exc
    served_at = _wait(lambda: kafka_node.ready(settings), NODE_BACK_BOUND_S)
    after = {s.name: s.pid for s in supervise.statuses(settings)}
    kept = all(after.get(n) == p for n, p in before.items())
    name = f"{target}(kafka-{index + 1})"
    return Outage(KillEvent(name, killed_at, served_at), infra=False, others_kept=kept, node=True)


def _kill_postgres_primary(settings: Settings, target: str) -> Outage:
    """SIGKILL the primary's postmaster, or its Patroni and postmaster (then the standby leads).

    Once orders are accepted again, a node whose Patroni was killed is started again (as an
    operator would) and the suite waits for a synchronous standby, so the next kill finds one.
    """
    # One loss at a time: the pair must be whole again (a standby in sync) before the next.
    assert _wait(lambda: patroni_node.whole(settings), PAIR_WHOLE_BOUND_S), "the pair is not whole"
    node = patroni_node.leader(settings)
    assert node is not None, "no PostgreSQL primary to kill"
    log_file = patroni_node.log_file(settings, node)
    killed_at = time.time()
    if target == "patroni-primary":
        patroni_node.kill_patroni(settings, node)
    patroni_node.kill_postmaster(settings, node)
    # Served again: an order can be accepted through the front (what a trader sees).
    served_at = _wait(probes.serving(settings, "front"), PG_BACK_BOUND_S * 2)
    try:
        patroni_node.start_node(settings, node)
        procs.wait_until(lambda: patroni_node.whole(settings), PAIR_WHOLE_BOUND_S, "a whole pair")
    except procs.InfraError as exc:
        raise AssertionError(f"{exc}\n{procs.tail(log_file)}") from exc
    name = f"{target}(node{node})"
    return Outage(KillEvent(name, killed_at, served_at), infra=True, others_kept=True)


async def _run_schedule(settings: Settings, targets: list[str], warmup_s: float) -> list[Outage]:
    await asyncio.sleep(warmup_s)
    outages = []
    for target in targets:
        action = (
            _kill_postgres_primary
            if target in INFRA_RESTARTS
            else _kill_kafka_leader
            if target in NODE_KILLS
            else _kill_process
        )
        outage = await asyncio.to_thread(action, settings, target)
        outages.append(outage)
        await asyncio.sleep(SETTLE_S)
    return outages


def _in_window(record: OrderRecord, start: float, end: float) -> bool:
    return record.started_at <= end and record.finished_at >= start


@pytest.fixture
def chaos_form(request: pytest.FixtureRequest) -> str:
    """``short`` (CI) or ``long`` (``--chaos-long``)."""
    return "long" if request.config.getoption("--chaos-long") else "short"


async def test_kill_9_of_any_one_process_under_load_loses_no_order(
    settled_topology: Settings, chaos_form: str
) -> None:
    settings = settled_topology
    verify = client_ssl_context(settings)
    traders = await prepare_traders(
        settings.front_url, settings, TRADERS, verify=verify, shares=dict.fromkeys(SYMBOLS, 50)
    )
    rounds = 2 if chaos_form == "long" else 1
    targets = _kill_targets(rounds)
    # The kills measure recovery on a system under steady load, not in its start-up storm
    # (TimescaleDB's jobs, consumer groups settling): the run command's own tests cover start.
    warmup_s = WARMUP_S
    # Each kill takes about its recovery plus the settle time; the long form lasts 5 min at least.
    budget_s = warmup_s + len(targets) * (SERVE_AGAIN_BOUND_S + SETTLE_S) + 30
    duration_s = max(budget_s, LONG_LOAD_S_MIN) if chaos_form == "long" else budget_s
    load = OrderLoad(
        settings.front_url,
        traders,
        await tick_sizes(settings, SYMBOLS),
        LoadPlan(symbols=SYMBOLS, interval_s=1.1),
        verify=verify,
    )
    watch = SseWatch(
        settings.front_url,
        traders,
        SYMBOLS,
        SSE_CLIENTS,
        verify=verify,
        read_timeout_s=5 * settings.stream_heartbeat_s,
        reconnect_budget_s=120,
    )

    async def kills_then_stop() -> list[Outage]:
        outages = await _run_schedule(settings, targets, warmup_s)
        # The long form keeps the load on for its whole duration; the short one stops here.
        rest_s = duration_s - (time.time() - load.started_at)
        if chaos_form == "long" and rest_s > 0:
            await asyncio.sleep(rest_s)
        load.stop()
        watch.stop()
        return outages

    records, logs, outages = await asyncio.gather(
        load.run(duration_s * 2), watch.run(duration_s * 2), kills_then_stop()
    )

    # A client whose order failed after its retries asks for it by its own id.
    await find_failed(settings.front_url, traders, records, verify=verify)
    kills = [o.event for o in outages]
    folder = ARTIFACTS_DIR / f"chaos-{chaos_form}"
    markdown, _ = write_figures(kills, records, folder)
    figures = {f.service + f"@{f.killed_at}": f for f in kill_figures(kills, records)}
    infra_windows = [
        (o.event.killed_at, (o.event.served_again_at or time.time()) + SERVE_AGAIN_BOUND_S)
        for o in outages
        if o.infra
    ]
    outside_infra = [r for r in records if not any(_in_window(r, a, b) for a, b in infra_windows)]
    summary = summarize(records, load.started_at, load.stopped_at)
    silences = [longest_silence(log.events, log.started_at, log.stopped_at)[0] for log in logs]
    found = checks.run_all_checks(
        settings,
        records,
        (load.started_at, time.time()),
        lambda: os.kill(supervise.pid_of(settings, "exchange"), signal.SIGUSR1),
    )
    (folder / "run.json").write_text(
        json.dumps(
            {
                "form": chaos_form,
                "load": summary.as_json(),
                "infra": [
                    {
                        "kind": "node" if o.node else "restart",
                        "service": o.event.service,
                        "down_s": (o.event.served_again_at or 0) - o.event.killed_at,
                        "longest_without_accept_s": longest_stretch_without_accept(
                            records,
                            o.event.killed_at,
                            (o.event.served_again_at or time.time()) + SERVE_AGAIN_BOUND_S,
                        )[0],
                        "failed_after_retries": sum(
                            r.outcome is Outcome.FAILED
                            for r in records
                            if _in_window(
                                r,
                                o.event.killed_at,
                                (o.event.served_again_at or time.time()) + SERVE_AGAIN_BOUND_S,
                            )
                        ),
                    }
                    for o in outages
                    if o.infra or o.node
                ],
                "sse_longest_silence_s": silences,
                "sse": [log.as_json() for log in logs],
                "checks": found,
            },
            indent=1,
            default=str,
        )
    )

    for outage in outages:
        event = outage.event
        assert event.served_again_at is not None, f"{event.service} never served again"
        if outage.infra:
            assert event.served_again_at - event.killed_at <= PG_BACK_BOUND_S, event
            quiet_s, _ = longest_stretch_without_accept(
                records, event.killed_at, event.served_again_at + SERVE_AGAIN_BOUND_S
            )
            assert quiet_s <= PG_BACK_BOUND_S, (event, quiet_s)
            continue
        assert outage.others_kept, f"killing {event.service} stopped another service"
        if outage.node:
            continue
        assert event.served_again_at - event.killed_at <= SERVE_AGAIN_BOUND_S, event
    process_failures = {
        key: f.failed
        for key, f in figures.items()
        if f.service.split("(")[0] not in INFRA_RESTARTS and f.failed
    }
    assert process_failures == {}, markdown.read_text()
    assert summary.accepted >= TRADERS * 10, summary
    # Orders may fail while PostgreSQL or Kafka is away (their figures are recorded above);
    # outside those windows none may.
    found["load_no_failures"] = checks.load_problems(outside_infra)
    assert {k: v for k, v in found.items() if v} == {}, json.dumps(found, indent=1)[:4000]
    assert problems(logs) == []
