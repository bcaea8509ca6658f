"""/livez: an agent is stalled when silent past the limit while its topic has lag."""

from __future__ import annotations

import time

import pytest

from streams import metrics
from streams.app import settings

LIMIT_S = settings.streams_stall_s
SLACK_S = 5.0  # more than a test takes between reading the clock and the agent's start


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_last_seen_s", {})
    monkeypatch.setattr(metrics, "_agent_topics", {})
    monkeypatch.setattr(metrics, "_lag_sources", {})


def test_an_agent_stuck_before_its_first_batch_is_stalled_once_the_limit_passes() -> None:
    start = time.time()
    metrics.add_lag_source("ticks", lambda: 5, ["candles"])  # watched from now

    assert metrics.stalled_agents(start + LIMIT_S - 1, {"ticks": 5}) == []
    assert metrics.stalled_agents(start + LIMIT_S + SLACK_S, {"ticks": 5}) == ["candles"]


def test_a_handled_batch_restarts_the_silence() -> None:
    metrics.add_lag_source("ticks", lambda: 5, ["candles"])
    start = time.time()
    metrics._last_seen_s["candles"] = start - 10 * LIMIT_S  # long silent
    metrics.observe("candles", 10)

    assert metrics.stalled_agents(start + LIMIT_S - 1, {"ticks": 5}) == []


def test_an_agent_is_judged_by_the_lag_of_its_own_topic() -> None:
    metrics.add_lag_source("ticks", lambda: 0, ["candles"])
    metrics.add_lag_source("reports", lambda: 9, ["settle"])
    later = time.time() + LIMIT_S + SLACK_S

    assert metrics.stalled_agents(later, {"ticks": 0, "reports": 9}) == ["settle"]


def test_after_a_quiet_spell_new_lag_does_not_find_the_agent_stalled_at_once() -> None:
    metrics.add_lag_source("ticks", lambda: 0, ["candles"])
    quiet_end = time.time() + 10 * LIMIT_S
    assert metrics.stalled_agents(quiet_end, {"ticks": 0}) == []  # a probe during the quiet

    assert metrics.stalled_agents(quiet_end + 1, {"ticks": 3}) == []
    assert metrics.stalled_agents(quiet_end + LIMIT_S + 1, {"ticks": 3}) == ["candles"]
