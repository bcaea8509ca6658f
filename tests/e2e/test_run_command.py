"""The README's run command itself, which started this session's whole system (tests/topology.py):
what it tells a newcomer, its services' logs in the terminal, and Ctrl-C ending everything."""

from __future__ import annotations

import pytest

from core.settings import Settings
from infra import front, procs, supervise
from tests.topology import DOWN_TIMEOUT_S, run_command_of

pytestmark = pytest.mark.e2e

PREFIXED_LINE_WAIT_S = 60.0


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


def test_the_run_command_says_how_to_log_in_and_shows_each_service_log_prefixed(
    topology: Settings,
) -> None:
    run = run_command_of(topology)

    assert "make totp" in run.text()
    procs.wait_until(
        lambda: any(line.startswith("api-1 ") for line in run.text().splitlines()),
        PREFIXED_LINE_WAIT_S,
        "api-1's prefixed log lines",
    )


@pytest.mark.ends_system
@pytest.mark.timeout(DOWN_TIMEOUT_S + 60)
def test_ctrl_c_stops_every_process_the_run_command_started(topology: Settings) -> None:
    run = run_command_of(topology)
    supervisord = procs.read_pid(supervise.pid_file(topology))
    assert supervisord is not None

    run.interrupt()
    run.process.wait(timeout=DOWN_TIMEOUT_S)

    assert not procs.is_running(supervisord, "supervisord")
    still_open = [p for p in _ports(topology) if procs.port_open("127.0.0.1", p)]
    assert still_open == [], run.text()[-3000:]
