"""A stranger joins through the web page and trades, in headless Chromium, against the whole system.

Every part is real: the API (serving the page at /app/, the simulated KYC provider inside it),
the payment gateway simulator, PostgreSQL, Kafka, the exchange simulator (ticks and fills), the
FIX bridge, the outbox relay and a stream worker (conflation, candles, settlement). The browser
signs up, enrols 2FA from the page's QR code (the test reads the key shown beside it and makes
codes with pyotp, as an authenticator app would), keeps its recovery codes, passes KYC, deposits
and withdraws, edits its watchlist, creates and revokes an API key, buys and sees the fill, then
logs out and back in. The test itself calls nothing outside the page, and the page nothing
outside the API. Access tokens live 30 s here, so the page renews its session many times on the
way. Screenshots of each step are kept.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, Route, expect

from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings
from tests.browser.chromium import ARTIFACTS_DIR, headless_chromium, is_png
from tests.conftest import free_port
from tests.integration.api.conftest import serve
from tests.integration.api.test_funds_support import funds_settings, gateway_process
from tests.integration.test_bridge_harness import (
    Service,
    bridge_settings,
    services,
    wait_for_logons,
    wait_for_port,
)
from tests.integration.worker_support import WorkerTopics, running_worker, worker_topics

__all__ = ["bridge_settings", "services"]  # fixtures used below

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PASSWORD = "a long demo passphrase 42"
SYMBOL = "ACME"  # first in the instrument list: first on the default watchlist
QUANTITY = 10
LIMIT_PRICE = "3000.00"  # far above ACME's ~1520: marketable, the exchange fills it at once
DEPOSIT = "100000.00"
WITHDRAWAL = "250.00"
ACCESS_TOKEN_TTL_S = 30
RECOVERY_CODES = 10
DEFAULT_WATCHLIST = 10  # BROKER_WATCHLIST_DEFAULT_COUNT's default
INTERVALS = ["1s", "1m", "5m", "15m", "1h", "1d", "1w", "1mo"]
# Candles fill at least this share of the chart's width once fitted.
FILL_MIN = 0.9
# Bounded waits (ms) for concrete state on the page: a broken flow fails, never hangs.
STEP_WAIT_MS = 20_000
KYC_WAIT_MS = 30_000
FUNDS_WAIT_MS = 30_000
PRICES_WAIT_MS = 90_000  # the stream worker joins its group and conflates first ticks
CANDLES_WAIT_MS = 60_000
FILL_WAIT_MS = 90_000
SHOTS = {
    name: ARTIFACTS_DIR / f"web-{name}.png"
    for name in ("signup", "2fa", "kyc", "funded", "filled", "relogin")
}
_DECIMAL = re.compile(r"^\d+\.\d+$")


@pytest.fixture
def system(
    bridge_settings: Settings,
    db_dsn: str,
    new_topic: Callable[[int], str],
    services: Callable[[str, Settings, str], Service],
    tmp_path: Path,
) -> Iterator[tuple[Settings, str]]:
    """Gateway, exchange, bridge, relay, stream worker and API on this test's database."""
    with (
        worker_topics(bridge_settings, new_topic) as made,
        gateway_process(tmp_path / "gateway.log", confirm_delay_ms=300) as gateway,
    ):
        settings = _settings_for(bridge_settings, made, gateway.port)
        asyncio.run(_seed(db_dsn, settings))
        services("fixbridge.simulator", settings, "exchange").start()
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


def _settings_for(base: Settings, made: WorkerTopics, gateway_port: int) -> Settings:
    with_api = base.model_copy(
        update={
            "api_port": free_port(),
            "market_always_open": True,
            "topic_ticks": made.ticks,
            "topic_conflated": made.conflated,
            "topic_orders": made.orders,
            "topic_execution_reports": made.execution_reports,
            "access_token_ttl_s": ACCESS_TOKEN_TTL_S,
            # The withdrawal fraud rule would refuse a brand-new account; it has its own tests.
            "new_account_days": 0,
            # The host is shared with other tests: a stall must not count as Redis lost.
            "redis_timeout_s": 2.0,
        }
    )
    return funds_settings(with_api, gateway_port)


