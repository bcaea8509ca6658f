"""The Dagster UI as ``python -m dagster_project webserver`` serves it: assets, checks,
schedule and sensor of the reconciliation, and no pop-up, read through its GraphQL API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import PROJECT_ROOT, Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
QUERY = """
{
  shouldShowNux
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError {
    ... on RepositoryConnection { nodes { schedules { name } sensors { name } } }
  }
}
"""


def _graphql(url: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.load(response)
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture
def webserver(running_stack: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "BROKER_MODE": "test",
        "BROKER_PG_PORT": str(running_stack.pg_port),
        "BROKER_PG_HA": str(running_stack.pg_ha).lower(),
        "BROKER_KAFKA_PORT": str(running_stack.kafka_port),
        "BROKER_KAFKA_NODES": str(running_stack.kafka_nodes),
        "BROKER_STATE_DIR": str(tmp_path),
        "BROKER_DAGSTER_PORT": str(port),
    }
    log = (tmp_path / "webserver.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_project", "webserver"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the webserver's code server is stopped with it
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                _graphql(url)
                break
            except (urllib.error.URLError, ConnectionError, KeyError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "the Dagster webserver did not come up:\n"
                        + (tmp_path / "webserver.log").read_text(errors="replace")[-4000:]
                    ) from None
                time.sleep(1)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def test_the_ui_shows_the_reconciliation_assets_checks_schedule_and_sensor(webserver: str) -> None:
    data = _graphql(webserver)

    checks = {
        "/".join(node["assetKey"]["path"]): {
            c["name"] for c in node["assetChecksOrError"]["checks"]
        }
        for node in data["assetNodes"]
    }
    assert set(checks) >= {"ledger", "trade_report", "day_candles", "recon_breaks", "recon_report"}
    assert checks["trade_report"] >= {"trade_report_keys", "trade_report_positive"}
    assert "candles_without_gaps" in checks["day_candles"]
    assert "fill_settled_once" in checks["ledger"]
    repo = data["repositoriesOrError"]["nodes"][0]
    assert [s["name"] for s in repo["schedules"]] == ["nightly_reconciliation"]
    assert [s["name"] for s in repo["sensors"]] == ["trade_report_sensor"]
    # infra/dagster/dagster.yaml turns the "join the community" pop-up off.
    assert data["shouldShowNux"] is False
