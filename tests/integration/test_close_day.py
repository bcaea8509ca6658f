"""``python -m infra close-day`` against a supervised exchange simulator: the day's report lands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from core.settings import Settings, settings_env
from fixbridge.simulator.config import trade_report_dir
from infra import supervise
from infra.close_day import EXCHANGE
from tests.conftest import free_port

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 90.0
POLL_S = 0.2


@pytest.fixture
def supervised_exchange(
    running_stack: Settings,
    new_topic: Callable[[int], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Settings]:
    """The simulator alone under supervisord, as `make up` runs it; stopped at the end."""
    # A short folder: supervisord's control socket lives in it, and socket paths are short.
    settings = running_stack.model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("cd"),
            "topic_ticks": new_topic(1),
            "sim_fix_port": free_port(),
            "sim_tick_workers": 0,
            "sim_tick_rate_per_s": 100,
            "shutdown_timeout_s": 10.0,
        }
    )
    program = supervise.Program(EXCHANGE, [sys.executable, "-m", "fixbridge.simulator"])
    supervise.start(settings, [program])
    try:
        # The simulator makes its landing folder once its end-of-day signal is handled.
        deadline = time.monotonic() + START_TIMEOUT_S
        while not trade_report_dir(settings).is_dir():
            if time.monotonic() > deadline:
                log = supervise.service_log(settings, EXCHANGE).read_text(errors="replace")
                raise AssertionError(f"the simulator did not start:\n{log[-4000:]}")
            time.sleep(POLL_S)
        yield settings
    finally:
        supervise.stop(settings)


def test_close_day_lands_the_days_trade_report(supervised_exchange: Settings) -> None:
    settings = supervised_exchange
    landing = trade_report_dir(settings)
    assert list(landing.iterdir()) == []

    result = subprocess.run(
        [sys.executable, "-m", "infra", "close-day"],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    [report] = [p for p in landing.iterdir() if p.suffix == ".csv"]
    assert f"trade report landed: {report}" in result.stderr
    assert report.read_text().splitlines()[0] == "exec_id,cl_ord_id,symbol,side,qty,price,exec_time"
    log = supervise.service_log(settings, EXCHANGE).read_text(errors="replace")
    assert "end of day" in log
