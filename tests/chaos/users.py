"""Traders ready to trade, made through the API as a person would: signup, login, TOTP, KYC, cash.

Every step goes through the front (HTTP or HTTPS) except where the caller asks for the service
code instead (``deposit_via_api=False``: the ledger posting the integration tests use, for a
system without a payment gateway). Shares to sell are bought through the API (marketable limit
buys the exchange fills) and waited for until the portfolio shows them settled. Every wait is
bounded in time; a trader that cannot be made raises ``TraderSetupError``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import httpx
import psycopg
import pyotp

from core.ledger import TxnKind, deposit_entries, post
from core.settings import Settings
from tests.chaos.verify import Verify

PASSWORD = "chaos suite passphrase 2026"
KYC_BODY = {
    "full_name": "Chaos Trader",
    "date_of_birth": "1990-04-01",
    "address": "1 Loopback Road, 127.0.0.1",
}
HTTP_TIMEOUT_S = 30.0
# The simulated KYC reviewer and gateway answer in well under a second; these bound a sick one.
KYC_WAIT_S = 30.0
DEPOSIT_WAIT_S = 30.0
SHARES_WAIT_S = 90.0
POLL_S = 0.1
# Argon2 hashing takes 64 MiB and a core per signup: a few at a time on a small host.
SETUP_CONCURRENCY = 4
# A marketable buy for the shares: this far above the last price, so the exchange fills it.
MARKETABLE_MARKUP = Decimal("1.05")


class TraderSetupError(RuntimeError):
    """A trader could not be made ready (the step and the answer are in the message)."""


@dataclass(frozen=True)
class Trader:
    """A user ready to trade: 2FA verified, KYC VERIFIED, cash deposited; its token and secret."""

    user_id: int
    email: str
    password: str
    totp_secret: str
    token: str
    shares: Mapping[str, int] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for this trader."""
        return {"Authorization": f"Bearer {self.token}"}


def _expect(response: httpx.Response, status: int, step: str) -> dict[str, Any]:
    if response.status_code != status:
        raise TraderSetupError(f"{step}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def _poll(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], done: str, wait_s: float
) -> dict[str, Any]:
    """GET ``path`` until its ``status`` is ``done``; raise on a final other status or timeout."""
    deadline = time.monotonic() + wait_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = _expect(await http.get(path, headers=headers), 200, f"GET {path}")
        if body.get("status") == done:
            return body
        if body.get("status") in {"REJECTED", "FAILED"}:
            raise TraderSetupError(f"GET {path}: {body}")
        await asyncio.sleep(POLL_S)
    raise TraderSetupError(f"GET {path}: not {done} after {wait_s}s: {body}")


async def _ledger_deposit(settings: Settings, user_id: int, amount: Decimal) -> None:
    """Credit cash with the ledger posting a settled deposit makes (no gateway needed)."""
    async with await psycopg.AsyncConnection.connect(settings.pg_dsn) as conn:
        await post(
            conn,
            TxnKind.DEPOSIT,
            deposit_entries(user_id, amount),
            currency=settings.currency,
            external_ref=f"chaos-deposit-{uuid.uuid4().hex}",
        )


async def make_trader(
    http: httpx.AsyncClient, settings: Settings, cash: Decimal, *, deposit_via_api: bool = True
) -> Trader:
    """One trader through the API: signup, login, TOTP enrol + verify, KYC, deposit."""
    email = f"chaos-{uuid.uuid4().hex[:12]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    signed = _expect(await http.post("/v1/auth/signup", json=credentials), 201, "signup")
    user_id = int(signed["user_id"])
    login = _expect(await http.post("/v1/auth/login", json=credentials), 200, "login")
    first = {"Authorization": f"Bearer {login['access_token']}"}
    enrolled = _expect(await http.post("/v1/auth/2fa/enroll", headers=first), 200, "2fa enroll")
    secret = str(enrolled["secret"])
    code = pyotp.TOTP(secret).now()
    verified = _expect(
        await http.post("/v1/auth/2fa/verify", headers=first, json={"code": code}),
        200,
        "2fa verify",
    )
    if not verified.get("two_factor"):
        raise TraderSetupError(f"2fa verify: token without two_factor: {verified}")
    headers = {"Authorization": f"Bearer {verified['access_token']}"}
    kyc = {**KYC_BODY, "national_id": settings.profile.national_id_example}
    _expect(await http.post("/v1/kyc", headers=headers, json=kyc), 202, "kyc submit")
    await _poll(http, "/v1/kyc", headers, "VERIFIED", KYC_WAIT_S)
    if deposit_via_api:
        intent = _expect(
            await http.post(
                "/v1/funds/deposits",
                headers={**headers, "X-Idempotency-Key": uuid.uuid4().hex},
                json={"amount": str(cash)},
            ),
            202,
            "deposit",
        )
        await _poll(
            http, f"/v1/funds/intents/{intent['intent_id']}", headers, "SUCCEEDED", DEPOSIT_WAIT_S
        )
    else:
        await _ledger_deposit(settings, user_id, cash)
    return Trader(user_id, email, PASSWORD, secret, str(verified["access_token"]))


