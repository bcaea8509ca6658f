"""The chaos suite's pieces against a whole order path with no kills: every check comes out clean.

Every part is real and its own process where it is in production: the exchange simulator, the
FIX bridge, the outbox relay, a stream worker (settlement, conflation, candles), the payment
gateway; the API is served by uvicorn in this process over plain HTTP. Traders are made through
the API (signup, TOTP, KYC, a deposit through the gateway, shares bought through the exchange);
then ~20 s of order load and SSE watchers, the end of day, and every check of tests/chaos.
Last, two tamperings show the checks see what they are meant to see.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pydantic import SecretStr

from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings
from fixbridge.simulator.config import trade_report_dir
from fixbridge.simulator.journal import trading_day
from fixbridge.simulator.trade_report import report_path
from pipelines.trade_report import load_trade_report
from tests.browser.chromium import ARTIFACTS_DIR
from tests.chaos import checks
from tests.chaos.figures import KillEvent, write_figures
from tests.chaos.load import LoadPlan, OrderLoad, Outcome, summarize
from tests.chaos.sse_watch import SseWatch, problems
from tests.chaos.users import prepare_traders, tick_sizes
from tests.conftest import free_port
from tests.integration.api.conftest import serve
from tests.integration.api.test_funds_support import GATEWAY_SECRET, gateway_process
from tests.integration.test_bridge_harness import (
    Service,
    bridge_settings,
    services,
    wait_for_logons,
    wait_for_port,
)
from tests.integration.worker_support import running_worker, worker_topics

__all__ = ["bridge_settings", "services"]  # fixtures used below

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SYMBOLS = ("ACME", "ALPHA")
TRADERS = 4
SSE_CLIENTS = 4
LOAD_S = 20.0
HEARTBEAT_S = 1.0
# Heartbeats every second: a stream silent three times as long is a stall.
SILENCE_MAX_S = 3 * HEARTBEAT_S


@dataclasses.dataclass(frozen=True)
class System:
    """The running system: settings (with the test's database), the API URL, the exchange."""

    settings: Settings
    url: str
    exchange: Service


@pytest.fixture
def system(
    bridge_settings: Settings,
    db_dsn: str,
    new_topic: Callable[[int], str],
    services: Callable[[str, Settings, str], Service],
    tmp_path: Path,
) -> Iterator[System]:
    """Exchange, bridge, relay, stream worker, gateway and API on this test's database."""
    with (
        worker_topics(bridge_settings, new_topic) as made,
        gateway_process(tmp_path / "gateway.log", confirm_delay_ms=50) as gateway,
    ):
        api_port = free_port()
        settings = bridge_settings.model_copy(
            update={
                "api_port": api_port,
                "market_always_open": True,
                "topic_ticks": made.ticks,
                "topic_conflated": made.conflated,
                "topic_orders": made.orders,
                "topic_execution_reports": made.execution_reports,
                "gateway_port": gateway.port,
                "api_public_url": f"http://127.0.0.1:{api_port}",
                "gateway_webhook_secret": SecretStr(GATEWAY_SECRET),
                "stream_heartbeat_s": HEARTBEAT_S,
            }
        )
        asyncio.run(_seed(db_dsn, settings))
        exchange = services("fixbridge.simulator", settings, "exchange")
        exchange.start()
        wait_for_port(settings.sim_fix_port)
        bridge = services("fixbridge.bridge", settings, "bridge")
        bridge.start()
        services("streams.outbox_relay", settings, "relay").start()
        wait_for_logons(bridge, 1)
        with running_worker(settings, db_dsn, made, tmp_path):
            api = serve(settings)
            try:
                yield System(settings, next(api), exchange)
            finally:
                api.close()


async def _seed(db_dsn: str, settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))


async def test_a_run_without_kills_passes_every_chaos_check(system: System, tmp_path: Path) -> None:
    settings, url = system.settings, system.url
    traders = await prepare_traders(
        url, settings, TRADERS, verify=False, shares=dict.fromkeys(SYMBOLS, 20)
    )
    assert all(t.shares == {"ACME": 20, "ALPHA": 20} for t in traders)
    load = OrderLoad(
        url,
        traders,
        await tick_sizes(settings, SYMBOLS),
        LoadPlan(symbols=SYMBOLS, interval_s=1.1),
        verify=False,
    )
    watch = SseWatch(
        url, traders, SYMBOLS, SSE_CLIENTS, verify=False, read_timeout_s=5 * HEARTBEAT_S
    )
    records, logs = await asyncio.gather(load.run(LOAD_S), watch.run(LOAD_S))

    summary = summarize(records, load.started_at, load.stopped_at)
    assert summary.failed == 0 and summary.accepted >= TRADERS * 5, summary
    assert {r.body["type"] for r in records} == {"MARKET", "LIMIT"}
    assert {r.body["side"] for r in records} == {"BUY", "SELL"}
    assert problems(logs, silence_max_s=SILENCE_MAX_S) == []
    assert all(any(e.type == "price" for e in log.events) for log in logs)

    assert system.exchange.process is not None
    found = checks.run_all_checks(
        settings,
        records,
        (load.started_at, load.stopped_at),
        checks.signal_pid(system.exchange.process.pid),
    )
    assert {k: v for k, v in found.items() if v} == {}, json.dumps(found, indent=1)[:4000]
    assert len(found) == 7
    view = checks.read_exchange_view(settings)
    accepted = [r for r in records if r.outcome is Outcome.ACCEPTED]
    assert view.fills and {r.order_id for r in accepted} <= view.state.keys()
    assert any(r.body["side"] == "SELL" for r in accepted)
    # The reconciliation compared the day's real fills, not two empty sides.
    day = trading_day(time.time_ns(), ZoneInfo(settings.market_tz))
    report = load_trade_report(report_path(trade_report_dir(settings), day))
    assert report.rows.height == len(view.fills)
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS_DIR / "chaos_pieces.json").write_text(
        json.dumps(
            {
                "load": summary.as_json(),
                "exchange_fills": len(view.fills),
                "sse": [log.as_json() for log in logs],
            },
            indent=1,
        )
    )

    # The figures of a made-up kill in the middle of the run, from the real records.
    middle = (load.started_at + load.stopped_at) / 2
    markdown, data = write_figures([KillEvent("none", middle, middle + 1)], records, tmp_path)
    assert json.loads(data.read_text())["kills"][0]["failed"] == 0
    assert "| none |" in markdown.read_text()

    # Tampered: an order whose row says less than the exchange, a refusal that was placed.
    filled = next(r for r in accepted if view.state[str(r.order_id)][1] > 0)
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute(
            "UPDATE orders SET status = 'ACCEPTED', cum_qty = 0, avg_px = NULL WHERE id = %s",
            (filled.order_id,),
        )
    assert len(checks.wait_orders_match_exchange(settings, [filled], wait_s=0)) == 1
    lying = dataclasses.replace(filled, outcome=Outcome.REFUSED, error_code="made_up")
    refused = checks.refusal_problems(settings, [lying], load.started_at, time.time())
    assert any("refused (made_up) but placed" in p for p in refused), refused
