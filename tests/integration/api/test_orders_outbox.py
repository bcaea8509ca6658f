"""Orders through the outbox relay to real Kafka: what is published, when, and in which order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from core.contracts import ORDER_COMMANDS, CancelOrder, NewOrder
from core.settings import Settings
from streams.outbox_relay import make_producer, publish_batch
from tests.integration.api.conftest import MakeUser
from tests.integration.api.orders_support import (
    closed_now,
    order_body,
    place,
    read_topic,
    seed_reference_data,
    serve_client,
    topic_is_quiet,
    wallet,
)

pytestmark = pytest.mark.integration

D = Decimal


@pytest.fixture
def api_settings(api_settings: Settings, new_topic: Callable[[int], str]) -> Settings:
    """A topic of this test's own as the orders topic; no fee, so reserves are round."""
    return api_settings.model_copy(update={"topic_orders": new_topic(1), "fee_rate_bps": 0})


@pytest.fixture(autouse=True)
async def reference_data(db_dsn: str) -> None:
    await seed_reference_data(db_dsn)


@contextmanager
def relay(settings: Settings) -> Iterator[Callable[[], int]]:
    """A function publishing one batch, as the relay's loop would; it tells how many order
    commands went (the batch also carries the order updates for the order streams)."""
    producer = make_producer(settings)
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:

        def published_commands() -> int:
            row = conn.execute(
                "SELECT count(*) FROM outbox WHERE topic = %s AND published_at IS NOT NULL",
                (settings.topic_orders,),
            ).fetchone()
            return int(row[0]) if row else 0

        def publish() -> int:
            before = published_commands()
            publish_batch(conn, producer, settings)
            return published_commands() - before

        yield publish


def decode(messages: list[Any]) -> list[tuple[str, Any]]:
    return [(m.key().decode(), ORDER_COMMANDS.decode(m.value())) for m in messages]


async def test_accepted_orders_reach_the_topic_in_commit_order_keyed_by_order_id(
    client: httpx.AsyncClient, make_user: MakeUser, api_settings: Settings
) -> None:
    alice = await make_user(cash=D("350"))
    answers = []
    for price in ("100.00", "100.05", "500.00", "100.10"):  # the third is refused for funds
        answers.append((await place(client, alice, order_body(price=price))).json())
    stop = await place(
        client, alice, order_body(type="STOP_LIMIT", price="10.00", trigger_price="9.00")
    )
    accepted = [a for a in answers if "id" in a]
    assert len(accepted) == 3 and stop.json()["status"] == "PENDING_TRIGGER"

    with relay(api_settings) as publish:
        assert publish() == 3

    records = decode(read_topic(api_settings, api_settings.topic_orders, 3))
    assert [key for key, _ in records] == [a["id"] for a in accepted]
    assert all(isinstance(r, NewOrder) for _, r in records)
    assert [(r.order_id, r.price, r.user_id) for _, r in records] == [
        (a["id"], D(a["price"]), alice.id) for a in accepted
    ]
    assert topic_is_quiet(api_settings, api_settings.topic_orders, 3, wait_s=1.0)


async def test_an_amo_is_published_only_once_the_open_comes(
    api_settings: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    async with serve_client(api_settings, **closed_now(api_settings)) as http:
        amo = (await place(http, alice, order_body(amo=True))).json()

    with relay(api_settings) as publish:
        assert publish() == 0
        assert topic_is_quiet(api_settings, api_settings.topic_orders, 0, wait_s=1.0)
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            # The clock reaches the next open.
            conn.execute("UPDATE outbox SET available_at = now()")
        assert publish() == 1

    [(key, record)] = decode(read_topic(api_settings, api_settings.topic_orders, 1))
    assert key == amo["id"] and isinstance(record, NewOrder)


async def test_canceling_a_sent_order_asks_the_exchange_once_and_keeps_the_reserve(
    client: httpx.AsyncClient, make_user: MakeUser, api_settings: Settings, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    order = (await place(client, alice, order_body())).json()

    with relay(api_settings) as publish:
        assert publish() == 1
        first = await client.delete(f"/v1/orders/{order['id']}", headers=alice.headers)
        second = await client.delete(f"/v1/orders/{order['id']}", headers=alice.headers)
        assert publish() == 1

    assert (first.status_code, first.json()["status"]) == (202, "PENDING_CANCEL")
    assert (second.status_code, second.json()["status"]) == (202, "PENDING_CANCEL")
    records = decode(read_topic(api_settings, api_settings.topic_orders, 2))
    assert [(key, type(r)) for key, r in records] == [
        (order["id"], NewOrder),
        (order["id"], CancelOrder),
    ]
    # The exchange's cancel report releases the reserve, not the request.
    assert wallet(db_dsn, alice.id) == (D("900.0000"), D("100.0000"))
    assert topic_is_quiet(api_settings, api_settings.topic_orders, 2, wait_s=1.0)


async def test_an_order_canceled_before_the_relay_sent_it_is_never_published(
    client: httpx.AsyncClient, make_user: MakeUser, api_settings: Settings, db_dsn: str
) -> None:
    alice = await make_user(cash=D("1000"))
    order = (await place(client, alice, order_body())).json()

    cancel = await client.delete(f"/v1/orders/{order['id']}", headers=alice.headers)
    with relay(api_settings) as publish:
        assert publish() == 0

    assert (cancel.status_code, cancel.json()["status"]) == (200, "CANCELED")
    assert wallet(db_dsn, alice.id) == (D("1000.0000"), D("0.0000"))
    assert topic_is_quiet(api_settings, api_settings.topic_orders, 0, wait_s=1.0)
