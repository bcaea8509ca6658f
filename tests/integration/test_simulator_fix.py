"""A real FIX 4.4 initiator (QuickFIX, written here) trading with the simulator over TCP."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

from core.settings import Settings
from fixbridge.simulator.config import data_dictionary_path, trade_report_dir
from fixbridge.simulator.runner import Simulator
from tests.conftest import free_port

pytestmark = pytest.mark.integration

WAIT_S = 15.0


@dataclass(frozen=True)
class Received:
    """A message the test initiator received, as tag -> value of its body and MsgType."""

    msg_type: str
    fields: dict[int, str]


def _fields(message: fix.Message) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in message.toString().split("\x01"):
        if "=" in part:
            tag, value = part.split("=", 1)
            out[int(tag)] = value
    return out


class Peer(fix.Application):  # type: ignore[misc]
    """The smallest initiator: remembers logon state and every message it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.logged_on = threading.Event()
        self.session_id: Any = None
        self.inbox: queue.Queue[Received] = queue.Queue()

    def onCreate(self, session_id: Any) -> None:  # noqa: N802
        self.session_id = session_id

    def onLogon(self, session_id: Any) -> None:  # noqa: N802
        self.logged_on.set()

    def onLogout(self, session_id: Any) -> None:  # noqa: N802
        self.logged_on.clear()

    def toAdmin(self, message: Any, session_id: Any) -> None:  # noqa: N802
        pass

    def fromAdmin(self, message: Any, session_id: Any) -> None:  # noqa: N802
        fields = _fields(message)
        if fields[35] == "3":
            self.inbox.put(Received("3", fields))

    def toApp(self, message: Any, session_id: Any) -> None:  # noqa: N802
        pass

    def fromApp(self, message: Any, session_id: Any) -> None:  # noqa: N802
        fields = _fields(message)
        self.inbox.put(Received(fields[35], fields))

    def send(self, msg_type: str, fields: dict[int, str]) -> None:
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in fields.items():
            message.setField(tag, value)
        fix.Session.sendToTarget(message, self.session_id)

    def expect(self, match: Callable[[Received], bool], count: int = 1) -> list[Received]:
        """The next ``count`` received messages that ``match``, within WAIT_S."""
        found: list[Received] = []
        deadline = time.monotonic() + WAIT_S
        while len(found) < count:
            try:
                item = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"waited {WAIT_S}s; got {found}")
            if match(item):
                found.append(item)
        return found


def _initiator_config(tmp_path: Path, settings: Settings) -> str:
    return "\n".join(
        [
            "[DEFAULT]",
            "ConnectionType=initiator",
            "SocketConnectHost=127.0.0.1",
            f"SocketConnectPort={settings.sim_fix_port}",
            "HeartBtInt=5",
            "ReconnectInterval=1",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            f"FileStorePath={tmp_path / 'store'}",
            "UseDataDictionary=Y",
            f"DataDictionary={data_dictionary_path()}",
            "[SESSION]",
            "BeginString=FIX.4.4",
            f"SenderCompID={settings.sim_target_comp_id}",
            f"TargetCompID={settings.sim_sender_comp_id}",
            "",
        ]
    )


def _simulator_settings(
    running_stack: Settings, topic: str, tmp_path: Path, **update: object
) -> Settings:
    return running_stack.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "topic_ticks": topic,
            "sim_fix_port": free_port(),
            "sim_tick_workers": 0,
            "sim_tick_rate_per_s": 500,
            "sim_partial_fill_qty_max": 500,
            "sim_eod_enabled": False,
            "shutdown_timeout_s": 10.0,
            **update,
        }
    )


