"""The orders benchmark without services: percentiles, tallies, turns, plans, env and goals."""

from __future__ import annotations

import argparse
import math
from decimal import Decimal

import pytest

from bench import orders_api
from bench.__main__ import _levels
from bench.exceptions import BenchError
from bench.orders_api import LoadFigures, OrdersPlan, RoundRobin, Tally, percentile
from bench.orders_http import Answer, HttpError
from bench.orders_setup import (
    BenchDatabase,
    BenchUser,
    served_settings,
    server_command,
)
from bench.report import HostInfo, Result, Row
from core.settings import Settings, settings_env

HOST = HostInfo(nproc=2, cpu_model="test cpu")


def _figures(**changes: object) -> LoadFigures:
    base: dict[str, object] = {
        "orders": 100,
        "non_2xx": 0,
        "errors": 0,
        "elapsed_s": 2.0,
        "p50_ms": 5.0,
        "p90_ms": 8.0,
        "p99_ms": 12.0,
        "max_ms": 20.0,
    }
    return LoadFigures(**(base | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("q", "expected"), [(0.01, 1.0), (0.5, 50.0), (0.9, 90.0), (0.99, 99.0), (1.0, 100.0)]
)
def test_percentile_is_nearest_rank(q: float, expected: float) -> None:
    assert percentile([float(v) for v in range(1, 101)], q) == expected


def test_percentile_of_nothing_is_nan_and_of_one_value_is_that_value() -> None:
    assert math.isnan(percentile([], 0.99))
    assert percentile([7.0], 0.5) == percentile([7.0], 0.99) == 7.0


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5])
def test_percentile_refuses_a_quantile_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        percentile([1.0], q)


def test_tally_counts_2xx_as_orders_and_keeps_the_first_failure() -> None:
    tally = Tally()
    for latency_s in (0.003, 0.001, 0.002):
        tally.answer(Answer(201, b"{}"), latency_s)
    tally.answer(Answer(422, b"insufficient funds"), 0.004)
    tally.answer(Answer(500, b"boom"), 0.005)
    tally.error(HttpError("refused"))

    figures = tally.figures(elapsed_s=0.5)

    assert (figures.orders, figures.non_2xx, figures.errors) == (3, 2, 1)
    assert figures.orders_per_s == pytest.approx(6.0)
    assert figures.p50_ms == pytest.approx(2.0)
    assert figures.max_ms == pytest.approx(3.0)
    assert figures.first_failure == "HTTP 422: insufficient funds"


def test_check_load_refuses_any_failure_or_no_orders() -> None:
    orders_api.check_load("fine", _figures())
    for broken in (_figures(non_2xx=1), _figures(errors=1), _figures(orders=0)):
        with pytest.raises(BenchError, match="broken"):
            orders_api.check_load("broken", broken)


def test_round_robin_cycles_users_with_a_fresh_key_each_time() -> None:
    turns = RoundRobin([BenchUser(1, "a"), BenchUser(2, "b")])

    headers = [turns.next_headers() for _ in range(4)]

    assert [h["Authorization"] for h in headers] == ["Bearer a", "Bearer b"] * 2
    assert len({h["X-Idempotency-Key"] for h in headers}) == 4
    assert all(h["Content-Type"] == "application/json" for h in headers)


@pytest.mark.parametrize(
    "changes",
    [
        {"concurrency_levels": ()},
        {"concurrency_levels": (0, 4)},
        {"duration_s": 0},
        {"users": 0},
        {"warmup_s": -1.0},
        {"pool_size_max": 0},
        {"api_workers": 0},
    ],
)
def test_plan_refuses_nonsense(changes: dict[str, object]) -> None:
    base: dict[str, object] = {"concurrency_levels": (1, 4), "duration_s": 2, "users": 10}
    with pytest.raises(ValueError, match="must"):
        OrdersPlan(**(base | changes))  # type: ignore[arg-type]


def test_cli_reads_concurrency_levels() -> None:
    assert _levels("1,4,16,64") == (1, 4, 16, 64)
    for bad in ("1,x", "0,4", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=r"1,4,16,64|positive"):
            _levels(bad)


def test_served_settings_move_every_limit_out_of_the_way() -> None:
    served = served_settings(Settings(), "bench_x", pool_size_max=7)

    assert served.pg_database == "bench_x"
    assert served.pg_pool_size_max == 7
    assert served.market_always_open
    assert served.rate_limit_user_per_minute >= 1_000_000
    assert served.orders_per_minute_max >= 1_000_000
    assert served.order_value_max >= Decimal(1_000_000)


def test_settings_env_makes_a_child_read_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        pg_port=12345,
        market_always_open=True,
        market_profile="NSE",
        market_open="10:00",
        order_value_max=Decimal("123.45"),
    )
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)

    assert Settings() == settings


def test_pgbench_variables_carry_the_users_and_the_apis_limits() -> None:
    settings = Settings()
    users = (BenchUser(5, "t5"), BenchUser(6, "t6"), BenchUser(7, "t7"))

    variables = orders_api.pgbench_variables(BenchDatabase("bench_x", settings, users))

    assert (variables["user_min"], variables["user_max"]) == ("5", "7")
    # The basis points order_place gets from the API: the default 500 bps band and 3 bps fee.
    assert (variables["band_bps"], variables["fee_rate_bps"]) == ("500", "3")
    assert variables["value_max"] == str(settings.order_value_max)
    assert variables["rate_max"] == str(settings.orders_per_minute_max)
    assert variables["symbol"] == orders_api.SYMBOL
    assert variables["topic"] == settings.topic_orders
    assert (
        variables["run"] != orders_api.pgbench_variables(BenchDatabase("x", settings, users))["run"]
    )


def _row(name: str, value: float, ceiling: Result | None = None, **details: float) -> Row:
    result = Result.now(name, value, orders_api.UNIT, {"concurrency": 4}, HOST, details)
    return Row(result, ceiling)


def test_goals_compare_order_place_and_the_api_with_the_lean_order_and_p99_at_half_peak() -> None:
    lean_1, lean_4 = _row("pgbench.lean_order", 800.0), _row("pgbench.lean_order", 1250.0)
    pg_1 = _row("pgbench.place_order", 400.0, lean_1.result)
    pg_4 = _row("pgbench.place_order", 1000.0, lean_4.result)
    api_1 = _row("api.orders", 300.0, lean_1.result)
    api_4 = _row("api.orders", 450.0, lean_4.result)
    half = _row("api.orders.half_peak", 225.0, api_4.result, p99_ms=41.0)

    lines = orders_api.goals([lean_1, pg_1, api_1, lean_4, pg_4, api_4, half])

    assert lines[0].startswith("peak pgbench order_place 1,000 orders/s / peak lean order 1,250")
    assert "= 0.80 (goal >= 0.80: met)" in lines[0]
    assert lines[1].startswith("peak API 450 orders/s / peak lean order 1,250 = 0.36")
    assert "NOT met" in lines[1]
    assert "41.0 ms" in lines[2]
    assert lines[2].endswith("(goal <= 50 ms: met)")


def test_one_worker_runs_python_m_api_and_more_run_uvicorns_workers() -> None:
    settings = Settings(api_host="127.0.0.1", api_port=8123)

    assert server_command(settings, 1)[1:] == ["-m", "api"]
    several = server_command(settings, 2)
    assert several[1:5] == ["-m", "uvicorn", "api.main:create_app", "--factory"]
    assert several[several.index("--workers") + 1] == "2"
    assert several[several.index("--port") + 1] == "8123"
    with pytest.raises(ValueError, match="at least one worker"):
        server_command(settings, 0)
