"""Small clients of the running system for the end-to-end tests: the front, users, ticks."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import httpx
from confluent_kafka import Producer

from core.contracts import Tick
from core.contracts.codec import encode
from core.instruments import Instrument, instrument_universe
from core.settings import Settings
from core.tls import client_ssl_context

PASSWORD = "a long e2e passphrase 42"
REQUEST_TIMEOUT_S = 10.0


def front_client(settings: Settings) -> httpx.Client:
    """A client of the public front that verifies its certificate with the stack's CA."""
    return httpx.Client(
        base_url=settings.front_url, verify=client_ssl_context(settings), timeout=REQUEST_TIMEOUT_S
    )


def quiet_instrument(settings: Settings) -> Instrument:
    """An instrument the API knows but the simulator never prints: ticks for it are the test's."""
    return instrument_universe(settings.sim_symbols_count + 1)[-1]


def signed_up_token(http: httpx.Client) -> str:
    """A new user's access token (no 2FA: enough for market data)."""
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD}
    http.post("/v1/auth/signup", json=body).raise_for_status()
    response = http.post("/v1/auth/login", json=body)
    response.raise_for_status()
    return str(response.json()["access_token"])


def produce_tick(producer: Producer, settings: Settings, symbol: str, price: Decimal) -> None:
    """Send one tick of ``symbol`` at ``price`` to the ticks topic, as the exchange would."""
    tick = Tick(symbol=symbol, price=price, size=1, ts_event_ns=time.time_ns(), seq=0)
    producer.produce(settings.topic_ticks, key=symbol.encode(), value=encode(tick))
    producer.flush(REQUEST_TIMEOUT_S)
