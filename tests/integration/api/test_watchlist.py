"""The watchlist routes over real HTTP: a default list, saving, refusals, one list per user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings
from tests.integration.api.conftest import MakeUser

if TYPE_CHECKING:
    from tests.integration.api.conftest import TestUser

pytestmark = pytest.mark.integration

INSTRUMENTS = 40
DEFAULT_COUNT = 3
SYMBOLS_MAX = 5
# The first instruments in symbol order: the default list of a user who saved none.
FIRST = [i.symbol for i in sorted(instrument_universe(INSTRUMENTS), key=lambda i: i.symbol)]


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """Small bounds, so the cases reach them with a few symbols."""
    return api_settings.model_copy(
        update={"watchlist_default_count": DEFAULT_COUNT, "watchlist_symbols_max": SYMBOLS_MAX}
    )


@pytest.fixture
async def http(api_url: str, db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API, on a database that lists the instruments."""
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(INSTRUMENTS))
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client


@dataclass(frozen=True)
class Case:
    """Saves (each a body), then what the last answer and a fresh GET say."""

    name: str
    saves: list[list[str]]
    status: int
    error: str | None
    symbols: list[str]
    is_default: bool


CASES = [
    Case("never saved: the first active instruments", [], 200, None, FIRST[:3], True),
    Case(
        "saved: kept in the order given", [["ATLAS", "ACME"]], 200, None, ["ATLAS", "ACME"], False
    ),
    Case(
        "saved lower case with repeats",
        [["acme", "ACME", " alpha"]],
        200,
        None,
        ["ACME", "ALPHA"],
        False,
    ),
    Case("saved empty: stays empty", [[]], 200, None, [], False),
    Case("saved twice: the second replaces", [["ACME"], ["ALPHA"]], 200, None, ["ALPHA"], False),
    Case(
        "unknown symbol: 422, nothing saved",
        [["ACME", "NOPE"]],
        422,
        "unknown_symbol",
        FIRST[:3],
        True,
    ),
    Case("not a symbol: 422", [["AC ME"]], 422, "unknown_symbol", FIRST[:3], True),
    Case(
        "too many: 422, the old list kept",
        [["ACME"], FIRST[:6]],
        422,
        "too_many_symbols",
        ["ACME"],
        False,
    ),
    Case("at the bound: saved", [FIRST[:5]], 200, None, FIRST[:5], False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_watchlist_answers_each_case(
    case: Case, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    answer: dict[str, Any] = {}
    status = 200
    for symbols in case.saves:
        response = await http.put("/v1/watchlist", json={"symbols": symbols}, headers=user.headers)
        status, answer = response.status_code, response.json()
    assert status == case.status, answer
    if case.error is not None:
        assert answer["error"] == case.error
    read = await http.get("/v1/watchlist", headers=user.headers)
    assert read.status_code == 200
    assert read.json() == {"symbols": case.symbols, "is_default": case.is_default}


async def _watchlist(http: httpx.AsyncClient, user: TestUser) -> dict[str, Any]:
    response = await http.get("/v1/watchlist", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_saving_a_watchlist_leaves_another_users_list_untouched(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice, bob = await make_user(), await make_user()
    saved = await http.put("/v1/watchlist", json={"symbols": ["AURUM"]}, headers=bob.headers)
    assert saved.status_code == 200, saved.text
    await http.put("/v1/watchlist", json={"symbols": ["ACME", "ALPHA"]}, headers=alice.headers)
    assert await _watchlist(http, alice) == {"symbols": ["ACME", "ALPHA"], "is_default": False}
    assert await _watchlist(http, bob) == {"symbols": ["AURUM"], "is_default": False}


async def test_a_watchlist_needs_a_login(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/watchlist")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


async def test_a_body_that_is_not_a_list_of_symbols_is_a_validation_failure(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await http.put("/v1/watchlist", json={"symbols": "ACME"}, headers=user.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_failed"
