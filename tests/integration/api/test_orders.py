"""POST/GET/DELETE /v1/orders over real HTTP against a real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import psycopg
import pytest

from core.calendar import calendar_from_settings, next_open
from core.contracts import ORDER_COMMANDS, NewOrder
from core.contracts.orders import ORDER_UPDATES_TOPIC
from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.orders_support import (
    assert_invariants_hold,
    closed_now,
    deposit,
    give_shares,
    holding,
    order_body,
    place,
    seed_reference_data,
    serve_client,
    set_last_price,
    wallet,
)

pytestmark = pytest.mark.integration

D = Decimal


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """No fee, so a LIMIT BUY of 1 at 100.00 reserves exactly 100.00."""
    return api_settings.model_copy(update={"fee_rate_bps": 0})


@pytest.fixture(autouse=True)
async def reference_data(db_dsn: str) -> None:
    await seed_reference_data(db_dsn)


def outbox_rows(
    db_dsn: str,
) -> list[tuple[bytes, bytes, datetime, datetime | None, dict[str, str]]]:
    with psycopg.connect(db_dsn) as conn:
        return conn.execute(
            "SELECT key, payload, available_at, canceled_at, headers FROM outbox"
            " WHERE topic <> %s ORDER BY id",
            (ORDER_UPDATES_TOPIC,),
        ).fetchall()


def journal_kinds(db_dsn: str, order_id: str) -> list[str]:
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT kind FROM journal_txns WHERE order_id = %s ORDER BY created_at", (order_id,)
        ).fetchall()
    return [r[0] for r in rows]


async def test_a_limit_buy_reserves_cash_and_writes_one_new_order_to_the_outbox(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user(cash=D("1000"))

    response = await place(client, alice, order_body(quantity=3, price="100.05"))

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "NEW" and order["reserved_amount"] == "300.1500"
    assert order["client_order_id"] == order["id"]
    assert wallet(db_dsn, alice.id) == (D("699.8500"), D("300.1500"))
    [(key, payload, _, _, headers)] = outbox_rows(db_dsn)
    assert key == order["id"].encode() and headers == {"record": "new_order.v1"}
    record = ORDER_COMMANDS.decode(payload)
    assert isinstance(record, NewOrder)
    assert (record.order_id, record.user_id, record.quantity, record.price) == (
        order["id"],
        alice.id,
        3,
        D("100.05"),
    )
    assert journal_kinds(db_dsn, order["id"]) == ["ORDER_RESERVE"]
    assert_invariants_hold(db_dsn)


async def test_a_market_buy_reserves_the_last_price_plus_the_band(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    await set_last_price(db_dsn, "ACME", "100.00")

    response = await place(client, alice, order_body(type="MARKET", price=None, quantity=2))

    assert response.status_code == 201, response.text
    # 2 x 100.00 x 1.05 (500 bps band), no fee in this test's settings.
    assert response.json()["reserved_amount"] == "210.0000"


async def test_twenty_concurrent_requests_with_one_key_make_one_order_and_one_answer(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("10000"))
    key = uuid.uuid4().hex

    responses = await asyncio.gather(*(place(client, alice, order_body(), key) for _ in range(20)))

    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    assert wallet(db_dsn, alice.id) == (D("9900.0000"), D("100.0000"))
    assert len(outbox_rows(db_dsn)) == 1


async def test_the_same_key_with_another_body_is_refused_with_a_reason(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user(cash=D("1000"))
    key = uuid.uuid4().hex
    assert (await place(client, alice, order_body(), key)).status_code == 201

    response = await place(client, alice, order_body(quantity=2), key)

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert "different request" in response.json()["detail"]


async def test_a_refusal_for_funds_is_the_keys_answer_even_after_a_deposit(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user(cash=D("50"))
    key = uuid.uuid4().hex
    first = await place(client, alice, order_body(), key)
    assert first.status_code == 422 and first.json()["error"] == "insufficient_funds"
    await deposit(db_dsn, api_settings, alice.id, "1000")

    retry = await place(client, alice, order_body(), key)

    assert (retry.status_code, retry.content) == (first.status_code, first.content)
    assert retry.headers["Idempotent-Replayed"] == "true"


async def test_a_validation_failure_does_not_use_up_the_key(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user(cash=D("1000"))
    key = uuid.uuid4().hex
    assert (await place(client, alice, order_body(price="100.03"), key)).status_code == 422

    # Same key, corrected body: the first attempt stored nothing.
    assert (await place(client, alice, order_body(price="100.05"), key)).status_code == 201


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"symbol": "NOPE"}, "unknown_symbol"),
        ({"symbol": "DELISTED"}, "unknown_symbol"),
        ({"symbol": "LOTTEN", "quantity": 15}, "invalid_lot_size"),
        ({"quantity": 10_000_001}, "invalid_quantity"),
        ({"price": None}, "price_required"),
        ({"type": "MARKET"}, "price_not_allowed"),
        ({"type": "STOP_LOSS", "price": None}, "trigger_price_required"),
        ({"type": "STOP_LIMIT"}, "trigger_price_required"),
        ({"trigger_price": "99.00"}, "trigger_price_not_allowed"),
        ({"price": "100.03"}, "invalid_tick"),
        ({"type": "STOP_LIMIT", "trigger_price": "99.99"}, "invalid_tick"),
        ({"type": "MARKET", "price": None}, "no_price"),
        ({"quantity": 10_000_000, "price": "99999999999999"}, "order_value_too_large"),
    ],
)
async def test_an_invalid_order_is_refused_with_its_reason(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    db_dsn: str,
    fields: dict[str, object],
    reason: str,
) -> None:
    alice = await make_user(cash=D("1000000"))

    response = await place(client, alice, order_body(**fields))

    assert response.status_code == 422, response.text
    assert response.json()["error"] == reason, response.json()
    assert response.json()["detail"]
    assert wallet(db_dsn, alice.id) == (D("1000000.0000"), D("0.0000"))


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -3}, "quantity"),
        ({"quantity": "1"}, "quantity"),
        ({"price": 100.05}, "price"),
        ({"price": "-1"}, "price"),
        ({"side": "HOLD"}, "side"),
        ({"time_in_force": "FOK"}, "time_in_force"),
    ],
)
async def test_a_malformed_body_is_refused_naming_the_field(
    client: httpx.AsyncClient, make_user: MakeUser, fields: dict[str, object], field_name: str
) -> None:
    alice = await make_user(cash=D("1000"))

    response = await place(client, alice, order_body(**fields))

    assert response.status_code == 422
    assert response.json()["error"] == "validation_failed"
    assert any(e["field"] == field_name for e in response.json()["fields"]), response.json()


async def test_an_order_without_an_idempotency_key_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user(cash=D("1000"))

    response = await client.post("/v1/orders", json=order_body(), headers=alice.headers)

    assert response.status_code == 422
    assert response.json()["fields"][0]["location"] == "header"
    assert response.json()["fields"][0]["field"] == "x-idempotency-key"


async def test_trading_needs_two_factor_and_verified_kyc(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    no_kyc = await make_user(cash=D("1000"), kyc="PENDING")
    no_2fa = await make_user(cash=D("1000"), two_factor=False)

    assert (await place(client, no_kyc, order_body())).status_code == 403
    assert (await place(client, no_2fa, order_body())).status_code == 403


async def test_a_sell_needs_unlocked_shares(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user()
    await give_shares(db_dsn, api_settings, alice.id, "ACME", 10, "90.00")

    too_many = await place(client, alice, order_body(side="SELL", quantity=11))
    ok = await place(client, alice, order_body(side="SELL", quantity=10))

    assert too_many.status_code == 422 and too_many.json()["error"] == "insufficient_shares"
    assert ok.status_code == 201 and ok.json()["reserved_amount"] == "0.0000"
    assert holding(db_dsn, alice.id, "ACME") == (10, 10)
    assert_invariants_hold(db_dsn)


async def test_a_client_order_id_is_unique_per_user_for_ever(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice, bob = await make_user(cash=D("1000")), await make_user(cash=D("1000"))
    first = await place(client, alice, order_body(client_order_id="mine-1"))

    again = await place(client, alice, order_body(client_order_id="mine-1"))
    other_user = await place(client, bob, order_body(client_order_id="mine-1"))

    assert first.status_code == 201
    assert again.status_code == 409 and again.json()["error"] == "client_order_id_reused"
    assert other_user.status_code == 201
    fetched = await client.get("/v1/orders/by-client-id/mine-1", headers=alice.headers)
    assert fetched.status_code == 200 and fetched.json()["id"] == first.json()["id"]


async def test_a_closed_market_refuses_an_order_with_the_next_open(
    api_settings: Settings, make_user: MakeUser
) -> None:
    alice = await make_user(cash=D("1000"))
    closed = closed_now(api_settings)
    calendar = calendar_from_settings(api_settings.model_copy(update=closed))
    opens = next_open(calendar, datetime.now(UTC))

    async with serve_client(api_settings, **closed) as http:
        response = await place(http, alice, order_body())

    assert response.status_code == 422
    assert response.json()["error"] == "market_closed"
    assert opens.isoformat() in response.json()["detail"]


async def test_an_amo_is_accepted_while_closed_and_held_until_the_next_open(
    api_settings: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    closed = closed_now(api_settings)
    opens = next_open(
        calendar_from_settings(api_settings.model_copy(update=closed)), datetime.now(UTC)
    )

    async with serve_client(api_settings, **closed) as http:
        response = await place(http, alice, order_body(amo=True))

    assert response.status_code == 201, response.text
    assert response.json()["is_amo"] is True and response.json()["status"] == "NEW"
    [(_, _, available_at, canceled_at, _)] = outbox_rows(db_dsn)
    assert available_at == opens and canceled_at is None
    assert wallet(db_dsn, alice.id) == (D("900.0000"), D("100.0000"))


async def test_amo_is_ignored_while_the_market_is_open(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user(cash=D("1000"))

    response = await place(client, alice, order_body(amo=True))

    assert response.status_code == 201 and response.json()["is_amo"] is False


async def test_fraud_rule_order_value_limit_refuses_and_says_so(
    api_settings: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("100000"))

    async with serve_client(api_settings, order_value_max=D("1000")) as http:
        response = await place(http, alice, order_body(quantity=11))

    assert response.status_code == 422
    assert response.json()["error"] == "order_value_limit"
    assert "order_value_limit" in response.json()["detail"]
    assert wallet(db_dsn, alice.id) == (D("100000.0000"), D("0.0000"))


async def test_fraud_rule_order_rate_limit_refuses_the_order_past_the_maximum(
    api_settings: Settings, make_user: MakeUser
) -> None:
    alice = await make_user(cash=D("100000"))

    async with serve_client(api_settings, orders_per_minute_max=3) as http:
        answers = [(await place(http, alice, order_body())).json() for _ in range(4)]

    assert [a.get("status") for a in answers[:3]] == ["NEW"] * 3
    assert answers[3]["error"] == "order_rate_limit"
    assert "order_rate_limit" in answers[3]["detail"]


async def test_another_users_order_is_not_found_for_reading_or_canceling(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice, bob = await make_user(cash=D("1000")), await make_user()
    order = (await place(client, alice, order_body(client_order_id="alice-1"))).json()

    by_id = await client.get(f"/v1/orders/{order['id']}", headers=bob.headers)
    by_client_id = await client.get("/v1/orders/by-client-id/alice-1", headers=bob.headers)
    cancel = await client.delete(f"/v1/orders/{order['id']}", headers=bob.headers)
    listed = await client.get("/v1/orders", headers=bob.headers)

    assert (by_id.status_code, by_client_id.status_code, cancel.status_code) == (404, 404, 404)
    assert listed.json() == {"items": [], "next_cursor": None}
    mine = await client.get(f"/v1/orders/{order['id']}", headers=alice.headers)
    assert mine.status_code == 200 and mine.json()["status"] == "NEW"
    assert wallet(db_dsn, alice.id) == (D("900.0000"), D("100.0000"))


async def test_the_order_list_pages_newest_first_and_filters(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user(cash=D("10000"))
    await give_shares(db_dsn, api_settings, alice.id, "ACME", 5, "90.00")
    placed = [(await place(client, alice, order_body())).json()["id"] for _ in range(5)]
    sell = (await place(client, alice, order_body(side="SELL", quantity=5))).json()["id"]

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/orders", params=params, headers=alice.headers)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    sells = await client.get(
        "/v1/orders", params={"side": "SELL", "status": "NEW"}, headers=alice.headers
    )
    other_symbol = await client.get(
        "/v1/orders", params={"symbol": "zephyr"}, headers=alice.headers
    )

    assert seen[:1] == [sell] and set(seen[1:6]) == set(placed) and len(seen) == 7  # + the fill
    assert [o["id"] for o in sells.json()["items"]] == [sell]
    assert other_symbol.json()["items"] == []


async def test_the_order_list_refuses_a_bad_limit_or_cursor(
    client: httpx.AsyncClient, make_user: MakeUser, api_settings: Settings
) -> None:
    alice = await make_user()
    too_big = await client.get(
        "/v1/orders", params={"limit": api_settings.page_limit_max + 1}, headers=alice.headers
    )
    bad_cursor = await client.get("/v1/orders", params={"cursor": "bm9wZQ"}, headers=alice.headers)

    assert too_big.status_code == 422 and too_big.json()["error"] == "invalid_limit"
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"] == "invalid_cursor"


async def test_canceling_a_pending_stop_buy_releases_its_reserve_at_once(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    stop = await place(
        client, alice, order_body(type="STOP_LIMIT", price="100.00", trigger_price="99.00")
    )
    assert stop.json()["status"] == "PENDING_TRIGGER" and outbox_rows(db_dsn) == []
    assert wallet(db_dsn, alice.id) == (D("900.0000"), D("100.0000"))

    cancel = await client.delete(f"/v1/orders/{stop.json()['id']}", headers=alice.headers)

    assert cancel.status_code == 200
    assert cancel.json()["status"] == "CANCELED" and cancel.json()["reserved_amount"] == "0.0000"
    assert wallet(db_dsn, alice.id) == (D("1000.0000"), D("0.0000"))
    assert journal_kinds(db_dsn, stop.json()["id"]) == ["ORDER_RESERVE", "ORDER_RELEASE"]
    assert outbox_rows(db_dsn) == []
    assert_invariants_hold(db_dsn)


async def test_canceling_a_pending_stop_loss_sell_unlocks_its_shares(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user()
    await give_shares(db_dsn, api_settings, alice.id, "ACME", 10, "90.00")
    stop = await place(
        client,
        alice,
        order_body(side="SELL", quantity=4, type="STOP_LOSS", price=None, trigger_price="80.00"),
    )
    assert holding(db_dsn, alice.id, "ACME") == (10, 4)

    cancel = await client.delete(f"/v1/orders/{stop.json()['id']}", headers=alice.headers)

    assert cancel.status_code == 200 and cancel.json()["status"] == "CANCELED"
    assert holding(db_dsn, alice.id, "ACME") == (10, 0)
    assert_invariants_hold(db_dsn)


async def test_canceling_an_amo_before_the_open_withdraws_it_and_releases_the_reserve(
    api_settings: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    async with serve_client(api_settings, **closed_now(api_settings)) as http:
        amo = (await place(http, alice, order_body(amo=True))).json()

        cancel = await http.delete(f"/v1/orders/{amo['id']}", headers=alice.headers)

    assert cancel.status_code == 200 and cancel.json()["status"] == "CANCELED"
    [(_, _, _, canceled_at, _)] = outbox_rows(db_dsn)
    assert canceled_at is not None
    assert wallet(db_dsn, alice.id) == (D("1000.0000"), D("0.0000"))
    assert_invariants_hold(db_dsn)


async def test_a_final_order_cannot_be_canceled(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    order = (
        await place(client, alice, order_body(type="STOP_LOSS", price=None, trigger_price="90.00"))
    ).json()
    assert (
        await client.delete(f"/v1/orders/{order['id']}", headers=alice.headers)
    ).status_code == 200

    again = await client.delete(f"/v1/orders/{order['id']}", headers=alice.headers)

    assert again.status_code == 409 and again.json()["error"] == "order_final"
    assert wallet(db_dsn, alice.id) == (D("1000.0000"), D("0.0000"))
