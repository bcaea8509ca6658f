"""The bridge's FIX session layer under stress: lost messages, malformed messages, garbage.

The exchange simulator runs in this process (so the test can send crafted messages from the
exchange's own QuickFIX session, with correct sequence numbers); the bridge runs as a child
process behind a FIX proxy that drops or injects frames. The bad messages are aimed at the bridge:
it is the side this project writes, and the one whose session must stay up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import quickfix as fix

from core.contracts import ExecType
from core.settings import Settings
from fixbridge.simulator.runner import Simulator
from tests.integration.test_bridge_harness import (
    FixProxy,
    Reports,
    Service,
    bridge_settings,
    fills_by_exec_id,
    insert_order,
    produce,
    proxies,
    raw_frame,
    reports,
    seed_user_and_instrument,
    services,
    wait_for_logons,
    wait_until,
)

pytestmark = pytest.mark.integration
__all__ = ["bridge_settings", "proxies", "reports", "services"]  # fixtures used below

BAD_MESSAGES = 100


@pytest.fixture
def exchange(bridge_settings: Settings) -> Iterator[Simulator]:
    """The exchange simulator, in this process."""
    simulator = Simulator(bridge_settings)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def bridge_behind_proxy(
    bridge_settings: Settings,
    exchange: Simulator,
    services: Callable[[str, Settings, str], Service],
    proxies: Callable[[int], FixProxy],
) -> tuple[Service, FixProxy]:
    """The bridge process, logged on to the exchange through a FIX proxy."""
    proxy = proxies(bridge_settings.sim_fix_port)
    settings = bridge_settings.model_copy(update={"bridge_fix_port": proxy.port})
    bridge = services("fixbridge.bridge", settings, "bridge")
    bridge.start()
    wait_for_logons(bridge, 1)
    return bridge, proxy


def _trade(settings: Settings, dsn: str, user_id: int, reports: Reports, qty: int) -> list[str]:
    """Place a market order and wait for all its fills; return their exec ids."""
    order = insert_order(dsn, user_id, quantity=qty)
    produce(settings, order)
    got = reports.wait_for(
        order.order_id,
        lambda rs: sum(f.last_qty for f in fills_by_exec_id(rs).values()) >= qty,
        "the order's fills",
    )
    return list(fills_by_exec_id(got))


def test_a_lost_report_is_recovered_by_resend_request_and_gap_fill(
    bridge_settings: Settings,
    db_dsn: str,
    bridge_behind_proxy: tuple[Service, FixProxy],
    reports: Reports,
) -> None:
    bridge, proxy = bridge_behind_proxy
    user_id = seed_user_and_instrument(db_dsn)
    dropped: list[str] = []

    def drop_first_fill(fields: dict[int, str]) -> bool:
        # Drop the first fill report once; its resend (PossDupFlag=Y) must pass.
        if not dropped and fields.get(35) == "8" and fields.get(150) == "F":
            dropped.append(fields[17])
            return True
        return False

    proxy.drop_downstream = drop_first_fill
    exec_ids = _trade(bridge_settings, db_dsn, user_id, reports, 1200)

    assert len(dropped) == 1
    assert dropped[0] in exec_ids  # the lost fill reached Kafka after all
    assert len(exec_ids) == 3
    [resend_request] = proxy.upstream("2")  # the bridge saw the gap and asked once
    assert int(resend_request[7]) == int(proxy.dropped_frames[0][34])  # BeginSeqNo: the lost one
    resent = [f for f in proxy.downstream_frames if f.get(17) == dropped[0]]
    assert [f.get(43) for f in resent] == ["Y"]  # resent as a possible duplicate
    # In sync again: the session never dropped, and the next order trades normally.
    assert len(_trade(bridge_settings, db_dsn, user_id, reports, 700)) == 2
    assert bridge.log_text().count("FIX logon:") == 1
    assert "logout or disconnect" not in bridge.log_text()


def _exchange_session() -> fix.SessionID:
    return fix.SessionID("FIX.4.4", "EXCHANGE", "BROKER")


def _send_from_exchange(msg_type: str, fields: dict[int, str]) -> None:
    message = fix.Message()
    message.getHeader().setField(35, msg_type)
    for tag, value in fields.items():
        message.setField(tag, value)
    assert fix.Session.sendToTarget(message, _exchange_session())


def _fill_fields(order_id: str) -> dict[int, str]:
    return {
        37: "X-1",
        11: order_id,
        17: f"BAD-{uuid.uuid4().hex[:8]}",
        150: "F",
        39: "1",
        55: "ACME",
        54: "1",
        38: "10",
        32: "5",
        31: "100.00",
        151: "5",
        14: "5",
        6: "100.00",
    }


def test_a_hundred_malformed_messages_leave_the_session_up(
    bridge_settings: Settings,
    db_dsn: str,
    bridge_behind_proxy: tuple[Service, FixProxy],
    reports: Reports,
) -> None:
    bridge, proxy = bridge_behind_proxy
    user_id = seed_user_and_instrument(db_dsn)
    order_id = str(uuid.uuid4())
    checksum_bad, tags_missing = 34, 33
    unknown_type = BAD_MESSAGES - checksum_bad - tags_missing

    # Wrong checksum, written raw on the socket: the session layer discards them unanswered.
    for n in range(checksum_bad):
        frame_fields = [(35, "8"), (49, "EXCHANGE"), (56, "BROKER"), (34, str(900 + n))]
        frame_fields += [(52, "20240916-04:00:00.000"), *_fill_fields(order_id).items()]
        proxy.inject_downstream(raw_frame(frame_fields, checksum_delta=1 + n % 200))
    # Missing tags: ExecID (QuickFIX's dictionary check) or a fill's LastPx (the bridge's own).
    for n in range(tags_missing):
        fields = _fill_fields(order_id)
        del fields[17 if n % 2 else 31]
        _send_from_exchange("8", fields)
    # Unknown MsgType: one the dictionary lacks, and one a broker never takes (QuoteRequest).
    for n in range(unknown_type):
        if n % 2:
            _send_from_exchange("R", {131: f"q-{n}", 146: "1", 55: "ACME"})
        else:
            _send_from_exchange("ZZ", {58: "what is this"})

    answered = tags_missing + unknown_type
    wait_until(
        lambda: len(proxy.upstream("3")) + len(proxy.upstream("j")) >= answered,
        "a reject for every malformed message with a valid checksum",
    )
    rejects, business = proxy.upstream("3"), proxy.upstream("j")
    assert len(business) == unknown_type // 2  # the QuoteRequests
    assert len(rejects) == tags_missing + unknown_type - unknown_type // 2
    assert {r[373] for r in rejects} == {"1", "11"}  # required tag missing, invalid MsgType
    assert {r[371] for r in rejects if r[373] == "1"} == {"17", "31"}
    # Still the first logon, and the session still trades; nothing bad reached Kafka.
    assert len(_trade(bridge_settings, db_dsn, user_id, reports, 600)) == 2
    assert bridge.log_text().count("FIX logon:") == 1
    assert reports.of(order_id) == []

    # Bytes QuickFIX cannot frame are logged and skipped ("BodyLength is missing"), the session
    # stays up; a well-framed message of another FIX version is fatal to the session: QuickFIX
    # logs out and drops the connection, and the bridge reconnects and logs on again.
    proxy.inject_downstream(b"8=FIX.4.4\x019=garbage\x0135=8\x0110=000\x01")
    events = bridge_settings.state_dir / "bridge" / "fix-log"
    events_log = events / "FIX.4.4-BROKER-EXCHANGE.event.current.log"
    wait_until(lambda: "BodyLength is missing" in events_log.read_text(), "the garbage logged")
    header = [(35, "0"), (49, "EXCHANGE"), (56, "BROKER"), (34, "1")]
    proxy.inject_downstream(raw_frame(header, begin_string="FIX.4.2"))
    wait_for_logons(bridge, 2)
    assert len(_trade(bridge_settings, db_dsn, user_id, reports, 100)) == 1
    assert all(r.exec_type is not ExecType.REJECTED for r in reports.of(order_id))
