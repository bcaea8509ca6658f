"""The web page in a real headless Chromium against the whole running system.

Every part is real: the API (serving the page at /app/), PostgreSQL, Kafka, the exchange
simulator (ticks and fills), the FIX bridge, the outbox relay and a stream worker (conflation,
candles, settlement). The browser logs in with a TOTP code, watches prices move and candles drawn,
buys, and sees the fill in the blotter and the holding in the portfolio; a screenshot is kept.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, expect

from api.security.passwords import hash_password
from api.security.tokens import issue_access_token
from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings
from tests.browser.chromium import ARTIFACTS_DIR, headless_chromium, is_png
from tests.conftest import free_port
from tests.integration.api.conftest import MakeUser, api_settings, make_user, serve
from tests.integration.test_bridge_harness import (
    Service,
    bridge_settings,
    services,
    wait_for_logons,
    wait_for_port,
)
from tests.integration.worker_support import WorkerTopics, running_worker, worker_topics

__all__ = ["api_settings", "bridge_settings", "make_user", "services"]  # fixtures used below

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

PASSWORD = "correct horse battery staple"
SYMBOL = "ACME"  # first in the instrument list: the page's default chart symbol
QUANTITY = 10
LIMIT_PRICE = "3000.00"  # far above ACME's ~1520: marketable, the exchange fills it at once
# Bounded waits (ms) for concrete text on the page: a broken flow fails, never hangs.
LOGIN_WAIT_MS = 20_000
PRICES_WAIT_MS = 90_000  # the stream worker joins its group and conflates first ticks
CANDLES_WAIT_MS = 60_000
FILL_WAIT_MS = 90_000
SCREENSHOT = ARTIFACTS_DIR / "web.png"
WATCHLIST_SIZE = 10  # tiles in the ticker (api/static/js/app.js)
_DECIMAL = re.compile(r"^\d+\.\d+$")


@pytest.fixture
def system(
    bridge_settings: Settings,
    db_dsn: str,
    new_topic: Callable[[int], str],
    services: Callable[[str, Settings, str], Service],
    tmp_path: Path,
) -> Iterator[tuple[Settings, str]]:
    """Exchange, bridge, relay, stream worker and API on this test's database and topics."""
    with worker_topics(bridge_settings, new_topic) as made:
        settings = _settings_for(bridge_settings, made)
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
                yield settings, next(api)
            finally:
                api.close()


def _settings_for(base: Settings, made: WorkerTopics) -> Settings:
    return base.model_copy(
        update={
            "api_port": free_port(),
            "market_always_open": True,
            "topic_ticks": made.ticks,
            "topic_conflated": made.conflated,
            "topic_orders": made.orders,
            "topic_execution_reports": made.execution_reports,
        }
    )


async def _seed(db_dsn: str, settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))


async def _trader(make_user: MakeUser, settings: Settings, db_dsn: str) -> tuple[str, int]:
    """A KYC-verified user with cash and a real password; return (email, user id)."""
    made = await make_user(cash=Decimal("100000"), two_factor=False)
    password_hash = await hash_password(settings, PASSWORD)
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, made.id)
        )
    return made.email, made.id