async def last_prices(
    http: httpx.AsyncClient, token: str, symbols: Sequence[str], wait_s: float = SHARES_WAIT_S
) -> dict[str, Decimal]:
    """The latest price of each symbol from the quotes API, waiting until every one has one."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + wait_s
    prices: dict[str, Decimal] = {}
    while time.monotonic() < deadline:
        response = await http.get(
            "/v1/market/quotes", params={"symbols": ",".join(symbols)}, headers=headers
        )
        body = _expect(response, 200, "quotes")
        prices = {q["symbol"]: Decimal(q["price"]) for q in body["quotes"]}
        if set(symbols) <= prices.keys():
            return prices
        await asyncio.sleep(POLL_S * 5)
    raise TraderSetupError(f"no price for {sorted(set(symbols) - prices.keys())} in {wait_s}s")


def on_tick(price: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    """``price`` moved onto the tick grid (up or down)."""
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return max(tick, steps * tick)


async def tick_sizes(settings: Settings, symbols: Sequence[str]) -> dict[str, Decimal]:
    """Each symbol's tick size, from the instruments table (the API checks prices against it)."""
    async with await psycopg.AsyncConnection.connect(settings.pg_dsn) as conn:
        cursor = await conn.execute(
            "SELECT symbol, tick_size FROM instruments WHERE symbol = ANY(%s)", (list(symbols),)
        )
        return {str(s): Decimal(t) for s, t in await cursor.fetchall()}


async def buy_shares(
    http: httpx.AsyncClient,
    trader: Trader,
    shares: Mapping[str, int],
    prices: Mapping[str, Decimal],
    ticks: Mapping[str, Decimal],
) -> None:
    """Buy ``shares`` with marketable limit orders and wait until the holdings show them."""
    for symbol, quantity in shares.items():
        limit = on_tick(prices[symbol] * MARKETABLE_MARKUP, ticks[symbol], up=True)
        body = {
            "symbol": symbol,
            "side": "BUY",
            "quantity": quantity,
            "type": "LIMIT",
            "price": str(limit),
        }
        headers = {**trader.headers, "X-Idempotency-Key": uuid.uuid4().hex}
        _expect(await http.post("/v1/orders", headers=headers, json=body), 201, "buy shares")
    deadline = time.monotonic() + SHARES_WAIT_S
    held: dict[str, int] = {}
    while time.monotonic() < deadline:
        portfolio = _expect(await http.get("/v1/portfolio", headers=trader.headers), 200, "portf.")
        held = {h["symbol"]: int(h["quantity"]) for h in portfolio["holdings"]}
        if all(held.get(s, 0) >= q for s, q in shares.items()):
            return
        await asyncio.sleep(POLL_S * 5)
    raise TraderSetupError(f"user {trader.user_id}: holdings {held}, wanted {dict(shares)}")


async def prepare_traders(
    front_url: str,
    settings: Settings,
    count: int,
    *,
    verify: Verify = True,
    cash: Decimal = Decimal("1000000"),
    shares: Mapping[str, int] | None = None,
    deposit_via_api: bool = True,
) -> list[Trader]:
    """``count`` traders ready to trade, each holding ``shares`` (bought through the system).

    ``verify`` is httpx's: a CA file path for the TLS front, or True/False. The shares cost
    comes on top of ``cash``: each trader buys them with its own deposited money.
    """
    wanted = dict(shares or {})
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    async with httpx.AsyncClient(base_url=front_url, verify=verify, timeout=HTTP_TIMEOUT_S) as http:

        async def one() -> Trader:
            async with gate:
                return await make_trader(http, settings, cash, deposit_via_api=deposit_via_api)

        traders = list(await asyncio.gather(*(one() for _ in range(count))))
        if not wanted:
            return traders
        prices = await last_prices(http, traders[0].token, list(wanted))
        ticks = await tick_sizes(settings, list(wanted))
        await asyncio.gather(*(buy_shares(http, t, wanted, prices, ticks) for t in traders))
    return [
        Trader(t.user_id, t.email, t.password, t.totp_secret, t.token, dict(wanted))
        for t in traders
    ]


async def refresh_token(front_url: str, trader: Trader, *, verify: Verify = True) -> Trader:
    """A new access token by logging in with the password and a current TOTP code.

    Access tokens live ``access_token_ttl_s`` (15 min by default): a longer run refreshes them.
    A code cannot be used twice, so two refreshes of one trader within 30 s fail the second.
    """
    body = {
        "email": trader.email,
        "password": trader.password,
        "totp_code": pyotp.TOTP(trader.totp_secret).now(),
    }
    async with httpx.AsyncClient(base_url=front_url, verify=verify, timeout=HTTP_TIMEOUT_S) as http:
        token = _expect(await http.post("/v1/auth/login", json=body), 200, "login with TOTP")
    return Trader(
        trader.user_id,
        trader.email,
        trader.password,
        trader.totp_secret,
        str(token["access_token"]),
        trader.shares,
    )