async def _seed(db_dsn: str, settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))


def _wait_for(page: Page, script: str, what: str, timeout_ms: int) -> None:
    try:
        page.wait_for_function(script, timeout=timeout_ms)
    except Exception as error:  # noqa: BLE001 - re-raised as a failure that names the wait
        pytest.fail(f"waited {timeout_ms} ms for {what}: {error}")


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS[name]), full_page=True)


def _only_the_api(url: str, outside: list[str]) -> Callable[[Route], None]:
    def route(route: Route) -> None:
        # Anything else would be a CDN or a call home: refused, and remembered for the verdict.
        if route.request.url.startswith(f"{url}/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    return route


def _sign_up(page: Page, email: str) -> None:
    page.click("#show-signup")
    page.fill("#signup-email", email)
    page.fill("#signup-password", PASSWORD)
    _shot(page, "signup")
    page.click("#signup-submit")


def _enrol_two_factor(page: Page) -> pyotp.TOTP:
    """Read the key beside the QR code, check the code encodes it, answer with a code."""
    expect(page.locator("#twofa-view")).to_be_visible(timeout=STEP_WAIT_MS)
    expect(page.locator("#twofa-secret")).not_to_have_text("", timeout=STEP_WAIT_MS)
    secret = page.locator("#twofa-secret").inner_text().strip()
    uri = page.locator("#twofa-uri").text_content() or ""
    assert pyotp.parse_uri(uri).secret == secret
    assert int(page.locator("#twofa-qr").get_attribute("data-modules") or 0) >= 21
    _shot(page, "2fa")
    totp = pyotp.TOTP(secret)
    page.fill("#twofa-code", totp.now())
    page.click("#twofa-submit")
    expect(page.locator("#recovery-view")).to_be_visible(timeout=STEP_WAIT_MS)
    expect(page.locator("#recovery-codes li")).to_have_count(RECOVERY_CODES)
    page.click("#recovery-done")
    expect(page.locator("#app-view")).to_be_visible(timeout=STEP_WAIT_MS)
    expect(page.locator("#recovery-codes li")).to_have_count(0)
    return totp


def _pass_kyc(page: Page, national_id: str) -> None:
    expect(page.locator("#kyc-status")).to_have_attribute("data-status", "NONE")
    page.fill("#kyc-name", "Alice Example")
    page.fill("#kyc-dob", "1990-04-01")
    page.fill("#kyc-id", national_id)
    page.fill("#kyc-address", "1 Market Street, Mumbai")
    page.click("#kyc-submit")
    status = page.locator("#kyc-status")
    expect(status).to_have_attribute("data-status", "VERIFIED", timeout=KYC_WAIT_MS)
    expect(page.locator("#kyc-form")).to_be_hidden()
    _shot(page, "kyc")


def _move_money(page: Page, button: str, amount: str, kind: str, done: str) -> None:
    page.fill("#funds-amount", amount)
    page.click(button)
    row = page.locator("#intents tbody tr", has_text=kind).first
    expect(row).to_have_attribute("data-status", "SUCCEEDED", timeout=FUNDS_WAIT_MS)
    expect(page.locator("#funds-message")).to_contain_text(done)


def _fund(page: Page) -> None:
    _move_money(page, "#deposit", DEPOSIT, "Deposit", "credited")
    expect(page.locator('[data-field="wallet-available"]')).to_have_text(DEPOSIT)
    _move_money(page, "#withdraw", WITHDRAWAL, "Withdrawal", "paid out")
    expect(page.locator('[data-field="wallet-available"]')).to_have_text("99750.00")
    expect(page.locator('[data-field="cash-available"]')).to_have_text(
        "99750.00", timeout=STEP_WAIT_MS
    )
    _shot(page, "funded")


def _edit_watchlist(page: Page) -> str:
    """Add a symbol beyond the default list and drop the last default one; the ticker follows.

    Returns the dropped symbol: it is then off the ticker.
    """
    tiles = page.locator("#ticker .quote")
    expect(tiles).to_have_count(DEFAULT_WATCHLIST, timeout=STEP_WAIT_MS)
    added = page.locator("#chart-symbol option").nth(DEFAULT_WATCHLIST + 5).inner_text()
    dropped = tiles.nth(DEFAULT_WATCHLIST - 1).get_attribute("data-symbol")
    assert dropped is not None
    page.fill("#watchlist-add", added)
    page.click("#watchlist-form button")
    expect(page.locator(f'.quote[data-symbol="{added}"]')).to_be_visible(timeout=STEP_WAIT_MS)
    page.click(f'#watchlist li[data-symbol="{dropped}"] button')
    expect(page.locator(f'.quote[data-symbol="{dropped}"]')).to_have_count(0, timeout=STEP_WAIT_MS)
    expect(tiles).to_have_count(DEFAULT_WATCHLIST)
    # An unknown symbol is refused in words, and the list stays as it was.
    page.fill("#watchlist-add", "NOPE")
    page.click("#watchlist-form button")
    expect(page.locator("#watchlist-message")).to_have_text(
        "There is no instrument with that symbol.", timeout=STEP_WAIT_MS
    )
    return dropped


def _create_and_revoke_api_key(page: Page) -> None:
    page.fill("#key-name", "trading bot")
    page.click("#key-form button")
    expect(page.locator("#key-created")).to_be_visible(timeout=STEP_WAIT_MS)
    expect(page.locator("#key-secret")).to_have_text(re.compile(r"^bk_"))
    row = page.locator("#keys tbody tr", has_text="trading bot")
    expect(row).to_have_attribute("data-revoked", "0", timeout=STEP_WAIT_MS)
    row.locator("button").click()
    expect(row).to_have_attribute("data-revoked", "1", timeout=STEP_WAIT_MS)


def _fitted_at_every_interval(page: Page) -> None:
    """At each interval the candles (when there are any) fill the chart's width."""
    chart = "document.querySelector('#chart').dataset"
    for interval in INTERVALS:
        page.click(f'#intervals button[data-interval="{interval}"]')
        _wait_for(
            page,
            f"{chart}.loadedInterval === '{interval}' && Number({chart}.candles) >= 1"
            f" && {chart}.fitted === '{interval}'",
            f"{interval} candles drawn and fitted",
            CANDLES_WAIT_MS,
        )
        fill = float(page.evaluate(f"{chart}.fill"))
        assert fill >= FILL_MIN, f"{interval}: candles fill {fill:.0%} of the chart's width"


def _refused_in_words(page: Page) -> None:
    """A price that is not a number is refused with a sentence, not the validator's text."""
    page.fill("#order-symbol", SYMBOL)
    page.select_option("#order-type", "LIMIT")
    page.fill("#order-price", "abc")
    page.click("#order-submit")
    message = page.locator("#order-message")
    expect(message).to_have_text("Please check the limit price.", timeout=STEP_WAIT_MS)


def _buy_and_see_the_fill(page: Page) -> None:
    page.fill("#order-symbol", SYMBOL)
    page.select_option("#order-side", "BUY")
    page.select_option("#order-type", "LIMIT")
    page.fill("#order-quantity", str(QUANTITY))
    page.fill("#order-price", LIMIT_PRICE)
    page.click("#order-submit")
    row = page.locator("#blotter tbody tr", has_text=SYMBOL)
    expect(row).to_have_count(1, timeout=STEP_WAIT_MS)
    expect(row.locator("td.status")).to_have_text("FILLED", timeout=FILL_WAIT_MS)
    expect(page.locator("#order-message")).to_contain_text("FILLED")
    holding = page.locator(f'#portfolio tbody tr[data-symbol="{SYMBOL}"] td')
    expect(holding.nth(1)).to_have_text(str(QUANTITY), timeout=FILL_WAIT_MS)
    expect(holding.nth(3)).to_have_text(_DECIMAL)
    # Last follows the price stream: it reads as the ticker does (both move together).
    _wait_for(
        page,
        f"document.querySelector('#portfolio tbody tr[data-symbol=\"{SYMBOL}\"] td:nth-child(4)')"
        f".textContent === document.querySelector('.quote[data-symbol=\"{SYMBOL}\"] .price')"
        ".textContent",
        "the portfolio's Last to read as the ticker",
        STEP_WAIT_MS,
    )
    # The Day column: a row without a previous close and the total say so the same way.
    day_row = holding.nth(8).inner_text()
    day_total = page.locator("#portfolio tfoot td").last.inner_text()
    assert (day_row == "—") == (day_total == "—"), (day_row, day_total)
    _shot(page, "filled")


def _a_chart_symbol_off_the_ticker_gets_live_prices(page: Page, other: str) -> None:
    # Live prices are drawn into candles up to 1d wide; weeks and months wait for a reload.
    page.click('#intervals button[data-interval="1m"]')
    page.select_option("#chart-symbol", other)
    _wait_for(
        page,
        f"document.querySelector('#chart').dataset.symbol === '{other}'"
        " && document.querySelector('#chart').dataset.lastPrice !== undefined",
        f"a live price of {other} drawn on its chart",
        PRICES_WAIT_MS,
    )
    expect(page.locator("#stream-state")).to_have_text("live")


def _renewals_share_one_refresh(page: Page) -> None:
    """Concurrent renewals send one refresh token once; the kept one is the new one."""
    refreshes: list[str] = []
    page.on(
        "request",
        lambda r: refreshes.append(r.url) if r.url.endswith("/v1/auth/refresh") else None,
    )
    before = page.evaluate("JSON.parse(sessionStorage.getItem('broker.session')).refresh")
    results = page.evaluate(
        "import('./js/session.js').then((s) => Promise.all([s.renew(), s.renew(), s.renew()]))"
    )
    after = page.evaluate("JSON.parse(sessionStorage.getItem('broker.session')).refresh")
    assert results == [True, True, True]
    # One, or none when the page's own timer had just started the renewal they joined.
    assert len(refreshes) <= 1
    assert after != before


def _log_out_and_back_in(page: Page, email: str, totp: pyotp.TOTP) -> None:
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible(timeout=STEP_WAIT_MS)
    expect(page.locator("#login-error")).to_have_text("You are logged out.")
    assert page.evaluate("sessionStorage.getItem('broker.session')") is None
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    # The enrolment used this 30 s step's code, and a code works once: the next step's code is
    # inside the server's window.
    page.fill("#login-totp", totp.at(time.time(), counter_offset=1))
    page.click("#login-form button[type=submit]")
    expect(page.locator("#app-view")).to_be_visible(timeout=STEP_WAIT_MS)
    expect(page.locator("#session-email")).to_have_text(email)
    expect(page.locator(f'#portfolio tbody tr[data-symbol="{SYMBOL}"]')).to_be_visible(
        timeout=STEP_WAIT_MS
    )
    _shot(page, "relogin")


def test_a_stranger_signs_up_enrols_2fa_passes_kyc_funds_and_fills_an_order_in_the_page(
    system: tuple[Settings, str],
) -> None:
    settings, url = system
    email = f"new-{uuid.uuid4().hex[:10]}@example.com"
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for shot in SHOTS.values():
        shot.unlink(missing_ok=True)
    problems: list[str] = []
    outside: list[str] = []

    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.route("**/*", _only_the_api(url, outside))
        try:
            page.goto(f"{url}/app/")
            _sign_up(page, email)
            totp = _enrol_two_factor(page)
            _pass_kyc(page, settings.profile.national_id_example)
            _fund(page)
            off_the_ticker = _edit_watchlist(page)
            _create_and_revoke_api_key(page)
            _refused_in_words(page)
            _buy_and_see_the_fill(page)
            _fitted_at_every_interval(page)
            _a_chart_symbol_off_the_ticker_gets_live_prices(page, off_the_ticker)
            _renewals_share_one_refresh(page)
            _log_out_and_back_in(page, email, totp)
        finally:
            page.screenshot(path=str(ARTIFACTS_DIR / "web.png"), full_page=True)

    assert all(is_png(shot) for shot in SHOTS.values()), SHOTS
    assert outside == []
    assert problems == []