def _enroll_totp(url: str, settings: Settings, user_id: int) -> pyotp.TOTP:
    """Enroll and verify TOTP through the API, as an authenticator app's owner would."""
    headers = {"Authorization": f"Bearer {issue_access_token(settings, user_id, two_factor=False)}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        enrolled = http.post("/v1/auth/2fa/enroll", headers=headers)
        assert enrolled.status_code == 200, enrolled.text
        totp = pyotp.TOTP(enrolled.json()["secret"])
        verified = http.post("/v1/auth/2fa/verify", headers=headers, json={"code": totp.now()})
        assert verified.status_code == 200, verified.text
    return totp


def _wait_for(page: Page, script: str, what: str, timeout_ms: int) -> None:
    try:
        page.wait_for_function(script, timeout=timeout_ms)
    except Exception as error:  # noqa: BLE001 - re-raised as a failure that names the wait
        pytest.fail(f"waited {timeout_ms} ms for {what}: {error}")


def test_the_web_page_logs_in_shows_live_prices_and_candles_and_fills_an_order(
    system: tuple[Settings, str], make_user: MakeUser, db_dsn: str
) -> None:
    settings, url = system
    email, user_id = asyncio.run(_trader(make_user, settings, db_dsn))
    totp = _enroll_totp(url, settings, user_id)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    problems: list[str] = []

    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        try:
            page.goto(f"{url}/app/")
            page.fill("#login-email", email)
            page.fill("#login-password", PASSWORD)
            # The enrollment used this 30 s step's code, and a code works once: the next step's
            # code is inside the server's window.
            page.fill("#login-totp", totp.at(time.time(), counter_offset=1))
            page.click("#login-form button[type=submit]")
            expect(page.locator("#app-view")).to_be_visible(timeout=LOGIN_WAIT_MS)
            expect(page.locator("#session-email")).to_have_text(email)

            tile = f'.quote[data-symbol="{SYMBOL}"]'
            # A first price, then a different one: the ticker moves with the stream.
            _wait_for(
                page,
                f"Number(document.querySelector('{tile}')?.dataset.updates) >= 2",
                "the ticker to show a price change",
                PRICES_WAIT_MS,
            )
            expect(page.locator(f"{tile} .price")).to_have_text(_DECIMAL)

            _wait_for(
                page,
                "document.querySelector('#chart').dataset.loadedInterval === '1m'"
                " && Number(document.querySelector('#chart').dataset.candles) >= 1",
                "1m candles drawn",
                CANDLES_WAIT_MS,
            )
            assert page.locator("#chart canvas").count() > 0
            page.click('#intervals button[data-interval="5m"]')
            _wait_for(
                page,
                "document.querySelector('#chart').dataset.loadedInterval === '5m'"
                " && Number(document.querySelector('#chart').dataset.candles) >= 1",
                "5m candles drawn after switching the interval",
                CANDLES_WAIT_MS,
            )

            page.fill("#order-symbol", SYMBOL)
            page.select_option("#order-side", "BUY")
            page.select_option("#order-type", "LIMIT")
            page.fill("#order-quantity", str(QUANTITY))
            page.fill("#order-price", LIMIT_PRICE)
            page.click("#order-submit")
            row = page.locator("#blotter tbody tr", has_text=SYMBOL)
            expect(row).to_have_count(1, timeout=LOGIN_WAIT_MS)
            expect(row.locator("td.status")).to_have_text("FILLED", timeout=FILL_WAIT_MS)

            holding = page.locator(f'#portfolio tbody tr[data-symbol="{SYMBOL}"] td')
            expect(holding.nth(1)).to_have_text(str(QUANTITY), timeout=FILL_WAIT_MS)
            expect(holding.nth(3)).to_have_text(_DECIMAL)
            expect(page.locator("#order-message")).to_contain_text("FILLED")

            # A symbol off the ticker: the chart loads it and the price stream carries it too.
            other = page.locator("#chart-symbol option").nth(WATCHLIST_SIZE).inner_text()
            page.select_option("#chart-symbol", other)
            _wait_for(
                page,
                f"document.querySelector('#chart').dataset.symbol === '{other}'"
                " && document.querySelector('#chart').dataset.lastPrice !== undefined",
                f"a live price of {other} drawn on its chart",
                PRICES_WAIT_MS,
            )
            expect(page.locator("#stream-state")).to_have_text("live")

            # Back to ACME at a short interval, so the screenshot shows a row of candles.
            page.click(f'.quote[data-symbol="{SYMBOL}"]')
            expect(page.locator("#chart-symbol")).to_have_value(SYMBOL)
            page.click('#intervals button[data-interval="1s"]')
            _wait_for(
                page,
                "document.querySelector('#chart').dataset.loadedInterval === '1s'"
                " && Number(document.querySelector('#chart').dataset.candles) >= 2",
                "1s candles drawn",
                CANDLES_WAIT_MS,
            )
        finally:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            print(f"screenshot: {SCREENSHOT}")  # noqa: T201 - the run names its artifact

    assert is_png(SCREENSHOT), SCREENSHOT
    assert problems == []