@pytest.fixture
def simulator(
    running_stack: Settings, new_topic: Callable[[int], str], tmp_path: Path
) -> Iterator[Simulator]:
    sim = Simulator(_simulator_settings(running_stack, new_topic(1), tmp_path))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def peer(simulator: Simulator, tmp_path: Path) -> Iterator[Peer]:
    config = tmp_path / "initiator.cfg"
    config.write_text(_initiator_config(tmp_path, simulator.settings))
    session_settings = fix.SessionSettings(str(config))
    app = Peer()
    initiator = fix.SocketInitiator(
        app,
        fix.FileStoreFactory(session_settings),
        session_settings,
        fix.ScreenLogFactory(False, False, False),
    )
    initiator.start()
    try:
        assert app.logged_on.wait(WAIT_S), "the simulator did not accept the logon"
        yield app
    finally:
        initiator.stop()


def _new_order(cl_ord_id: str, **extra: str) -> dict[int, str]:
    fields = {11: cl_ord_id, 55: "ACME", 54: "1", 60: "20240916-04:00:00.000", 38: "10", 40: "1"}
    fields.update({int(k[1:]): v for k, v in extra.items()})
    return fields


def _reports_for(cl_ord_id: str) -> Callable[[Received], bool]:
    return lambda r: r.msg_type == "8" and r.fields.get(11) == cl_ord_id


def test_market_and_limit_orders_fill_and_status_tells_the_truth(
    simulator: Simulator, peer: Peer
) -> None:
    market = str(uuid.uuid4())
    peer.send("D", _new_order(market, t38="1200"))
    new, *fills = peer.expect(_reports_for(market), count=4)
    assert (new.fields[150], new.fields[39]) == ("0", "0")
    assert [f.fields[32] for f in fills] == ["500", "500", "200"]
    assert [f.fields[39] for f in fills] == ["1", "1", "2"]
    assert len({r.fields[17] for r in [new, *fills]}) == 4  # unique ExecIDs
    last = fills[-1].fields
    assert (last[14], last[151], last[150]) == ("1200", "0", "F")
    for tag in (37, 55, 54, 31, 6, 60):
        assert tag in last

    resting = str(uuid.uuid4())
    peer.send("D", _new_order(resting, t40="2", t44="1.00", t59="0"))  # far below the market
    [ack] = peer.expect(_reports_for(resting))
    assert (ack.fields[150], ack.fields[39], ack.fields[151]) == ("0", "0", "10")

    crossing = str(uuid.uuid4())
    peer.send("D", _new_order(crossing, t40="2", t44="99999.00"))  # marketable at once
    crossed = peer.expect(_reports_for(crossing), count=2)
    assert crossed[-1].fields[39] == "2"
    assert float(crossed[-1].fields[31]) <= 99999

    peer.send("H", {11: market, 55: "ACME", 54: "1"})
    [status] = peer.expect(_reports_for(market))
    assert (status.fields[150], status.fields[39], status.fields[14]) == ("I", "2", "1200")
    peer.send("H", {11: resting, 55: "ACME", 54: "1"})
    [status] = peer.expect(_reports_for(resting))
    assert (status.fields[150], status.fields[39], status.fields[151]) == ("I", "0", "10")

    cancel_id = str(uuid.uuid4())
    peer.send("F", {11: cancel_id, 41: resting, 55: "ACME", 54: "1", 60: "20240916-04:00:01"})
    [canceled] = peer.expect(_reports_for(cancel_id))
    assert (canceled.fields[150], canceled.fields[39], canceled.fields[41]) == ("4", "4", resting)

    ghost = str(uuid.uuid4())
    peer.send("H", {11: ghost, 55: "ACME", 54: "2"})
    [unknown] = peer.expect(_reports_for(ghost))
    assert (unknown.fields[150], unknown.fields[39], unknown.fields[58]) == (
        "I",
        "8",
        "unknown order",
    )


