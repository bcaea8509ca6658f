"""End to end: an order placed through the API reaches the exchange over FIX and its fills come
back on exch.execution-reports. Every part is real: the API server, PostgreSQL, the outbox relay,
Kafka, the FIX bridge and the exchange simulator, each of the last three as its own process.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import psycopg
import pytest

from core.contracts import ExecType, OrderStatus
from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings
from tests.conftest import free_port
from tests.integration.api.conftest import MakeUser, serve
from tests.integration.test_bridge_harness import (
    Reports,
    Service,
    bridge_settings,
    fills_by_exec_id,
    reports,
    services,
    wait_for_logons,
    wait_for_port,
)

__all__ = ["bridge_settings", "reports", "services"]  # fixtures used below

pytestmark = pytest.mark.integration

QUANTITY = 10


async def test_an_api_order_is_filled_by_the_exchange_and_the_fills_reach_kafka(
    bridge_settings: Settings,
    db_dsn: str,
    services: object,
    reports: Reports,
    make_user: MakeUser,
) -> None:
    settings = bridge_settings.model_copy(
        update={"api_port": free_port(), "market_always_open": True}
    )
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))
    assert callable(services)
    exchange: Service = services("fixbridge.simulator", settings, "exchange")
    exchange.start()
    wait_for_port(settings.sim_fix_port)
    bridge: Service = services("fixbridge.bridge", settings, "bridge")
    bridge.start()
    relay: Service = services("streams.outbox_relay", settings, "relay")
    relay.start()
    wait_for_logons(bridge, 1)
    trader = await make_user(cash=Decimal("100000"))
    url = next(api := serve(settings))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            # A buy limited far above the market is marketable: the exchange fills it at once.
            response = await client.post(
                "/v1/orders",
                headers={**trader.headers, "X-Idempotency-Key": uuid.uuid4().hex},
                json={
                    "symbol": "ACME",
                    "side": "BUY",
                    "quantity": QUANTITY,
                    "type": "LIMIT",
                    "price": "3000.00",
                },
            )
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]

        got = reports.wait_for(
            order_id,
            lambda rs: sum(f.last_qty for f in fills_by_exec_id(rs).values()) >= QUANTITY,
            "the fills of the API order",
        )
    finally:
        api.close()

    fills = list(fills_by_exec_id(got).values())
    assert sum(f.last_qty for f in fills) == QUANTITY
    assert got[-1].order_status is OrderStatus.FILLED
    assert got[0].exec_type is ExecType.NEW
    assert all(f.symbol == "ACME" and f.last_px is not None for f in fills)
    assert relay.alive() and bridge.alive() and exchange.alive()
