"""Orders through the TLS 1.3 front with two API processes, beside one API process without it.

For each concurrency level C, in one run and on one database:

- one API process (``python -m api``) takes ``POST /v1/orders`` from C closed-loop clients over
  plain HTTP on loopback: the figure the front is measured against;
- two API processes behind HAProxy (the run command's front: TLS 1.3 only, the same rendered
  configuration, health checks on) take the same load over TLS, each client on its own
  keep-alive TLS connection.

The ratio says what the production path (TLS, a proxy hop, a second process) costs or gains on
this host. Both pass the same rate limits in Redis. Any non-2xx answer fails the run.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.exceptions import BenchError
from bench.orders_api import (
    COLOCATED,
    LOAD_GENERATOR,
    ORDER_BODY,
    UNIT,
    LoadFigures,
    OrdersPlan,
    check_invariants,
    check_load,
    closed_loop,
    run,
)
from bench.orders_setup import api_server, api_server_process, bench_database, free_port
from bench.report import HostInfo, Result, Row
from core.settings import Settings
from core.tls import client_ssl_context
from infra import front, procs, tls

log = logging.getLogger(__name__)

FRONT_READY_TIMEOUT_S = 30.0


@contextmanager
def _front(settings: Settings, log_path: Path) -> Iterator[str]:
    """HAProxy on the rendered configuration until the block ends; yield its https URL."""
    tls.ensure_certificates(settings)
    front.prepare(settings)
    with log_path.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            front.foreground_argv(settings), stdout=out, stderr=subprocess.STDOUT
        )
        try:
            procs.wait_until(
                lambda: all(s.startswith("UP") for s in _checked_states(settings)),
                FRONT_READY_TIMEOUT_S,
                "the front to see every API process up",
            )
            yield settings.front_url
        finally:
            process.terminate()
            process.wait(timeout=settings.shutdown_timeout_s)


def _checked_states(settings: Settings) -> list[str]:
    try:
        states = front.server_states(settings)
    except OSError:
        return ["DOWN"]
    return [state for name, state in states.items() if not name.endswith("-last")] or ["DOWN"]


def _result(
    name: str, plan: OrdersPlan, host: HostInfo, concurrency: int, figures: LoadFigures, how: str
) -> Result:
    conditions: dict[str, str | int | float] = {
        "concurrency": concurrency,
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "users": plan.users,
        "order": ORDER_BODY.decode(),
        "path": how,
        "pg_pool_size_max": plan.pool_size_max,
        "load_generator": LOAD_GENERATOR,
        "host": COLOCATED,
    }
    return Result.now(name, figures.orders_per_s, UNIT, conditions, host, figures.details())


def measure(settings: Settings, host: HostInfo, plan: OrdersPlan, log_dir: Path) -> list[Row]:
    """Per level: one API process over plain HTTP, then two behind the TLS front."""
    if shutil.which(front.HAPROXY) is None and not Path("/usr/sbin/haproxy").exists():
        raise BenchError("haproxy is not installed; run infra/setup.sh")
    log_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    with bench_database(settings, users=plan.users, pool_size_max=plan.pool_size_max) as db:
        one = db.settings.model_copy(update={"api_port": free_port()})
        alone: dict[int, Result] = {}
        with api_server(one, log_dir / "orders-one-api.log") as url:
            for concurrency in plan.concurrency_levels:
                log.info("one API process, plain HTTP: %d clients", concurrency)
                figures = run(
                    closed_loop(url, db.users, concurrency, plan.duration_s, plan.warmup_s)
                )
                check_load(f"one API process at {concurrency}", figures)
                alone[concurrency] = _result(
                    "api.orders.one_process", plan, host, concurrency, figures, "plain HTTP"
                )
        ports = [free_port(), free_port()]
        two = db.settings.model_copy(
            update={
                "api_backends": tuple(f"{one.api_host}:{port}" for port in ports),
                "front_https_port": free_port(),
                "front_http_port": free_port(),
                "state_dir": settings.state_dir / "bench" / "front",
            }
        )
        with ExitStack() as stack:
            for i, port in enumerate(ports):
                process_settings = two.model_copy(update={"api_port": port})
                stack.enter_context(
                    api_server_process(process_settings, log_dir / f"orders-api-{i + 1}.log")
                )
            url = stack.enter_context(_front(two, log_dir / "orders-front.log"))
            # Made after the front: the local CA it trusts is made with the front's certificate.
            context = client_ssl_context(two)
            for concurrency in plan.concurrency_levels:
                log.info("two API processes behind the TLS front: %d clients", concurrency)
                figures = run(
                    closed_loop(url, db.users, concurrency, plan.duration_s, plan.warmup_s, context)
                )
                check_load(f"the front at {concurrency}", figures)
                result = _result(
                    "api.orders.front", plan, host, concurrency, figures, "HAProxy TLS 1.3, 2 APIs"
                )
                rows += [Row(alone[concurrency]), Row(result, alone[concurrency])]
        check_invariants(db.dsn)
    return rows


def goals(rows: list[Row]) -> list[str]:
    """One line per level: orders/s and p99 through the front beside one process alone."""
    lines = []
    for row in rows:
        if row.ceiling is None:
            continue
        front_p99 = float(row.result.details["p99_ms"])
        alone_p99 = float(row.ceiling.details["p99_ms"])
        lines.append(
            f"{row.result.conditions['concurrency']} clients: front {row.result.value:,.0f}"
            f" orders/s p99 {front_p99:.1f} ms; one process {row.ceiling.value:,.0f} orders/s"
            f" p99 {alone_p99:.1f} ms; ratio {row.ratio:.2f}"
        )
    return lines
