"""The demo trader of ``make up``: ready to trade at once (2FA, KYC VERIFIED, cash, holdings).

Made through the front as a person would (``infra.onboarding``), once: its TOTP secret is kept
in ``state_dir/demo/trader.json`` (mode 600) so ``python -m infra totp`` prints its current
code, and later runs only check that it still logs in. Never made in production mode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pyotp

from core.settings import Settings
from core.tls import client_ssl_context
from infra import onboarding

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 30.0
# The national id comes from the market profile (its format differs per exchange).
KYC_DETAILS = {
    "full_name": "Demo Trader",
    "date_of_birth": "1990-04-01",
    "address": "1 Loopback Road, 127.0.0.1",
}


@dataclass(frozen=True)
class DemoTrader:
    """What a person needs to log in as the demo trader."""

    email: str
    password: str
    totp_secret: str


def trader_file(settings: Settings) -> Path:
    """Where the demo trader's login (with its TOTP secret) is kept."""
    return settings.state_dir / "demo" / "trader.json"


def current_code(secret: str) -> str:
    """The TOTP code of ``secret`` for now (what an authenticator app would show)."""
    return pyotp.TOTP(secret).now()


def load(settings: Settings) -> DemoTrader | None:
    """The demo trader made before, if any."""
    path = trader_file(settings)
    if not path.exists():
        return None
    return DemoTrader(**json.loads(path.read_text()))


def save(settings: Settings, trader: DemoTrader) -> None:
    """Keep the demo trader's login, readable by this user only."""
    path = trader_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(asdict(trader)))


async def _logs_in(http: httpx.AsyncClient, trader: DemoTrader) -> bool:
    body = {"email": trader.email, "password": trader.password}
    response = await http.post(
        "/v1/auth/login", json=body | {"totp_code": current_code(trader.totp_secret)}
    )
    if response.status_code == httpx.codes.UNAUTHORIZED and "invalid_totp" in response.text:
        return True  # the code of this step was used already: the login itself is right
    return response.status_code == httpx.codes.OK


async def _make(http: httpx.AsyncClient, settings: Settings) -> DemoTrader:
    email = settings.demo_email
    try:
        user = await onboarding.sign_up_with_2fa(http, email, settings.demo_password)
    except onboarding.OnboardingError as exc:
        if exc.status != httpx.codes.CONFLICT:
            raise
        # Made by an earlier run whose secret is gone (a new state folder): a fresh address.
        local, _, domain = email.partition("@")
        email = f"{local}+{uuid.uuid4().hex[:6]}@{domain}"
        user = await onboarding.sign_up_with_2fa(http, email, settings.demo_password)
    details = KYC_DETAILS | {"national_id": settings.profile.national_id_example}
    await onboarding.pass_kyc(http, user, details)
    await onboarding.deposit(http, user, settings.demo_cash)
    holdings = dict(settings.demo_holdings)
    if holdings:
        prices = await onboarding.last_prices(http, user.token, list(holdings))
        ticks = await onboarding.tick_sizes_from_api(http, user.token)
        await onboarding.buy_shares(http, user.headers, holdings, prices, ticks, user.user_id)
    return DemoTrader(email, settings.demo_password, user.totp_secret)


async def ensure(settings: Settings) -> DemoTrader:
    """The demo trader, made now unless one made before still logs in."""
    async with httpx.AsyncClient(
        base_url=settings.front_url, verify=client_ssl_context(settings), timeout=HTTP_TIMEOUT_S
    ) as http:
        known = load(settings)
        if known is not None and await _logs_in(http, known):
            return known
        trader = await _make(http, settings)
    save(settings, trader)
    return trader


def describe(settings: Settings, trader: DemoTrader) -> list[str]:
    """How to log in as the demo trader, in lines to print."""
    return [
        f"demo trader ready at {settings.front_url}/app/",
        f"  email:    {trader.email}",
        f"  password: {trader.password}",
        "  2FA code: make totp   (or: .venv/bin/python -m infra totp)",
        f"  TOTP secret, for an authenticator app: {trader.totp_secret}",
    ]


def ensure_and_describe(settings: Settings) -> list[str]:
    """Make (or find) the demo trader; the lines saying how to log in, or why it failed."""
    try:
        trader = asyncio.run(ensure(settings))
    except (onboarding.OnboardingError, httpx.HTTPError) as exc:
        return [f"the demo trader could not be made: {exc}"]
    return describe(settings, trader)
