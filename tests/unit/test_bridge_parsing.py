"""FIX <-> contract translation of the bridge, checked against the simulator's own FIX writer."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
import quickfix as fix

from core.contracts import ExecType, NewOrder, OrderStatus, OrderType, Side, TimeInForce
from fixbridge import fix44
from fixbridge.bridge import parsing as p
from fixbridge.bridge.config import initiator_config
from fixbridge.exceptions import FixMessageError
from fixbridge.simulator import fix_messages as sim_fix
from fixbridge.simulator.matching import Report

NOW_NS = 1_726_459_200_123_456_000  # 2024-09-16 04:00:00.123456 UTC
ORDER_ID = "0b0e7c4e-5d7a-4a53-9f37-2f1f3b1c0d11"


def _report(**changes: object) -> Report:
    base = Report(
        exec_id="E1-7",
        order_id="X-1",
        cl_ord_id=ORDER_ID,
        orig_cl_ord_id=None,
        symbol="ACME",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        order_qty=1200,
        price=None,
        exec_type=ExecType.PARTIAL_FILL,
        ord_status=OrderStatus.PARTIALLY_FILLED,
        last_qty=500,
        last_px=Decimal("1520.40"),
        cum_qty=500,
        leaves_qty=700,
        avg_px=Decimal("1520.4"),
        ts_transact_ns=NOW_NS,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _wire(message: fix.Message) -> fix.Message:
    """The message as the bridge receives it: serialized, then parsed back by QuickFIX."""
    header = message.getHeader()
    header.setField(8, "FIX.4.4")
    header.setField(49, "EXCHANGE")
    header.setField(56, "BROKER")
    header.setField(34, "7")
    header.setField(52, "20240916-04:00:00.000")
    parsed = fix.Message()
    parsed.setString(message.toString())
    return parsed


def test_a_partial_fill_decodes_to_its_contract_record() -> None:
    record = p.parse_execution_report(_wire(sim_fix.execution_report(_report())), NOW_NS + 1)
    assert record.exec_id == "E1-7"
    assert record.order_id == ORDER_ID
    assert (record.exec_type, record.order_status) == (
        ExecType.PARTIAL_FILL,
        OrderStatus.PARTIALLY_FILLED,
    )
    assert (record.last_qty, record.last_px, record.cum_qty, record.leaves_qty) == (
        500,
        Decimal("1520.40"),
        500,
        700,
    )
    assert record.avg_px == Decimal("1520.4000")
    assert record.ts_transact_ns == NOW_NS


def test_the_last_fill_is_a_fill_and_avg_px_is_rounded_to_money() -> None:
    fix_report = _report(
        exec_type=ExecType.FILL,
        ord_status=OrderStatus.FILLED,
        cum_qty=1200,
        leaves_qty=0,
        avg_px=Decimal("1520.416666666"),
    )
    record = p.parse_execution_report(_wire(sim_fix.execution_report(fix_report)), NOW_NS)
    assert (record.exec_type, record.order_status) == (ExecType.FILL, OrderStatus.FILLED)
    assert record.avg_px == Decimal("1520.4167")


def test_a_cancel_report_names_the_original_order() -> None:
    cancel_id = str(uuid.uuid4())
    fix_report = _report(
        cl_ord_id=cancel_id,
        orig_cl_ord_id=ORDER_ID,
        exec_type=ExecType.CANCELED,
        ord_status=OrderStatus.CANCELED,
        last_qty=0,
        last_px=None,
        leaves_qty=0,
    )
    record = p.parse_execution_report(_wire(sim_fix.execution_report(fix_report)), NOW_NS)
    assert record.order_id == ORDER_ID
    assert (record.exec_type, record.last_qty, record.last_px) == (ExecType.CANCELED, 0, None)


def test_an_unknown_order_status_answer_is_a_final_rejected_status() -> None:
    fix_report = _report(
        order_id="NONE",
        exec_type=ExecType.ORDER_STATUS,
        ord_status=OrderStatus.REJECTED,
        last_qty=0,
        last_px=None,
        cum_qty=0,
        leaves_qty=0,
        avg_px=Decimal(0),
        text="unknown order",
    )
    message = _wire(sim_fix.execution_report(fix_report))
    record = p.parse_execution_report(message, NOW_NS)
    assert (record.exec_type, record.order_status, record.text) == (
        ExecType.ORDER_STATUS,
        OrderStatus.REJECTED,
        "unknown order",
    )
    assert p.is_unknown_order_status(message)


def test_a_status_answer_about_a_known_order_is_not_unknown() -> None:
    known = _report(exec_type=ExecType.ORDER_STATUS, last_qty=0, last_px=None)
    rejected = _report(
        order_id="NONE",
        exec_type=ExecType.REJECTED,
        ord_status=OrderStatus.REJECTED,
        last_qty=0,
        last_px=None,
        cum_qty=0,
        leaves_qty=0,
        avg_px=Decimal(0),
        text="unknown symbol",
    )
    for report in (known, rejected, _report()):
        assert not p.is_unknown_order_status(_wire(sim_fix.execution_report(report)))


@pytest.mark.parametrize(
    ("tag", "value", "reject_tag"),
    [
        (fix44.TAG_CUM_QTY, None, fix44.TAG_CUM_QTY),  # removed
        (fix44.TAG_LAST_PX, None, fix44.TAG_LAST_PX),  # a fill without a price
        (fix44.TAG_ORD_STATUS, "Z", fix44.TAG_ORD_STATUS),
        (fix44.TAG_EXEC_TYPE, "5", fix44.TAG_EXEC_TYPE),  # Replace: the bridge never asks for one
        (fix44.TAG_CUM_QTY, "12.5", fix44.TAG_CUM_QTY),
        (fix44.TAG_LAST_PX, "abc", fix44.TAG_LAST_PX),
        (fix44.TAG_TRANSACT_TIME, "yesterday", fix44.TAG_TRANSACT_TIME),
        (fix44.TAG_CL_ORD_ID, "not-a-uuid", None),
    ],
)
def test_an_invalid_report_raises_a_session_reject(
    tag: int, value: str | None, reject_tag: int | None
) -> None:
    message = _wire(sim_fix.execution_report(_report()))
    if value is None:
        message.removeField(tag)
    else:
        message.setField(tag, value)
    with pytest.raises(FixMessageError) as caught:
        p.parse_execution_report(message, NOW_NS)
    assert caught.value.tag == reject_tag
    assert not caught.value.business
    reject = fix44.reject_for(message, caught.value)
    assert fix44.msg_type(reject) == fix44.MSG_REJECT
    assert reject.getField(fix44.TAG_REF_SEQ_NUM) == "7"


def test_a_duplicate_clordid_reject_is_recognized() -> None:
    fix_report = _report(
        order_id="NONE",
        exec_type=ExecType.REJECTED,
        ord_status=OrderStatus.REJECTED,
        last_qty=0,
        last_px=None,
        cum_qty=0,
        leaves_qty=0,
        avg_px=Decimal(0),
        text="duplicate ClOrdID",
    )
    assert p.is_duplicate_reject(_wire(sim_fix.execution_report(fix_report)))
    assert not p.is_duplicate_reject(_wire(sim_fix.execution_report(_report())))


def _new_order(**changes: object) -> NewOrder:
    fields: dict[str, object] = {
        "order_id": ORDER_ID,
        "user_id": 1,
        "symbol": "ACME",
        "side": Side.SELL,
        "order_type": OrderType.LIMIT,
        "quantity": 25,
        "price": Decimal("1520.45"),
        "time_in_force": TimeInForce.IOC,
        "ts_created_ns": NOW_NS,
    }
    fields.update(changes)
    return NewOrder(**fields)  # type: ignore[arg-type]


def test_a_new_order_becomes_a_new_order_single_the_exchange_parses_back() -> None:
    message = p.new_order_single(_new_order(), NOW_NS)
    p.check_outbound(message)
    request = sim_fix.parse_new_order(_wire(message))
    assert (request.cl_ord_id, request.symbol, request.side) == (ORDER_ID, "ACME", Side.SELL)
    assert (request.order_type, request.qty, request.price) == (
        OrderType.LIMIT,
        25,
        Decimal("1520.45"),
    )
    assert request.time_in_force is TimeInForce.IOC
    assert message.getField(fix44.TAG_TRANSACT_TIME) == "20240916-04:00:00.123456"


def test_a_market_order_carries_no_price() -> None:
    message = p.new_order_single(_new_order(order_type=OrderType.MARKET, price=None), NOW_NS)
    p.check_outbound(message)
    assert not message.isSetField(fix44.TAG_PRICE)
    assert message.getField(fix44.TAG_ORD_TYPE) == "1"


def test_cancel_and_status_requests_name_the_order() -> None:
    order = p.OrderRef(ORDER_ID, "ACME", Side.BUY, 40)
    cancel_id = str(uuid.uuid4())
    cancel = p.order_cancel_request(order, cancel_id, NOW_NS)
    p.check_outbound(cancel)
    assert (cancel.getField(41), cancel.getField(11), cancel.getField(38)) == (
        ORDER_ID,
        cancel_id,
        "40",
    )
    status = p.order_status_request(order)
    p.check_outbound(status)
    assert (status.getField(11), status.getField(55), status.getField(54)) == (
        ORDER_ID,
        "ACME",
        "1",
    )


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (fix44.TAG_CL_ORD_ID, "ABC"),
        (fix44.TAG_ORDER_QTY, "0"),
        (fix44.TAG_PRICE, "-1"),
        (fix44.TAG_SIDE, "7"),
    ],
)
def test_an_outbound_message_is_checked_before_sending(tag: int, value: str) -> None:
    message = p.new_order_single(_new_order(), NOW_NS)
    message.setField(tag, value)
    with pytest.raises(ValueError, match=f"{tag}|side|OrderQty"):
        p.check_outbound(message)


def test_an_outbound_message_missing_a_tag_is_refused() -> None:
    message = p.order_status_request(p.OrderRef(ORDER_ID, "ACME", Side.BUY, 1))
    message.removeField(fix44.TAG_SYMBOL)
    with pytest.raises(ValueError, match="missing tags"):
        p.check_outbound(message)


def test_the_initiator_config_keeps_sequence_numbers_across_restarts() -> None:
    from core.settings import Settings

    text = initiator_config(Settings(bridge_fix_port=9999, bridge_reconnect_interval_s=3))
    for line in (
        "ConnectionType=initiator",
        "SocketConnectPort=9999",
        "ReconnectInterval=3",
        "ResetOnLogon=N",
        "ResetOnDisconnect=N",
        "PersistMessages=Y",
        "SenderCompID=BROKER",
        "TargetCompID=EXCHANGE",
    ):
        assert line in text.splitlines()
