"""A user made ready to trade through the API, as a person would: sign-up, login, TOTP, KYC,
cash, and shares bought with marketable limit orders.

Shared by the demo trader of ``make up`` (``infra.demo``) and the test suites that need traders.
Every wait is bounded; a step that fails raises ``OnboardingError`` naming the step and answer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pyotp

# The simulated KYC reviewer and gateway answer in well under a second; these bound a sick one.
KYC_WAIT_S = 30.0
DEPOSIT_WAIT_S = 30.0
SHARES_WAIT_S = 90.0
POLL_S = 0.1
# A marketable buy: this far above the last price, so the exchange fills it at once.
MARKETABLE_MARKUP = Decimal("1.05")


class OnboardingError(RuntimeError):
    """A user could not be made ready (the step and the answer are in the message)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of the refused step, if one was refused


@dataclass(frozen=True)
class Onboarded:
    """A user with 2FA verified, KYC VERIFIED and cash deposited: its token and TOTP secret."""

    user_id: int
    totp_secret: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of this user's token."""
        return {"Authorization": f"Bearer {self.token}"}


def expect(response: httpx.Response, status: int, step: str) -> dict[str, Any]:
    """The JSON body of an answer with ``status``; OnboardingError otherwise."""
    if response.status_code != status:
        raise OnboardingError(
            f"{step}: HTTP {response.status_code} {response.text[:300]}", response.status_code
        )
    body: dict[str, Any] = response.json()
    return body


async def poll_status(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], done: str, wait_s: float
) -> dict[str, Any]:
    """GET ``path`` until its ``status`` is ``done``; raise on a final other status or timeout."""
    deadline = time.monotonic() + wait_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = expect(await http.get(path, headers=headers), 200, f"GET {path}")
        if body.get("status") == done:
            return body
        if body.get("status") in {"REJECTED", "FAILED"}:
            raise OnboardingError(f"GET {path}: {body}")
        await asyncio.sleep(POLL_S)
    raise OnboardingError(f"GET {path}: not {done} after {wait_s}s: {body}")


async def sign_up_with_2fa(http: httpx.AsyncClient, email: str, password: str) -> Onboarded:
    """Sign up, log in, enrol and verify TOTP; the user with a token that passed 2FA."""
    credentials = {"email": email, "password": password}
    signed = expect(await http.post("/v1/auth/signup", json=credentials), 201, "signup")
    login = expect(await http.post("/v1/auth/login", json=credentials), 200, "login")
    first = {"Authorization": f"Bearer {login['access_token']}"}
    enrolled = expect(await http.post("/v1/auth/2fa/enroll", headers=first), 200, "2fa enroll")
    secret = str(enrolled["secret"])
    verified = expect(
        await http.post(
            "/v1/auth/2fa/verify", headers=first, json={"code": pyotp.TOTP(secret).now()}
        ),
        200,
        "2fa verify",
    )
    if not verified.get("two_factor"):
        raise OnboardingError(f"2fa verify: token without two_factor: {verified}")
    return Onboarded(
        int(signed["user_id"]),
        secret,
        str(verified["access_token"]),
        str(verified["refresh_token"]),
    )


async def pass_kyc(http: httpx.AsyncClient, user: Onboarded, details: Mapping[str, str]) -> None:
    """Submit KYC and wait until the (simulated) provider has verified it."""
    expect(await http.post("/v1/kyc", headers=user.headers, json=dict(details)), 202, "kyc")
    await poll_status(http, "/v1/kyc", user.headers, "VERIFIED", KYC_WAIT_S)


async def deposit(http: httpx.AsyncClient, user: Onboarded, amount: Decimal) -> None:
    """Deposit through the payment gateway and wait until the cash is credited."""
    intent = expect(
        await http.post(
            "/v1/funds/deposits",
            headers={**user.headers, "X-Idempotency-Key": uuid.uuid4().hex},
            json={"amount": str(amount)},
        ),
        202,
        "deposit",
    )
    path = f"/v1/funds/intents/{intent['intent_id']}"
    await poll_status(http, path, user.headers, "SUCCEEDED", DEPOSIT_WAIT_S)


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
        body = expect(response, 200, "quotes")
        prices = {q["symbol"]: Decimal(q["price"]) for q in body["quotes"]}
        if set(symbols) <= prices.keys():
            return prices
        await asyncio.sleep(POLL_S * 5)
    raise OnboardingError(f"no price for {sorted(set(symbols) - prices.keys())} in {wait_s}s")


def on_tick(price: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    """``price`` moved onto the tick grid (up or down)."""
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return max(tick, steps * tick)


async def buy_shares(
    http: httpx.AsyncClient,
    headers: Mapping[str, str],
    shares: Mapping[str, int],
    prices: Mapping[str, Decimal],
    ticks: Mapping[str, Decimal],
    user_id: int,
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
        keyed = {**headers, "X-Idempotency-Key": uuid.uuid4().hex}
        expect(await http.post("/v1/orders", headers=keyed, json=body), 201, "buy shares")
    deadline = time.monotonic() + SHARES_WAIT_S
    held: dict[str, int] = {}
    while time.monotonic() < deadline:
        portfolio = expect(await http.get("/v1/portfolio", headers=dict(headers)), 200, "portf.")
        held = {h["symbol"]: int(h["quantity"]) for h in portfolio["holdings"]}
        if all(held.get(s, 0) >= q for s, q in shares.items()):
            return
        await asyncio.sleep(POLL_S * 5)
    raise OnboardingError(f"user {user_id}: holdings {held}, wanted {dict(shares)}")


async def tick_sizes_from_api(http: httpx.AsyncClient, token: str) -> dict[str, Decimal]:
    """Each listed symbol's tick size, as the market API gives it."""
    headers = {"Authorization": f"Bearer {token}"}
    body = expect(await http.get("/v1/market/symbols", headers=headers), 200, "symbols")
    return {s["symbol"]: Decimal(s["tick_size"]) for s in body["symbols"]}
