"""The seed's crash question, with every part real: the bridge is killed with SIGKILL after a
NewOrderSingle is on the wire and before any report is read; after a restart the order ends in
its true state, the exchange saw one order, and settlement applied each fill exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest

from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings
from infra import topics
from tests.conftest import free_port
from tests.integration.api.conftest import MakeUser, serve
from tests.integration.api.orders_support import invariant_violations
from tests.integration.test_bridge_harness import (
    FixProxy,
    Service,
    bridge_settings,
    proxies,
    reports,
    services,
    wait_for_logons,
    wait_for_port,
    wait_until,
)
from tests.integration.worker_support import WorkerTopics, running_worker

__all__ = ["bridge_settings", "proxies", "reports", "services"]  # fixtures used below

pytestmark = pytest.mark.integration

QUANTITY = 300
FILL_QTY_MAX = 100  # the exchange fills in three reports
SETTLED_WAIT_S = 90.0


def _order_state(db_dsn: str, order_id: str) -> tuple[object, ...]:
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT o.status, o.cum_qty, o.reserved_amount,"
            " (SELECT count(*) FROM executions e"
            "  WHERE e.order_id = o.id AND e.settled_at IS NOT NULL),"
            " (SELECT count(*) FROM journal_txns j WHERE j.order_id = o.id AND j.kind = 'FILL'),"
            " (SELECT quantity FROM holdings h"
            "  WHERE h.user_id = o.user_id AND h.symbol = o.symbol),"
            " (SELECT locked_balance FROM wallets w WHERE w.user_id = o.user_id)"
            " FROM orders o WHERE o.id = %s",
            (order_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


async def test_a_bridge_killed_mid_order_recovers_and_every_fill_settles_once(
    bridge_settings: Settings,
    db_dsn: str,
    services: Callable[[str, Settings, str], Service],
    proxies: Callable[[int], FixProxy],
    new_topic: Callable[[int], str],
    make_user: MakeUser,
    tmp_path: Path,
) -> None:
    settings = bridge_settings.model_copy(
        update={
            "api_port": free_port(),
            "market_always_open": True,
            "sim_partial_fill_qty_max": FILL_QTY_MAX,
        }
    )
    topics.ensure_topics(
        settings, [topics.TopicSpec(settings.dlq_topic(settings.topic_execution_reports), 1)]
    )
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))
    services("fixbridge.simulator", settings, "exchange").start()
    wait_for_port(settings.sim_fix_port)
    proxy = proxies(settings.sim_fix_port)
    via_proxy = settings.model_copy(update={"bridge_fix_port": proxy.port})
    bridge = services("fixbridge.bridge", via_proxy, "bridge")
    bridge.start()
    services("streams.outbox_relay", settings, "relay").start()
    wait_for_logons(bridge, 1)
    trader = await make_user(cash=Decimal("1000000"))
    made = WorkerTopics(
        settings.topic_ticks, new_topic(1), settings.topic_orders, settings.topic_execution_reports
    )
    api = serve(settings)
    url = next(api)
    try:
        with running_worker(settings, db_dsn, made, tmp_path, app_module="streams.settle"):
            # The exchange's reports stop at the proxy: the order goes out, no report comes back.
            proxy.hold_downstream.set()
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
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
            wait_until(
                lambda: any(f.get(39) == "2" and f.get(11) == order_id for f in proxy.held_frames),
                "the exchange to fill the order",
            )
            bridge.kill9()
            assert _order_state(db_dsn, order_id)[:2] == ("NEW", 0)  # nothing settled yet

            proxy.hold_downstream.clear()
            restarted = services("fixbridge.bridge", via_proxy, "bridge-restarted")
            restarted.start()
            deadline = time.monotonic() + SETTLED_WAIT_S
            while _order_state(db_dsn, order_id)[0] != "FILLED":
                assert time.monotonic() < deadline, restarted.log_text()[-3000:]
                time.sleep(0.5)
            time.sleep(2)  # let any duplicate report (resend, status answer) arrive too
            state = _order_state(db_dsn, order_id)
    finally:
        api.close()

    # One NewOrderSingle with this ClOrdID ever crossed the wire.
    assert [f[11] for f in proxy.upstream("D")] == [order_id]
    status, cum_qty, reserved, settled, fill_txns, holding, locked = state
    assert (status, cum_qty, holding) == ("FILLED", QUANTITY, QUANTITY)
    assert settled == fill_txns == QUANTITY // FILL_QTY_MAX  # each fill settled exactly once
    assert (reserved, locked) == (Decimal(0), Decimal(0))  # the unused reserve came back
    assert {name: rows for name, rows in invariant_violations(db_dsn).items() if rows} == {}