def test_business_rejects_carry_a_reason(simulator: Simulator, peer: Peer) -> None:
    cases = {
        str(uuid.uuid4()): ({"t55": "NOSUCH"}, "unknown symbol"),
        str(uuid.uuid4()): ({"t40": "2", "t44": "1520.43"}, "price not on tick size 0.05"),
        str(uuid.uuid4()): ({"t38": "0"}, "quantity must be a positive whole number of lots"),
        str(uuid.uuid4()): ({"t40": "3", "t99": "10.00"}, "unsupported order type"),
    }
    for cl_ord_id, (extra, _) in cases.items():
        peer.send("D", _new_order(cl_ord_id, **extra))
    for cl_ord_id, (_, text) in cases.items():
        [reject] = peer.expect(_reports_for(cl_ord_id))
        assert (reject.fields[150], reject.fields[39], reject.fields[58]) == ("8", "8", text)
    duplicate = next(iter(cases))
    peer.send("D", _new_order(duplicate))
    [again] = peer.expect(_reports_for(duplicate))
    assert again.fields[58] == "duplicate ClOrdID"


def test_malformed_messages_are_rejected_and_the_session_stays_up(
    simulator: Simulator, peer: Peer
) -> None:
    no_symbol = _new_order(str(uuid.uuid4()))
    del no_symbol[55]
    peer.send("D", no_symbol)
    [reject] = peer.expect(lambda r: r.msg_type == "3")
    assert reject.fields[371] == "55"  # RefTagID: the missing Symbol
    peer.send("R", {131: "quote-1", 146: "1", 55: "ACME"})  # a QuoteRequest: not an exchange's
    [business] = peer.expect(lambda r: r.msg_type == "j")
    assert business.fields[372] == "R"
    assert peer.logged_on.is_set()
    after = str(uuid.uuid4())
    peer.send("D", _new_order(after))
    assert peer.expect(_reports_for(after), count=2)[-1].fields[39] == "2"


def test_end_of_day_expires_day_orders_and_writes_the_report(
    simulator: Simulator, peer: Peer
) -> None:
    filled, resting = str(uuid.uuid4()), str(uuid.uuid4())
    peer.send("D", _new_order(filled, t38="700"))
    peer.expect(_reports_for(filled), count=3)
    peer.send("D", _new_order(resting, t40="2", t44="1.00"))
    peer.expect(_reports_for(resting))
    files = simulator.end_of_day()
    [expired] = peer.expect(_reports_for(resting))
    assert (expired.fields[150], expired.fields[39]) == ("C", "C")
    rows = files.csv_path.read_text().splitlines()
    assert rows[0] == "exec_id,cl_ord_id,symbol,side,qty,price,exec_time"
    assert sorted(r.split(",")[4] for r in rows[1:] if filled in r) == ["200", "500"]


def test_the_demo_close_writes_the_report_and_leaves_resting_orders_alone(
    simulator: Simulator, peer: Peer
) -> None:
    filled, resting = str(uuid.uuid4()), str(uuid.uuid4())
    peer.send("D", _new_order(filled))
    peer.expect(_reports_for(filled), count=2)
    peer.send("D", _new_order(resting, t40="2", t44="1.00"))
    peer.expect(_reports_for(resting))

    files = simulator.demo_close()

    # The first report about the resting order after the close answers the status request.
    peer.send("H", {11: resting, 55: "ACME", 54: "1"})
    [status] = peer.expect(_reports_for(resting))
    assert (status.fields[150], status.fields[39]) == ("I", "0")
    rows = files.csv_path.read_text().splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == [filled]


def test_in_always_open_mode_a_report_lands_on_its_own(
    running_stack: Settings, new_topic: Callable[[int], str], tmp_path: Path
) -> None:
    settings = _simulator_settings(
        running_stack,
        new_topic(1),
        tmp_path,
        market_always_open=True,
        sim_demo_close_first_s=1,
        sim_demo_close_interval_s=1,
    )
    sim = Simulator(settings)
    sim.start()
    try:
        landing = trade_report_dir(settings)
        assert landing.is_dir()  # from the start, before any report: the sensor watches it
        deadline = time.monotonic() + WAIT_S
        while not list(landing.glob("trade_report_*.csv")):
            assert time.monotonic() < deadline, f"no report in {landing} after {WAIT_S}s"
            time.sleep(0.1)
    finally:
        sim.stop()
