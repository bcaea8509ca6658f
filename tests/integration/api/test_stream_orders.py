"""The order SSE stream: each change of the caller's orders, in order, and only theirs.

Orders are placed and settled as in production (the API's ledger reserve, the settle agent's
settle_report); each change reaches the stream as in production too: migration 0034's triggers
write it to the outbox, the relay publishes it, the API's order feed reads the topic.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from api.security.tokens import issue_access_token
from core.contracts import Side
from core.settings import Settings
from streams.settlement import settle_report
from tests.integration.api.test_stream_support import RawSse
from tests.integration.relay_support import running_relay
from tests.integration.settle_support import Exchange, place_order, setup_user

pytestmark = pytest.mark.integration


@pytest.fixture
def relayed(api_settings: Settings) -> Iterator[None]:
    """The outbox relay of the test's database, running for the test."""
    with running_relay(api_settings):
        yield


async def test_the_order_stream_sends_each_change_of_my_orders_in_order(
    api_url: str, api_settings: Settings, db_dsn: str, relayed: None
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        mine = await setup_user(conn, "1000000")
        other = await setup_user(conn, "1000000")
    token = issue_access_token(api_settings, mine, two_factor=True)
    sse = await RawSse.open(api_url, "/v1/stream/orders", {"Authorization": f"Bearer {token}"})
    assert sse.status == 200
    try:
        async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
            theirs = await place_order(conn, api_settings, other, Side.BUY, "ACME", 10, "1500.00")
            order_id = await place_order(conn, api_settings, mine, Side.BUY, "ACME", 100, "1510.00")
            exchange = Exchange(order_id, "ACME", Side.BUY, 100)
            script = [exchange.ack(), exchange.fill(30, "1500.00"), exchange.fill(70, "1505.00")]
            for report in script:
                await settle_report(conn, report, api_settings)
            await settle_report(conn, Exchange(theirs, "ACME", Side.BUY, 10).ack(), api_settings)
            await place_order(conn, api_settings, mine, Side.BUY, "ALPHA", 5, "600.00")

        events = [await sse.next_event() for _ in range(5)]
        seen = [(e.json()["symbol"], e.json()["status"], e.json()["cum_qty"]) for e in events]
        assert seen == [
            ("ACME", "SENT", 0),
            ("ACME", "ACCEPTED", 0),
            ("ACME", "PARTIALLY_FILLED", 30),
            ("ACME", "FILLED", 100),
            ("ALPHA", "SENT", 0),
        ]
        assert {e.event for e in events} == {"order"}
        assert [int(e.id or 0) for e in events] == [1, 2, 3, 4, 5]
        # The data is the order as GET /v1/orders/{id} returns it.
        import httpx

        async with httpx.AsyncClient(base_url=api_url) as http:
            got = await http.get(
                f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}
            )
        assert events[3].json() == got.json()
    finally:
        sse.close()
