"""The price hub's conflation per client: latest value only, never older, at most one per hold."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from api.feeds.order_feed import OrderSubscriber, Resync, read_payload
from api.feeds.price_events import iso_of_ns, price_e4
from api.feeds.price_hub import PriceClient, PriceHub, Quote
from api.services.order_models import OrderOut


def q(symbol: str, price: str, ts: int, seq: int = 0) -> Quote:
    return Quote(symbol, Decimal(price), ts, seq)


def test_a_client_holds_only_the_latest_quote_per_symbol() -> None:
    hub = PriceHub()
    client = PriceClient(1, frozenset({"ACME", "ALPHA"}), hold_s=0.25)
    hub.add(client)
    hub.publish([q("ACME", str(100 + n), n) for n in range(1, 10_001)])
    hub.publish([q("ALPHA", "5", 1), q("BETA", "7", 1)])
    assert client.pending == {"ACME": q("ACME", "10100", 10_000), "ALPHA": q("ALPHA", "5", 1)}


def test_older_quotes_are_never_sent_after_newer_ones() -> None:
    hub = PriceHub()
    hub.seed([q("ACME", "10", 5)])
    client = PriceClient(1, frozenset({"ACME"}), hold_s=0)
    hub.add(client)
    client.reset()
    hub.publish([q("ACME", "9", 4), q("ACME", "9.5", 5, seq=0)])
    assert client.pending == {}
    hub.publish([q("ACME", "11", 5, seq=1)])
    assert client.pending == {"ACME": q("ACME", "11", 5, seq=1)}


def test_a_symbol_is_held_back_until_its_interval_passed() -> None:
    client = PriceClient(1, frozenset({"ACME"}), hold_s=0.25)
    client.offer(q("ACME", "1", 1))
    due, wait = client.take_due(now=100.0)
    assert due == [q("ACME", "1", 1)] and wait is None
    client.offer(q("ACME", "2", 2))
    due, wait = client.take_due(now=100.1)
    assert due == [] and wait is not None and abs(wait - 0.15) < 1e-9
    due, _ = client.take_due(now=100.25)
    assert due == [q("ACME", "2", 2)]


def test_connections_are_counted_per_user_and_released() -> None:
    hub = PriceHub()
    clients = [PriceClient(7, frozenset({"ACME"}), 0) for _ in range(3)]
    for client in clients:
        hub.add(client)
    assert hub.connections(7) == 3 and hub.connections(8) == 0
    for client in clients:
        hub.remove(client)
    assert hub.connections(7) == 0 and hub.client_count() == 0
    hub.publish([q("ACME", "1", 1)])
    assert all(not c.pending for c in clients)


def test_next_batch_wakes_when_a_quote_arrives() -> None:
    async def scenario() -> list[Quote]:
        client = PriceClient(1, frozenset({"ACME"}), hold_s=0)
        waiting = asyncio.create_task(client.next_batch())
        await asyncio.sleep(0)
        client.offer(q("ACME", "3", 3))
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) == [q("ACME", "3", 3)]


def test_a_client_with_a_batch_gap_sends_what_came_meanwhile_in_one_batch() -> None:
    async def scenario() -> tuple[list[Quote], list[Quote]]:
        client = PriceClient(1, ("ACME", "ALPHA"), hold_s=0, gap_s=0.2)
        client.offer(q("ACME", "1", 1))
        first = await client.next_batch()
        waiting = asyncio.create_task(client.next_batch())
        client.offer(q("ACME", "2", 2))
        await asyncio.sleep(0.05)
        client.offer(q("ALPHA", "3", 3))
        return first, await asyncio.wait_for(waiting, 5)

    first, second = asyncio.run(scenario())
    assert first == [q("ACME", "1", 1)]
    assert second == [q("ACME", "2", 2), q("ALPHA", "3", 3)]


def test_wire_formats_are_exact() -> None:
    assert iso_of_ns(1_790_000_000_123_456_789) == "2026-09-21T14:13:20.123456Z"
    assert price_e4(Decimal("1511.8050")) == 15_118_050


def test_an_order_stream_that_falls_behind_ends_with_a_resync() -> None:
    async def scenario() -> list[object]:
        subscriber = OrderSubscriber(1, queue_max=2)
        user_id, data = read_payload(PAYLOAD)
        order = OrderOut.model_validate(data)
        assert user_id == 42
        for _ in range(5):
            subscriber.put(order)
        return [subscriber.queue.get_nowait() for _ in range(subscriber.queue.qsize())]

    items = asyncio.run(scenario())
    assert len(items) == 2 and isinstance(items[-1], Resync)


PAYLOAD = (
    '{"user_id": 42, "id": "7f1c7c3e-4a8e-4a57-9d2e-1f0f3b8e9a01", "client_order_id": "c1",'
    ' "symbol": "ACME", "side": "BUY", "type": "LIMIT", "quantity": 10, "price": 1500.05,'
    ' "trigger_price": null, "time_in_force": "DAY", "status": "SENT", "cum_qty": 0,'
    ' "avg_px": null, "reserved_amount": 15004.5015, "is_amo": false, "reject_reason": null,'
    ' "created_at": "2026-11-24T20:00:00+00:00", "updated_at": "2026-11-24T20:00:00+00:00"}'
)
