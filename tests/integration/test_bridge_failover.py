"""Two bridge processes, one leader lease: the standby takes over from a killed or paused leader.

The exchange simulator and both ``python -m fixbridge.bridge`` processes run as child processes
against the session's real Kafka and PostgreSQL, sharing one state folder (the QuickFIX file
store) as they would under the supervisor; FIX proxies in the test watch the wire.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from core.contracts import ORDER_COMMANDS, ExecType, ExecutionReport, NewOrder, OrderType
from core.settings import Settings
from fixbridge.bridge.lease import EXIT_LEASE_LOST
from tests.integration.test_bridge_harness import (
    PROCESS_STOP_S,
    WAIT_S,
    FixProxy,
    Reports,
    Service,
    bridge_settings,
    fills_by_exec_id,
    insert_order,
    produce,
    proxies,
    reports,
    seed_user_and_instrument,
    services,
    wait_for_logons,
    wait_for_port,
    wait_until,
)

pytestmark = pytest.mark.integration
__all__ = ["bridge_settings", "proxies", "reports", "services"]  # fixtures used below

log = logging.getLogger(__name__)

Services = Callable[[str, Settings, str], Service]
TAKEOVER_MAX_S = 5.0
ORDERS = 80
ORDER_QTY = 10
FEED_INTERVAL_S = 0.05  # 20 orders/s: they are still flowing when the leader dies
STANDBY_LOG = "standby for FIX session"


def _start_exchange(services: Services, settings: Settings) -> Service:
    simulator = services("fixbridge.simulator", settings, "simulator")
    simulator.start()
    wait_for_port(settings.sim_fix_port)
    return simulator


def _start_pair(services: Services, leader: Settings, standby: Settings) -> tuple[Service, Service]:
    """The first bridge logged on as the leader, the second standing by."""
    first = services("fixbridge.bridge", leader, "bridge-a")
    first.start()
    wait_for_logons(first, 1)
    second = services("fixbridge.bridge", standby, "bridge-b")
    second.start()
    wait_until(lambda: STANDBY_LOG in second.log_text(), "the second bridge to stand by")
    # A standby holds nothing: no FIX session, and the leader is the group's only consumer.
    time.sleep(standby.bridge_lease_renew_ms * 3 / 1000)
    assert "FIX session created" not in second.log_text()
    admin = AdminClient({"bootstrap.servers": leader.kafka_bootstrap})
    [group] = admin.describe_consumer_groups([leader.bridge_consumer_group]).values()
    assert len(group.result(WAIT_S).members) == 1
    return first, second


def _wait_for_takeover(standby: Service, since: float) -> float:
    """Wait until the standby logged on; return the seconds since ``since``."""
    wait_until(lambda: "FIX logon:" in standby.log_text(), "the standby's logon", WAIT_S)
    return time.monotonic() - since


def _filled(reports: list[ExecutionReport], qty: int) -> bool:
    return sum(f.last_qty for f in fills_by_exec_id(reports).values()) >= qty


def _feed(settings: Settings, orders: list[NewOrder]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    for order in orders:
        producer.produce(
            settings.topic_orders, key=order.kafka_key(), value=ORDER_COMMANDS.encode(order)
        )
        producer.flush(WAIT_S)
        time.sleep(FEED_INTERVAL_S)


def test_a_killed_leader_is_replaced_within_five_seconds_and_every_order_reaches_the_exchange_once(
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
    leader, standby = _start_pair(services, settings, settings)

    # A resting order stays unfinished: the new leader's recovery must ask about it.
    resting = insert_order(
        db_dsn, user_id, quantity=5, order_type=OrderType.LIMIT, price=Decimal("1.00")
    )
    produce(settings, resting)
    reports.wait_for(resting.order_id, bool, "the resting order's ack")
    orders = [insert_order(db_dsn, user_id, quantity=ORDER_QTY) for _ in range(ORDERS)]
    feeder = threading.Thread(target=_feed, args=(settings, orders), daemon=True)
    feeder.start()
    wait_until(lambda: len(proxy.upstream("D")) >= 1 + ORDERS // 8, "orders flowing")

    killed_at = time.monotonic()
    leader.kill9()
    takeover_s = _wait_for_takeover(standby, killed_at)
    log.info("takeover after kill -9: leading and logged on in %.2fs", takeover_s)
    feeder.join(WAIT_S)
    reports.read_until(
        lambda: all(_filled(reports.of(o.order_id), ORDER_QTY) for o in orders),
        "every order filled",
    )

    assert takeover_s < TAKEOVER_MAX_S, f"takeover took {takeover_s:.2f}s"
    # The second logon continued the stored sequence numbers (no reset, not 1).
    frames = list(proxy.upstream_frames)
    first_logon, second_logon = (i for i, f in enumerate(frames) if f.get(35) == "A")
    assert int(frames[first_logon][34]) == 1
    assert int(frames[second_logon][34]) > max(int(f[34]) for f in frames[:second_logon])
    assert 141 not in frames[second_logon]  # no ResetSeqNumFlag
    # Recovery ran on the new leader's logon and asked about the unfinished resting order.
    assert "recovery: asked the exchange for the status of" in standby.log_text()
    asked = [f[11] for f in frames[second_logon:] if f.get(35) == "H"]
    assert resting.order_id in asked
    status = reports.wait_for(
        resting.order_id,
        lambda rs: any(r.exec_type is ExecType.ORDER_STATUS for r in rs),
        "the resting order's status answer",
    )
    assert status[-1].leaves_qty == 5
    # Every order reached the exchange as a new order exactly once, and none was lost.
    sent = [f[11] for f in proxy.upstream("D") if f.get(43) != "Y"]
    assert sorted(sent) == sorted([resting.order_id] + [o.order_id for o in orders])
    with proxy._lock:
        acks = [f for f in proxy.downstream_frames if f.get(35) == "8" and f.get(150) == "0"]
    for order in orders:
        assert len({f[17] for f in acks if f[11] == order.order_id}) == 1, order.order_id
        got = reports.of(order.order_id)
        assert sum(f.last_qty for f in fills_by_exec_id(got).values()) == ORDER_QTY
        assert all(r.exec_type is not ExecType.REJECTED for r in got)
    assert "duplicate ClOrdID" not in standby.log_text()
    assert standby.log_text().count("FIX logon:") == 1
    assert standby.alive()


def test_a_paused_leader_is_replaced_and_once_resumed_sends_nothing_and_exits(
    bridge_settings: Settings,
    db_dsn: str,
    services: Services,
    proxies: Callable[[int], FixProxy],
    reports: Reports,
) -> None:
    user_id = seed_user_and_instrument(db_dsn)
    simulator = _start_exchange(services, bridge_settings)
    proxy_a = proxies(bridge_settings.sim_fix_port)
    proxy_a.keep_client_open = True  # what the paused leader writes later is still seen here
    proxy_b = proxies(bridge_settings.sim_fix_port)
    leader, standby = _start_pair(
        services,
        bridge_settings.model_copy(update={"bridge_fix_port": proxy_a.port}),
        bridge_settings.model_copy(update={"bridge_fix_port": proxy_b.port}),
    )

    def trade() -> None:
        order = insert_order(db_dsn, user_id, quantity=ORDER_QTY)
        produce(bridge_settings, order)
        reports.wait_for(order.order_id, lambda rs: _filled(rs, ORDER_QTY), "a fill")

    trade()
    assert leader.process is not None
    leader.process.send_signal(signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        sent_before_pause = len(proxy_a.upstream_frames)
        takeover_s = _wait_for_takeover(standby, paused_at)
        log.info("takeover after SIGSTOP: leading and logged on in %.2fs", takeover_s)
        assert takeover_s < TAKEOVER_MAX_S, f"takeover took {takeover_s:.2f}s"
        assert "supersedes" in simulator.log_text()  # the paused leader's connection was cut
        trade()
    finally:
        leader.process.send_signal(signal.SIGCONT)

    assert leader.process.wait(PROCESS_STOP_S) == EXIT_LEASE_LOST
    assert proxy_a.upstream_frames[sent_before_pause:] == []  # not a heartbeat, not a Logon
    assert "lease lost" in leader.log_text()
    trade()  # the new leader still holds the session
    assert standby.log_text().count("FIX logon:") == 1
    assert standby.alive()
