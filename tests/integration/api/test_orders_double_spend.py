"""Double spend: many concurrent orders against one wallet or one holding; exactly one wins."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import httpx
import psycopg
import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.orders_support import (
    assert_invariants_hold,
    give_shares,
    holding,
    order_body,
    place,
    seed_reference_data,
    wallet,
)

pytestmark = pytest.mark.integration

CONCURRENT_ORDERS = 50


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """No fee: a LIMIT BUY of 1 ACME at 100.00 needs exactly 100.00."""
    return api_settings.model_copy(update={"fee_rate_bps": 0})


@pytest.fixture(autouse=True)
async def reference_data(db_dsn: str) -> None:
    await seed_reference_data(db_dsn)


def order_count(db_dsn: str, side: str) -> int:
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM orders WHERE side = %s AND status = 'NEW'", (side,)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_fifty_concurrent_buys_of_all_the_cash_accept_exactly_one(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=Decimal("100.00"))

    responses = await asyncio.gather(
        *(place(client, alice, order_body()) for _ in range(CONCURRENT_ORDERS))
    )

    outcomes = Counter((r.status_code, r.json().get("error")) for r in responses)
    assert outcomes == {(201, None): 1, (422, "insufficient_funds"): CONCURRENT_ORDERS - 1}
    assert wallet(db_dsn, alice.id) == (Decimal("0.0000"), Decimal("100.0000"))
    assert order_count(db_dsn, "BUY") == 1
    assert_invariants_hold(db_dsn)


async def test_fifty_concurrent_sells_of_the_whole_holding_accept_exactly_one(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user()
    await give_shares(db_dsn, api_settings, alice.id, "ACME", 100, "95.00")
    sell_all = order_body(side="SELL", quantity=100)

    responses = await asyncio.gather(
        *(place(client, alice, sell_all) for _ in range(CONCURRENT_ORDERS))
    )

    outcomes = Counter((r.status_code, r.json().get("error")) for r in responses)
    assert outcomes == {(201, None): 1, (422, "insufficient_shares"): CONCURRENT_ORDERS - 1}
    assert holding(db_dsn, alice.id, "ACME") == (100, 100)
    assert order_count(db_dsn, "SELL") == 1
    assert_invariants_hold(db_dsn)
