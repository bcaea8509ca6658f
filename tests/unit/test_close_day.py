"""``python -m infra close-day`` waits for a new trade report, and says what is wrong if none."""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.settings import Settings
from fixbridge.simulator.config import trade_report_dir
from fixbridge.simulator.journal import trading_day
from fixbridge.simulator.trade_report import report_path
from infra.close_day import close_day, signal_exchange
from infra.procs import InfraError

TIMEOUT_S = 0.5


def _settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, sim_close_day_timeout_s=TIMEOUT_S)


def _todays_report(settings: Settings) -> Path:
    day = trading_day(time.time_ns(), ZoneInfo(settings.market_tz))
    return report_path(trade_report_dir(settings), day)


class FakeSimulator:
    """Writes today's report when signalled, replacing the file as the simulator does."""

    def __init__(self, settings: Settings) -> None:
        self.path = _todays_report(settings)
        self.signals = 0

    def __call__(self) -> None:
        self.signals += 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.path.with_suffix(".tmp")
        fresh.write_text(f"exec_id\n{self.signals}\n")
        fresh.replace(self.path)


def test_close_day_returns_the_report_once_it_lands(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    simulator = FakeSimulator(settings)

    assert close_day(settings, simulator) == simulator.path
    # A second close of the same day rewrites the report: that is a new report too.
    assert close_day(settings, simulator) == simulator.path
    assert simulator.signals == 2


def test_close_day_fails_when_no_new_report_lands(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    stale = _todays_report(settings)
    stale.parent.mkdir(parents=True)
    stale.write_text("exec_id\n")

    with pytest.raises(InfraError, match="no new trade report"):
        close_day(settings, lambda: None)


def test_close_day_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="make up"):
        signal_exchange(_settings(tmp_path))
