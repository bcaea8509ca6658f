"""docker-compose.yml is a valid Compose file describing the system (no engine runs here)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from core.settings import PROJECT_ROOT
from infra import timescaledb

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid_and_mirrors_the_redundant_topology_of_the_run_command() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither 'docker compose' nor 'docker-compose' is installed")

    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "--format", "json"]
        if command == ["docker", "compose"]
        else [*command, "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )

    assert result.returncode == 0, result.stderr
    services = (
        json.loads(result.stdout)["services"]
        if command == ["docker", "compose"]
        else _services_from_yaml(result.stdout)
    )
    assert {
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "etcd",
        "pg-1",
        "pg-2",
        "redis",
        "init",
        "front",
        "api-1",
        "api-2",
        "relay-1",
        "relay-2",
        "exchange",
        "gateway",
        "bridge-1",
        "bridge-2",
        "streams-1",
        "streams-2",
        "dagster-code-1",
        "dagster-code-2",
        "dagster-webserver-1",
        "dagster-webserver-2",
        "dagster-daemon",
    } <= set(services)
    # Every long-running service comes back when it dies; the one-shot init does not.
    restarting = {name for name, spec in services.items() if spec.get("restart")}
    assert restarting == set(services) - {"init"}
    assert services["front"]["image"].startswith("haproxy:")
    assert all(services[f"kafka-{i}"]["image"].startswith("apache/kafka:") for i in (1, 2, 3))
    environments: dict[str, Any] = {n: spec.get("environment", {}) for n, spec in services.items()}
    assert str(environments["kafka-3"]["KAFKA_NODE_ID"]) == "3"
    assert environments["init"]["BROKER_KAFKA_NODES"] == "3"
    # The PostgreSQL pair as the run command starts it, its image built with TimescaleDB from
    # the release setup pins (infra/timescaledb.sha256, read by the Dockerfile).
    assert environments["init"]["BROKER_PG_HA"] == "true"
    for node in ("pg-1", "pg-2"):
        spec: dict[str, Any] = services[node]
        assert spec["build"]["dockerfile"] == "infra/patroni/Dockerfile"
        assert environments[node]["PATRONI_NAME"] == node
        assert environments[node]["PATRONI_ETCD3_HOSTS"] == "etcd:2379"
    dockerfile = (PROJECT_ROOT / "infra" / "patroni" / "Dockerfile").read_text()
    assert "infra/timescaledb.sha256" in dockerfile
    assert "sha256sum -c timescaledb.sha256" in dockerfile
    assert timescaledb.PIN_FILE.read_text().split() == [timescaledb.SHA256, timescaledb.ARCHIVE]


def _services_from_yaml(text: str) -> dict[str, dict[str, str]]:
    import yaml

    loaded: dict[str, dict[str, dict[str, str]]] = yaml.safe_load(text)
    return loaded["services"]


PATRONI_DOCKER_CONFIG = PROJECT_ROOT / "infra" / "patroni" / "docker.yml"


def test_the_docker_pairs_patroni_config_is_the_one_the_local_pair_renders() -> None:
    import yaml

    from core.settings import Settings
    from infra import patroni_node

    docker = yaml.safe_load(PATRONI_DOCKER_CONFIG.read_text())
    # The Docker pair's image has Debian's Patroni and the pinned TimescaleDB, as the local pair.
    settings = Settings()
    local = patroni_node.config(settings, 0)

    assert docker["bootstrap"] == local["bootstrap"]
    assert docker["scope"] == local["scope"]
    parameters = dict(docker["postgresql"]["parameters"])
    parameters.pop("unix_socket_directories")
    assert parameters == patroni_node.parameters(settings)
