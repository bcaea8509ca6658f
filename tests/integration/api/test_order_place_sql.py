"""order_place (sql/migrations/0018) answers as the Python rules and the order reads say.

The order path runs its checks in PL/pgSQL; the pure Python rules (api/services/order_rules.py,
fraud.py) stay the specification of their words and sums, and GET /v1/orders/{id} the
specification of an order's JSON. These tests hold the database to both.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from api.exceptions import InvalidRequestError
from api.services import order_rules
from api.services.fraud import check_order_rate, check_order_value
from core.contracts import OrderType
from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.orders_support import (
    give_shares,
    order_body,
    place,
    seed_reference_data,
    serve_client,
    set_last_price,
)

pytestmark = pytest.mark.integration

D = Decimal
TICK = D("0.0500")  # ACME's and LOTTEN's tick, as NUMERIC(18,4) holds it


@pytest.fixture(autouse=True)
async def reference_data(db_dsn: str) -> None:
    await seed_reference_data(db_dsn)


def python_detail(check: object, *args: object) -> str:
    """The detail the Python rule ``check`` refuses ``args`` with."""
    assert callable(check)
    with pytest.raises(InvalidRequestError) as refused:
        check(*args)
    return refused.value.detail


@pytest.mark.parametrize(
    ("fields", "order_type", "band_applies"),
    [
        ({"quantity": 7, "price": "100.05"}, OrderType.LIMIT, False),
        ({"type": "MARKET", "price": None, "quantity": 3}, OrderType.MARKET, True),
        (
            {"type": "STOP_LOSS", "price": None, "trigger_price": "99.95", "quantity": 3},
            OrderType.STOP_LOSS,
            True,
        ),
        (
            {"type": "STOP_LIMIT", "price": "101.15", "trigger_price": "99.95", "quantity": 3},
            OrderType.STOP_LIMIT,
            False,
        ),
    ],
)
async def test_a_buy_reserves_what_buy_reserve_computes_and_answers_as_get_does(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    db_dsn: str,
    api_settings: Settings,
    fields: dict[str, object],
    order_type: OrderType,
    band_applies: bool,
) -> None:
    alice = await make_user(cash=D("100000"))
    await set_last_price(db_dsn, "ACME", "100.35")
    body = order_body(**fields)
    unit = D(body.get("price") or body.get("trigger_price") or "100.35")
    expected = order_rules.buy_reserve(
        order_type,
        order_rules.order_value(int(str(body["quantity"])), unit),
        api_settings.fee_rate_bps,
        api_settings.market_protection_band_bps,
    )
    assert band_applies == (order_type in order_rules.MARKETABLE_TYPES)

    placed = await place(client, alice, body)
    fetched = await client.get(f"/v1/orders/{placed.json()['id']}", headers=alice.headers)

    assert placed.status_code == 201, placed.text
    assert placed.json()["reserved_amount"] == str(expected)
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


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"symbol": "LOTTEN", "quantity": 15},
            python_detail(order_rules.check_quantity, 15, 10, 10_000_000),
        ),
        (
            {"price": "100.03"},
            python_detail(order_rules.check_on_tick, "price", D("100.03"), TICK),
        ),
        (
            {"type": "STOP_LIMIT", "trigger_price": "99.99"},
            python_detail(order_rules.check_on_tick, "trigger_price", D("99.99"), TICK),
        ),
        (
            {"quantity": 10_000_000, "price": "99999999999999"},
            python_detail(order_rules.order_value, 10_000_000, D("99999999999999")),
        ),
        (
            {"type": "MARKET", "price": None},
            python_detail(order_rules.unit_price, OrderType.MARKET, None, None, None, "ACME"),
        ),
    ],
)
async def test_a_validation_refusal_says_what_the_python_rule_says(
    client: httpx.AsyncClient, make_user: MakeUser, fields: dict[str, object], expected: str
) -> None:
    alice = await make_user(cash=D("1000"))

    response = await place(client, alice, order_body(**fields))

    assert response.status_code == 422, response.text
    assert response.json()["detail"] == expected


async def test_the_fraud_rules_say_what_the_python_rules_say(
    api_settings: Settings, make_user: MakeUser
) -> None:
    alice = await make_user(cash=D("100000"))
    value_max, rate_max = D("1000.00"), 2

    async with serve_client(
        api_settings, order_value_max=value_max, orders_per_minute_max=rate_max
    ) as http:
        too_big = await place(http, alice, order_body(quantity=11))
        answers = [(await place(http, alice, order_body())).json() for _ in range(3)]

    assert too_big.json()["detail"] == python_detail(
        check_order_value, order_rules.order_value(11, D("100.00")), value_max
    )
    assert answers[2]["detail"] == python_detail(check_order_rate, 2, rate_max)
