"""Traders ready to trade, made through the API as a person would: signup, login, TOTP, KYC, cash.

Every step goes through the front (HTTP or HTTPS) except where the caller asks for the service
code instead (``deposit_via_api=False``: the ledger posting the integration tests use, for a
system without a payment gateway). Shares to sell are bought through the API (marketable limit
buys the exchange fills) and waited for until the portfolio shows them settled. Every wait is
bounded in time; a trader that cannot be made raises ``TraderSetupError``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import psycopg
import pyotp

from core.ledger import TxnKind, deposit_entries, post
from core.settings import Settings
from infra import onboarding
from infra.onboarding import OnboardingError as TraderSetupError
from infra.onboarding import expect as _expect
from infra.onboarding import last_prices, on_tick
from tests.chaos.verify import Verify

__all__ = ["TraderSetupError", "last_prices", "on_tick"]

PASSWORD = "chaos suite passphrase 2026"
KYC_BODY = {
    "full_name": "Chaos Trader",
    "date_of_birth": "1990-04-01",
    "address": "1 Loopback Road, 127.0.0.1",
}
HTTP_TIMEOUT_S = 30.0
# Argon2 hashing takes 64 MiB and a core per signup: a few at a time on a small host.
SETUP_CONCURRENCY = 4


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
    user = await onboarding.sign_up_with_2fa(http, email, PASSWORD)
    kyc = {**KYC_BODY, "national_id": settings.profile.national_id_example}
    await onboarding.pass_kyc(http, user, kyc)
    if deposit_via_api:
        await onboarding.deposit(http, user, cash)
    else:
        await _ledger_deposit(settings, user.user_id, cash)
    return Trader(user.user_id, email, PASSWORD, user.totp_secret, user.token)


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
    await onboarding.buy_shares(http, trader.headers, shares, prices, ticks, trader.user_id)


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
