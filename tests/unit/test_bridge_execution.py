"""The bridge's order routing, report forwarding and recovery, with hand-written fakes."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
import quickfix as fix

from core.contracts import (
    ORDER_COMMANDS,
    CancelOrder,
    DeadLetter,
    ExecType,
    ExecutionReport,
    NewOrder,
    OrderStatus,
    OrderStatusRequest,
    OrderType,
    Side,
    TimeInForce,
)
from fixbridge import fix44
from fixbridge.bridge import parsing as p
from fixbridge.bridge.exceptions import UnknownOrderError
from fixbridge.bridge.execution import OrderRouter, ReportForwarder
from fixbridge.bridge.ports import ResendClaim
from fixbridge.bridge.recovery import UnknownOrderAnswers, request_unfinished_statuses
from tests.bridge_records import unknown_order_answer

NOW_NS = 1_726_459_200_000_000_000


class FakeStore:
    """``sent_orders`` and ``orders`` in memory."""

    def __init__(self, orders: list[p.OrderRef]) -> None:
        self.orders = {o.order_id: o for o in orders}
        self.sent: set[str] = set()
        self.commands: dict[str, str] = {}
        self.answered: set[str] = set()
        self.resent: set[str] = set()
        self.final: set[str] = set()
        self.status_requested: list[str] = []
        self.reports: list[ExecutionReport] = []
        self.fail_reports = False

    def record_sent(self, order_id: str, command: str) -> bool:
        if order_id not in self.orders:
            raise UnknownOrderError(order_id)
        fresh = order_id not in self.sent
        self.sent.add(order_id)
        self.commands.setdefault(order_id, command)
        return fresh

    def claim_resend(self, order_id: str) -> ResendClaim:
        never_answered = order_id in self.commands and order_id not in self.answered
        if not never_answered or order_id in self.resent:
            return ResendClaim(never_answered, None)
        self.resent.add(order_id)
        return ResendClaim(True, self.commands[order_id])

    def order_ref(self, order_id: str) -> p.OrderRef:
        if order_id not in self.orders:
            raise UnknownOrderError(order_id)
        return self.orders[order_id]

    def unfinished(self, after: str | None, limit: int) -> list[p.OrderRef]:
        ids = sorted(i for i in self.sent - self.final if after is None or i > after)
        return [self.orders[i] for i in ids[:limit]]

    def mark_status_requested(self, order_ids: list[str]) -> None:
        self.status_requested += order_ids

    def record_report(self, report: ExecutionReport) -> None:
        if self.fail_reports:
            raise psycopg.OperationalError("database down")
        self.answered.add(report.order_id)
        self.reports.append(report)


class FakeSender:
    """Keeps what would go on the wire as (MsgType, ClOrdID)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, message: fix.Message) -> None:
        p.check_outbound(message)
        self.sent.append((fix44.msg_type(message), message.getField(fix44.TAG_CL_ORD_ID)))


class FakePublisher:
    """Keeps published reports."""

    def __init__(self) -> None:
        self.reports: list[ExecutionReport] = []

    def publish(self, report: ExecutionReport) -> None:
        self.reports.append(report)

    def dead_letter(self, topic: str, letter: DeadLetter) -> None:
        raise AssertionError("not expected")

    def flush(self) -> None:
        pass


def _order_id() -> str:
    return str(uuid.uuid4())


def _new_order(order_id: str) -> NewOrder:
    return NewOrder(
        order_id=order_id,
        user_id=1,
        symbol="ACME",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=10,
        time_in_force=TimeInForce.DAY,
        ts_created_ns=NOW_NS,
    )


def _ref(order_id: str) -> p.OrderRef:
    return p.OrderRef(order_id, "ACME", Side.BUY, 10)


