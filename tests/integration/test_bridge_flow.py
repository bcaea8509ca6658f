"""The bridge and the exchange simulator as real processes: orders in, reports out, crashes.

``python -m fixbridge.simulator`` and ``python -m fixbridge.bridge`` run as child processes against
the session's real Kafka and PostgreSQL; a FIX proxy in the test sits between them where the
test needs to see or hold the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest

from core.contracts import (
    DEAD_LETTERS,
    ORDER_COMMANDS,
    CancelOrder,
    ExecType,
    OrderStatus,
    OrderType,
    Side,
)
from core.settings import Settings
from tests.integration.test_bridge_harness import (
    FixProxy,
    Reports,
    Service,
    TopicReader,
    bridge_settings,
    fills_by_exec_id,
    insert_order,
    produce,
    proxies,
    reports,
    seed_user_and_instrument,
    sent_order_row,
    services,
    wait_for_logons,
    wait_for_port,
    wait_until,
)

pytestmark = pytest.mark.integration
__all__ = ["bridge_settings", "proxies", "reports", "services"]  # fixtures used below

Services = Callable[[str, Settings, str], Service]


def _start_exchange(services: Services, settings: Settings) -> Service:
    simulator = services("fixbridge.simulator", settings, "simulator")
    simulator.start()
    wait_for_port(settings.sim_fix_port)
    return simulator


def _start_bridge(services: Services, settings: Settings, name: str = "bridge") -> Service:
    bridge = services("fixbridge.bridge", settings, name)
    bridge.start()
    return bridge


def _is_filled(qty: int) -> Callable[[list], bool]:  # type: ignore[type-arg]
    return lambda rs: sum(f.last_qty for f in fills_by_exec_id(rs).values()) >= qty


def test_orders_reach_the_exchange_and_every_report_comes_back(
    bridge_settings: Settings, db_dsn: str, services: Services, reports: Reports
) -> None:
    user_id = seed_user_and_instrument(db_dsn)
    _start_exchange(services, bridge_settings)
    bridge = _start_bridge(services, bridge_settings)
    wait_for_logons(bridge, 1)

    market = insert_order(db_dsn, user_id, quantity=1200)
    resting = insert_order(
        db_dsn, user_id, quantity=10, order_type=OrderType.LIMIT, price=Decimal("1.00")
    )
    produce(bridge_settings, market, resting)

    got = reports.wait_for(market.order_id, _is_filled(1200), "the market order's fills")
    new, *fills = got
    assert (new.exec_type, new.order_status) == (ExecType.NEW, OrderStatus.NEW)
    assert [f.last_qty for f in fills] == [500, 500, 200]
    assert [f.cum_qty for f in fills] == [500, 1000, 1200]
    assert (fills[-1].exec_type, fills[-1].order_status, fills[-1].leaves_qty) == (
        ExecType.FILL,
        OrderStatus.FILLED,
        0,
    )
    assert len({r.exec_id for r in got}) == len(got)  # unique exec ids
    [ack] = reports.wait_for(resting.order_id, bool, "the limit order's ack")
    assert (ack.exec_type, ack.leaves_qty) == (ExecType.NEW, 10)

    # The outbox relay publishes the market order again: the bridge asks, never resends.
    produce(bridge_settings, market, CancelOrder(order_id=resting.order_id, ts_ns=1))
    status = reports.wait_for(
        market.order_id, lambda rs: rs[-1].exec_type is ExecType.ORDER_STATUS, "a status answer"
    )[-1]
    assert (status.order_status, status.cum_qty) == (OrderStatus.FILLED, 1200)
    canceled = reports.wait_for(
        resting.order_id, lambda rs: rs[-1].exec_type is ExecType.CANCELED, "the cancel"
    )[-1]
    assert (canceled.order_status, canceled.side) == (OrderStatus.CANCELED, Side.BUY)
    assert "duplicate ClOrdID" not in bridge.log_text()
    wait_until(lambda: (sent_order_row(db_dsn, resting.order_id) or [None])[0] == "CANCELED", "db")
    assert sent_order_row(db_dsn, market.order_id) == ("FILLED", True, False)
    assert bridge.stop() == 0


def test_a_bridge_killed_between_send_and_report_recovers_the_true_state(
    bridge_settings: Settings,
    db_dsn: str,
    services: Services,
    proxies: Callable[[int], FixProxy],
    reports: Reports,
) -> None:
    user_id = seed_user_and_instrument(db_dsn)
    _start_exchange(services, bridge_settings)
    proxy = proxies(bridge_settings.sim_fix_port)
    settings = bridge_settings.model_copy(update={"bridge_fix_port": proxy.port})
    bridge = _start_bridge(services, settings)
    wait_for_logons(bridge, 1)

    # The exchange's reports stop at the proxy: the order is on the wire, no report is read.
    proxy.hold_downstream.set()
    order = insert_order(db_dsn, user_id, quantity=1200)
    produce(settings, order)
    wait_until(
        lambda: any(f.get(39) == "2" and f.get(11) == order.order_id for f in proxy.held_frames),
        "the exchange to fill the order",
    )
    assert len(proxy.upstream("D")) == 1
    bridge.kill9()
    assert sent_order_row(db_dsn, order.order_id) == (None, False, False)  # recorded, no report
    assert reports.of(order.order_id) == []

    proxy.hold_downstream.clear()
    restarted = _start_bridge(services, settings, "bridge-restarted")
    got = reports.wait_for(
        order.order_id,
        lambda rs: _is_filled(1200)(rs) and any(r.exec_type is ExecType.ORDER_STATUS for r in rs),
        "the fills and the status answer after the restart",
    )

    # The exchange saw one order: one NewOrderSingle with this ClOrdID ever crossed the wire.
    assert [f[11] for f in proxy.upstream("D")] == [order.order_id]
    assert [f[11] for f in proxy.upstream("H")] == [order.order_id]  # recovery asked once
    assert "duplicate ClOrdID" not in restarted.log_text()
    # QuickFIX resent the reports the dead bridge never read (PossDupFlag) after a gap.
    assert proxy.upstream("2"), "the restarted bridge sent no ResendRequest"
    fills = fills_by_exec_id(got)
    assert sorted(f.last_qty for f in fills.values()) == [200, 500, 500]
    assert sum(f.last_qty for f in fills.values()) == 1200  # settlement applies each fill once
    [status] = [r for r in got if r.exec_type is ExecType.ORDER_STATUS]
    assert (status.order_status, status.cum_qty, status.leaves_qty) == (OrderStatus.FILLED, 1200, 0)
    wait_until(lambda: sent_order_row(db_dsn, order.order_id) == ("FILLED", True, True), "db")


def test_an_order_recorded_but_never_sent_before_a_crash_is_sent_by_the_next_bridge_once(
    bridge_settings: Settings,
    db_dsn: str,
    services: Services,
    proxies: Callable[[int], FixProxy],
    reports: Reports,
) -> None:
    user_id = seed_user_and_instrument(db_dsn)
    _start_exchange(services, bridge_settings)
    proxy = proxies(bridge_settings.sim_fix_port)
    settings = bridge_settings.model_copy(update={"bridge_fix_port": proxy.port})
    # What a bridge killed between recording the order and sending it leaves behind: the
    # record, and the command not yet committed in Kafka (it is delivered again).
    order = insert_order(db_dsn, user_id, quantity=1200)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sent_orders (order_id, new_order) VALUES (%s, %s::jsonb)",
            (order.order_id, ORDER_COMMANDS.encode(order).decode()),
        )
    produce(settings, order)

    bridge = _start_bridge(services, settings)
    got = reports.wait_for(order.order_id, _is_filled(1200), "the order's fills")

    # Asked about (recovery, then the redelivered command), unknown to the exchange, sent once.
    assert [f[11] for f in proxy.upstream("D")] == [order.order_id]
    assert proxy.upstream("H")
    assert "never reached the exchange" in bridge.log_text()
    assert all(r.order_status is not OrderStatus.REJECTED for r in got)
    assert "duplicate ClOrdID" not in bridge.log_text()
    wait_until(lambda: sent_order_row(db_dsn, order.order_id) == ("FILLED", True, True), "db")


def test_a_poison_order_command_goes_to_the_dlq_and_the_bridge_keeps_going(
    bridge_settings: Settings, db_dsn: str, services: Services, reports: Reports
) -> None:
    user_id = seed_user_and_instrument(db_dsn)
    _start_exchange(services, bridge_settings)
    bridge = _start_bridge(services, bridge_settings)
    wait_for_logons(bridge, 1)

    ghost = insert_order(db_dsn, user_id, quantity=5)
    with_db_row = insert_order(db_dsn, user_id, quantity=5)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM orders WHERE id = %s", (ghost.order_id,))
    produce(bridge_settings, b"\xff\xfenot json", b'{"type":"new_order.v1"}', key=b"k")
    produce(bridge_settings, ghost, with_db_row)

    reports.wait_for(with_db_row.order_id, _is_filled(5), "the good order's fill")
    dlq = TopicReader(bridge_settings, bridge_settings.dlq_topic(bridge_settings.topic_orders))
    try:
        dlq.read_until(lambda: len(dlq.records) >= 3, "three dead letters")
        letters = [DEAD_LETTERS.decode(value) for _, value in dlq.records]
    finally:
        dlq.close()
    # The two poison records share a key (one partition, in order); the ghost may come first.
    poison = [letter for letter in letters if letter.error_type == "ContractError"]
    [unknown] = [letter for letter in letters if letter.error_type == "UnknownOrderError"]
    assert [letter.value for letter in poison] == [b"\xff\xfenot json", b'{"type":"new_order.v1"}']
    assert unknown.key == ghost.order_id.encode()
    assert all(letter.consumer == "fixbridge" for letter in letters)
    assert reports.of(ghost.order_id) == []
    assert bridge.alive()
