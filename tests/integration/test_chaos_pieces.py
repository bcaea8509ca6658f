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
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
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
from tests.chaos.load import (
    LoadPlan,
    OrderLoad,
    Outcome,
    find_failed,
    place_with_retries,
    summarize,
)
from tests.chaos.sse_watch import CONNECT, SseWatch, analyse, problems
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
SWALLOW_S = 1.5


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


class CuttableProxy:
    """A TCP proxy to the API that can swallow answers and cut connections, as a dying front."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cuts = 0
        # While set, what the API sends is dropped: requests arrive, their answers are lost.
        self.swallow = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen on a free port; return the proxy's base URL."""
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, down: bool) -> None:
            with contextlib.suppress(OSError):
                while chunk := await src.read(65536):
                    if down and self.swallow:
                        continue
                    dst.write(chunk)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        """Close every connection open now and stop swallowing (new ones are accepted)."""
        self.cuts += 1
        self.swallow = False
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        """Stop listening and cut what is left."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _seed(db_dsn: str, settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))


async def test_a_run_without_kills_passes_every_chaos_check(system: System, tmp_path: Path) -> None:
    settings, url = system.settings, system.url
    traders = await prepare_traders(
        url, settings, TRADERS, verify=False, shares=dict.fromkeys(SYMBOLS, 20)
    )
    assert all(t.shares == {"ACME": 20, "ALPHA": 20} for t in traders)
    # Load and watchers go through a proxy that, half-way, swallows the answers for a while
    # and then cuts every connection: orders must be retried with their key, streams resumed.
    proxy = CuttableProxy(settings.api_port)
    proxy_url = await proxy.start()
    load = OrderLoad(
        proxy_url,
        traders,
        await tick_sizes(settings, SYMBOLS),
        LoadPlan(symbols=SYMBOLS, interval_s=1.1),
        verify=False,
    )
    watch = SseWatch(
        proxy_url,
        traders,
        SYMBOLS,
        SSE_CLIENTS,
        verify=False,
        read_timeout_s=5 * HEARTBEAT_S,
    )

    async def cut_half_way() -> None:
        await asyncio.sleep(LOAD_S / 2)
        proxy.swallow = True
        # Longer than the load's interval: every trader's next order is placed, its answer lost.
        await asyncio.sleep(SWALLOW_S)
        proxy.cut()

    try:
        records, logs, _ = await asyncio.gather(load.run(LOAD_S), watch.run(LOAD_S), cut_half_way())
    finally:
        await proxy.close()

    summary = summarize(records, load.started_at, load.stopped_at)
    assert summary.failed == 0 and summary.accepted >= TRADERS * 5, summary
    # The orders whose answer was lost were retried with their key and answered, once each.
    retried = [r for r in records if r.attempts > 1]
    assert len(retried) >= TRADERS - 1 and all(r.outcome is Outcome.ACCEPTED for r in retried)
    assert {r.body["type"] for r in records} == {"MARKET", "LIMIT"}
    assert {r.body["side"] for r in records} == {"BUY", "SELL"}
    assert problems(logs, silence_max_s=SILENCE_MAX_S) == []
    for log in logs:
        assert [e.type for e in log.events].count(CONNECT) == 2, log.drops
        assert analyse(log.events).resyncs == 1
        assert any(e.type == "price" for e in log.events)

    # Orders refused by rule (stored with their key) and by validation (nothing stored).
    async with httpx.AsyncClient(base_url=url) as http:
        refusals = [
            await place_with_retries(http, trader, body)
            for trader, body in (
                (
                    traders[0],
                    {"symbol": "ALPHA", "side": "SELL", "quantity": 500, "type": "MARKET"},
                ),
                (
                    traders[1],
                    {
                        "symbol": "ACME",
                        "side": "BUY",
                        "quantity": 640,
                        "type": "LIMIT",
                        "price": "1550.00",
                    },
                ),
                (
                    traders[2],
                    {
                        "symbol": "ACME",
                        "side": "BUY",
                        "quantity": 1,
                        "type": "LIMIT",
                        "price": "1500.03",
                    },
                ),
            )
        ]
    assert [r.outcome for r in refusals] == [Outcome.REFUSED] * 3
    assert refusals[0].error_code == "insufficient_shares"
    assert refusals[1].error_code in {"insufficient_funds", "order_value_limit"}
    assert refusals[2].error_code == "invalid_tick"
    records = [*records, *refusals]

    assert system.exchange.process is not None
    found = checks.run_all_checks(
        settings,
        records,
        (load.started_at, time.time()),
        checks.signal_pid(system.exchange.process.pid),
    )
    assert {k: v for k, v in found.items() if v} == {}, json.dumps(found, indent=1)[:4000]
    assert len(found) == 7

    # A client whose request failed asks by its client order id: an order placed after all is
    # found (and counts as told), one never placed is not.
    placed = next(r for r in records if r.outcome is Outcome.ACCEPTED)
    lost_answer = dataclasses.replace(placed, outcome=Outcome.FAILED, order_id=None)
    never_placed = dataclasses.replace(
        lost_answer, body={**placed.body, "client_order_id": "never-placed-0001"}
    )
    others = [r for r in records if r is not placed]
    window = (load.started_at, time.time())
    told = checks.refusal_problems(settings, [*others, lost_answer, never_placed], *window)
    assert told == [f"order {placed.order_id} of user {placed.user_id}: placed, no client was told"]
    await find_failed(url, traders, [lost_answer, never_placed], verify=True)
    assert (lost_answer.found_order_id, never_placed.found_order_id) == (placed.order_id, None)
    assert checks.refusal_problems(settings, [*others, lost_answer, never_placed], *window) == []

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

    # Tampered: an order whose row says less than the exchange, a refusal that was placed...
    filled = next(r for r in accepted if view.state[str(r.order_id)][1] > 0)
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute(
            "UPDATE orders SET status = 'ACCEPTED', cum_qty = 0, avg_px = NULL WHERE id = %s",
            (filled.order_id,),
        )
    assert len(checks.wait_orders_match_exchange(settings, [filled], wait_s=0)) == 1
    lying = dataclasses.replace(filled, outcome=Outcome.REFUSED, error_code="made_up")
    # ... a report that lost a fill, and a wallet that no longer equals its ledger accounts.
    csv = report_path(trade_report_dir(settings), day)
    short = tmp_path / csv.name
    short.write_text("".join(csv.read_text().splitlines(keepends=True)[:-1]))
    breaks = checks.reconciliation_problems(settings, short, day)
    assert len(breaks) == 1 and "MISSING_EXTERNAL" in breaks[0], breaks
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute(
            "UPDATE wallets SET balance = balance + 1 WHERE user_id = %s", (filled.user_id,)
        )
    assert [p.split(":")[0] for p in checks.invariant_problems(settings)] == [
        "wallet_matches_ledger"
    ]
    refused = checks.refusal_problems(settings, [lying], load.started_at, time.time())
    assert any("refused (made_up) but placed" in p for p in refused), refused
