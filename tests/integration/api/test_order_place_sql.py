"""order_place's answer is the order as GET /v1/orders/{id} reads it, through the API.

Its rules and sums are pinned by tests/integration/test_order_place_cases.py; GET is the
specification of an order's JSON, and these tests hold the stored answer to it.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.orders_support import (
    give_shares,
    order_body,
    place,
    seed_reference_data,
    set_last_price,
)

pytestmark = pytest.mark.integration

D = Decimal


@pytest.fixture(autouse=True)
async def reference_data(db_dsn: str) -> None:
    await seed_reference_data(db_dsn)


@pytest.mark.parametrize(
    ("fields", "reserved"),
    [
        # The reserves of the case table's rows for these orders, with the default settings.
        ({"quantity": 7, "price": "100.05"}, "700.5602"),
        ({"type": "MARKET", "price": None, "quantity": 3}, "316.1974"),
        ({"type": "STOP_LOSS", "price": None, "trigger_price": "99.95", "quantity": 3}, "314.9370"),
        (
            {"type": "STOP_LIMIT", "price": "101.15", "trigger_price": "99.95", "quantity": 3},
            "303.5411",
        ),
    ],
)
async def test_a_buy_of_each_type_answers_as_get_does(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    db_dsn: str,
    fields: dict[str, object],
    reserved: str,
) -> None:
    alice = await make_user(cash=D("100000"))
    await set_last_price(db_dsn, "ACME", "100.35")

    placed = await place(client, alice, order_body(**fields))
    fetched = await client.get(f"/v1/orders/{placed.json()['id']}", headers=alice.headers)

    assert placed.status_code == 201, placed.text
    assert placed.json()["reserved_amount"] == reserved
    assert placed.json() == fetched.json()


async def test_a_sell_with_a_client_order_id_answers_as_get_does(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user(cash=D("0"))
    await give_shares(db_dsn, api_settings, alice.id, "ACME", 10, "100.00")
    body = order_body(side="SELL", quantity=4, price="120", client_order_id="mine-1")

    placed = await place(client, alice, body)
    fetched = await client.get("/v1/orders/by-client-id/mine-1", headers=alice.headers)

    assert placed.status_code == 201, placed.text
    assert placed.json() == fetched.json()
    assert placed.json()["price"] == "120.0000" and placed.json()["reserved_amount"] == "0.0000"
