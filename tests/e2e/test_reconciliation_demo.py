"""Reconciliation can be tried at once: minutes after the run command, Dagster shows a
succeeded run (the simulator's first demo close lands a report; the sensor starts the run)."""

from __future__ import annotations

import time

import pytest

from core.settings import Settings
from infra import supervise
from tests.chaos.probes import RUN_IN_PROGRESS, dagster_runs

pytestmark = pytest.mark.e2e

SHOWN_WITHIN_S = 300.0
# The test may run long after the system started; it waits at most this past the bound.
WAIT_SLACK_S = 60.0
POLL_S = 5.0
RECONCILIATION_JOB = "reconciliation"  # dagster_project/recon_automation.py


@pytest.mark.timeout(SHOWN_WITHIN_S + WAIT_SLACK_S + 60)
def test_a_succeeded_reconciliation_run_shows_within_five_minutes_of_the_run_command(
    topology: Settings,
) -> None:
    started_at = supervise.pid_file(topology).stat().st_mtime  # when supervisord started
    while True:
        runs = dagster_runs(topology, ("SUCCESS",)) or []  # None: the UI is still starting
        done = any(run["jobName"] == RECONCILIATION_JOB for run in runs)
        if done or time.time() > started_at + SHOWN_WITHIN_S + WAIT_SLACK_S:
            break
        time.sleep(POLL_S)

    reconciliations = [run for run in runs if run["jobName"] == RECONCILIATION_JOB]
    others = dagster_runs(topology, ("FAILURE", "CANCELED", *RUN_IN_PROGRESS))
    assert reconciliations, f"no succeeded reconciliation run in the Dagster UI; others: {others}"
    first_end = min(float(str(run["endTime"])) for run in reconciliations)
    assert first_end - started_at <= SHOWN_WITHIN_S, f"{first_end - started_at:.0f} s after start"
