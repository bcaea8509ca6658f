"""The README's run command itself: it serves through the front, and Ctrl-C ends everything."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings, settings_env
from infra import front, procs, services, supervise
from tests.topology import tear_down, topology_settings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

UP_TIMEOUT_S = 400.0
DOWN_TIMEOUT_S = 180.0
# Signup, 2FA, KYC review, a deposit through the gateway and two buys, on a busy 2-core host.
DEMO_TIMEOUT_S = 180.0


def _ports(settings: Settings) -> list[int]:
    """Every port the run command's processes listen on."""
    return [
        *settings.pg_ports,
        *(
            settings.pg_ha_rest_port + i
            for i in range(len(settings.pg_ports) if settings.pg_ha else 0)
        ),
        *((settings.etcd_client_port, settings.etcd_peer_port) if settings.pg_ha else ()),
        *(settings.kafka_node_port(i) for i in range(settings.kafka_nodes)),
        *(settings.kafka_node_controller_port(i) for i in range(settings.kafka_nodes)),
        settings.redis_port,
        settings.front_https_port,
        settings.front_http_port,
        *front.api_ports(settings),
        settings.gateway_port,
        settings.sim_fix_port,
        settings.dagster_port,
        *front.dagster_webserver_ports(settings),
        *front.dagster_code_ports(settings),
        *(settings.streams_web_port + i for i in range(settings.streams_workers)),
    ]


def test_up_serves_through_the_front_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    settings = topology_settings()
    output = tmp_path / "up.log"
    env = {**os.environ, **settings_env(settings)}
    with output.open("w") as out:
        # Its own process group, as a terminal runs it: Ctrl-C reaches the whole group.
        up = subprocess.Popen(
            ["bash", "infra/up.sh"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        procs.wait_until(lambda: services.front_ready(settings), UP_TIMEOUT_S, "the front")
        supervisord = procs.read_pid(supervise.pid_file(settings))
        assert supervisord is not None
        # The run command makes the demo trader and says how to log in as it.
        procs.wait_until(
            lambda: "demo trader ready" in output.read_text(), DEMO_TIMEOUT_S, "the demo trader"
        )
        assert "make totp" in output.read_text()
        # The log lines of the services reach the terminal, each prefixed with its service.
        procs.wait_until(
            lambda: any(line.startswith("api-1 ") for line in output.read_text().splitlines()),
            60,
            "api-1's prefixed log lines",
        )

        os.killpg(up.pid, signal.SIGINT)
        up.wait(timeout=DOWN_TIMEOUT_S)

        assert not procs.is_running(supervisord, "supervisord")
        still_open = [p for p in _ports(settings) if procs.port_open("127.0.0.1", p)]
        assert still_open == [], output.read_text()[-3000:]
    finally:
        # The whole group: the log follower (tail | awk) too, when the test failed before Ctrl-C.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)
        up.wait(timeout=DOWN_TIMEOUT_S)
        tear_down(settings)