def test_a_new_order_is_recorded_then_sent_once_and_a_redelivery_asks_its_status() -> None:
    order_id = _order_id()
    store, sender = FakeStore([_ref(order_id)]), FakeSender()
    router = OrderRouter(store, sender, clock_ns=lambda: NOW_NS)
    router.handle(_new_order(order_id))
    router.handle(_new_order(order_id))  # the outbox relay published it again
    assert sender.sent == [("D", order_id), ("H", order_id)]
    assert store.sent == {order_id}


def test_a_new_order_missing_from_the_database_is_not_sent() -> None:
    store, sender = FakeStore([]), FakeSender()
    with pytest.raises(UnknownOrderError):
        OrderRouter(store, sender).handle(_new_order(_order_id()))
    assert sender.sent == []


def test_a_cancel_gets_a_fresh_clordid_and_names_the_order() -> None:
    order_id = _order_id()
    store, sender = FakeStore([_ref(order_id)]), FakeSender()
    router = OrderRouter(store, sender)
    router.handle(CancelOrder(order_id=order_id, ts_ns=NOW_NS))
    router.handle(OrderStatusRequest(order_id=order_id, ts_ns=NOW_NS))
    [(cancel_type, cancel_id), status] = sender.sent
    assert cancel_type == "F"
    assert cancel_id != order_id
    assert status == ("H", order_id)


def test_recovery_asks_about_every_unfinished_order_across_pages() -> None:
    ids = sorted(_order_id() for _ in range(7))
    store, sender = FakeStore([_ref(i) for i in ids]), FakeSender()
    store.sent = set(ids)
    store.final = {ids[3]}
    asked = request_unfinished_statuses(store, sender, page_max=2)
    expected = [i for i in ids if i != ids[3]]
    assert asked == 6
    assert sender.sent == [("H", i) for i in expected]
    assert store.status_requested == expected


def _report(order_id: str) -> ExecutionReport:
    return ExecutionReport(
        exec_id="E-1",
        order_id=order_id,
        exec_type=ExecType.FILL,
        order_status=OrderStatus.FILLED,
        symbol="ACME",
        side=Side.BUY,
        last_qty=10,
        last_px=Decimal("1520.40"),
        cum_qty=10,
        leaves_qty=0,
        avg_px=Decimal("1520.40"),
        ts_transact_ns=NOW_NS,
    )


def test_a_report_is_published_before_it_is_recorded_and_a_db_failure_does_not_lose_it() -> None:
    order_id = _order_id()
    store, publisher = FakeStore([_ref(order_id)]), FakePublisher()
    forward = ReportForwarder(publisher, store)
    forward(_report(order_id))
    store.fail_reports = True
    forward(_report(order_id))
    assert len(publisher.reports) == 2
    assert len(store.reports) == 1


@pytest.mark.parametrize(
    ("history", "answers", "sent", "forwarded"),
    [
        # Recorded, then the leader died before sending: sent now, as it was commanded.
        ("recorded", 1, [("D", "order")], 0),
        # Two status requests of one session, two "unknown" answers: one resend only.
        ("recorded", 2, [("D", "order")], 0),
        # The exchange answered about it before (it held it, then lost it): its answer stands.
        ("answered", 1, [], 1),
        # Never recorded as sent (a status command for an unsent order): nothing to resend.
        ("unrecorded", 1, [], 1),
    ],
)
def test_an_unknown_order_answer_resends_only_an_order_the_exchange_never_answered(
    history: str, answers: int, sent: list[tuple[str, str]], forwarded: int
) -> None:
    order_id = _order_id()
    store, sender, publisher = FakeStore([_ref(order_id)]), FakeSender(), FakePublisher()
    if history != "unrecorded":
        store.record_sent(order_id, ORDER_COMMANDS.encode(_new_order(order_id)).decode())
    if history == "answered":
        store.record_report(_report(order_id))
    handle = UnknownOrderAnswers(store, sender, ReportForwarder(publisher, store), lambda: NOW_NS)
    for _ in range(answers):
        handle(unknown_order_answer(order_id, ts_ns=NOW_NS))
    assert sender.sent == [(kind, order_id) for kind, _ in sent]
    assert len(publisher.reports) == forwarded
