"""GET /v1/market/symbols and /v1/market/quotes over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from core.instruments import DEFAULT_INSTRUMENTS
from core.settings import Settings
from tests.integration.api.conftest import MakeUser, serve
from tests.integration.api.test_stream_support import T0_NS, seed_prices

# The same answers on TimescaleDB and on plain PostgreSQL.
pytestmark = [pytest.mark.integration, pytest.mark.both_backends]


@pytest.fixture
def market_url(api_settings: Settings, db_dsn: str) -> Iterator[str]:
    prices = {"ACME": ("1511.8000", T0_NS), "ALPHA": ("642.3500", T0_NS)}
    asyncio.run(seed_prices(db_dsn, prices))
    yield from serve(api_settings)


async def test_symbols_and_latest_quotes(market_url: str, make_user: MakeUser) -> None:
    made = await make_user()
    async with httpx.AsyncClient(base_url=market_url, headers=made.headers) as http:
        symbols = (await http.get("/v1/market/symbols")).json()["symbols"]
        quotes = (
            await http.get("/v1/market/quotes", params={"symbols": "alpha,ACME,BEACON"})
        ).json()
        every = (await http.get("/v1/market/quotes")).json()
        unknown = await http.get("/v1/market/quotes", params={"symbols": "NOSUCH"})
        anonymous = await httpx.AsyncClient(base_url=market_url).get("/v1/market/symbols")
    assert [s["symbol"] for s in symbols] == sorted(i.symbol for i in DEFAULT_INSTRUMENTS)
    assert symbols[0] == {
        "symbol": "ACME",
        "name": "Acme Industries",
        "currency": "USD",
        "tick_size": "0.0500",
        "lot_size": 1,
    }
    # In the order asked; BEACON has not traded yet and is left out.
    assert quotes == {
        "quotes": [
            {"symbol": "ALPHA", "price": "642.3500", "ts": "2026-09-21T14:13:20Z"},
            {"symbol": "ACME", "price": "1511.8000", "ts": "2026-09-21T14:13:20Z"},
        ]
    }
    assert [q["symbol"] for q in every["quotes"]] == ["ACME", "ALPHA"]
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_symbol")
    assert anonymous.status_code == 401
