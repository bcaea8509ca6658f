"""The matching engine as pure logic: fills, resting, IOC, DAY expiry, cancels, rejects, status."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from core.contracts.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce
from fixbridge.simulator import matching as m
from fixbridge.simulator.matching import CancelReject, MatchingEngine, NewOrderRequest
from fixbridge.simulator.universe import Instrument

ACME = Instrument("ACME", Decimal("0.05"), 1, Decimal("100.00"), 0.05, 0.2)
LOTS = Instrument("LOTS", Decimal("0.01"), 10, Decimal("10.00"), 0.0, 0.2)


class FakeMarket:
    """Prices set by the test."""

    def __init__(self) -> None:
        self.prices = {"ACME": Decimal("100.00"), "LOTS": Decimal("10.00")}

    def price(self, symbol: str) -> Decimal | None:
        return self.prices.get(symbol)


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def engine(market: FakeMarket) -> MatchingEngine:
    clock = itertools.count(1_700_000_000_000_000_000, 1000)
    return MatchingEngine(
        [ACME, LOTS],
        market.price,
        partial_fill_qty_max=100,
        id_prefix="T",
        clock_ns=lambda: next(clock),
    )


def order(
    cl_ord_id: str = "c1",
    *,
    symbol: str = "ACME",
    side: Side = Side.BUY,
    order_type: OrderType | None = OrderType.MARKET,
    qty: int = 10,
    price: str | None = None,
    tif: TimeInForce | None = TimeInForce.DAY,
) -> NewOrderRequest:
    return NewOrderRequest(
        cl_ord_id, symbol, side, order_type, qty, None if price is None else Decimal(price), tif
    )


def test_market_order_fills_at_the_current_price(engine: MatchingEngine) -> None:
    reports = engine.new_order(order(qty=10))
    assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.FILL]
    fill = reports[-1]
    assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty) == (
        10,
        Decimal("100.00"),
        10,
        0,
    )
    assert fill.ord_status is OrderStatus.FILLED and fill.avg_px == Decimal("100.0000")
    assert fill.order_id == reports[0].order_id and fill.cl_ord_id == "c1"


def test_large_market_order_fills_in_several_executions(engine: MatchingEngine) -> None:
    reports = engine.new_order(order(qty=250))
    fills = [r for r in reports if r.last_qty]
    assert [f.last_qty for f in fills] == [100, 100, 50]
    assert [f.exec_type for f in fills] == [ExecType.PARTIAL_FILL] * 2 + [ExecType.FILL]
    assert [f.cum_qty for f in fills] == [100, 200, 250]
    assert [f.leaves_qty for f in fills] == [150, 50, 0]
    assert len({r.exec_id for r in reports}) == len(reports)


def test_limit_order_rests_then_fills_when_the_price_crosses(
    engine: MatchingEngine, market: FakeMarket
) -> None:
    reports = engine.new_order(order(order_type=OrderType.LIMIT, qty=150, price="99.50"))
    assert [r.exec_type for r in reports] == [ExecType.NEW]
    assert engine.resting_count() == 1
    assert engine.on_prices({"ACME": Decimal("99.55")}) == []
    first = engine.on_prices({"ACME": Decimal("99.40")})
    assert [(r.last_qty, r.last_px, r.ord_status) for r in first] == [
        (100, Decimal("99.40"), OrderStatus.PARTIALLY_FILLED)
    ]
    second = engine.on_prices({"ACME": Decimal("99.50")})
    assert [(r.last_qty, r.ord_status, r.cum_qty) for r in second] == [
        (50, OrderStatus.FILLED, 150)
    ]
    assert second[0].avg_px == Decimal("99.4333")
    assert engine.resting_count() == 0


def test_sell_limit_fills_at_or_above_its_price(engine: MatchingEngine) -> None:
    engine.new_order(order(side=Side.SELL, order_type=OrderType.LIMIT, price="101.00"))
    assert engine.on_prices({"ACME": Decimal("100.95")}) == []
    assert engine.on_prices({"ACME": Decimal("101.05")})[0].last_px == Decimal("101.05")


def test_ioc_cancels_the_unfilled_rest_at_once(engine: MatchingEngine) -> None:
    away = engine.new_order(
        order("a", order_type=OrderType.LIMIT, price="90.00", tif=TimeInForce.IOC)
    )
    assert [r.exec_type for r in away] == [ExecType.NEW, ExecType.CANCELED]
    assert away[-1].leaves_qty == 0 and away[-1].cum_qty == 0
    partial = engine.new_order(
        order("b", order_type=OrderType.LIMIT, qty=150, price="100.00", tif=TimeInForce.IOC)
    )
    assert [(r.exec_type, r.last_qty) for r in partial] == [
        (ExecType.NEW, 0),
        (ExecType.PARTIAL_FILL, 100),
        (ExecType.CANCELED, 0),
    ]
    assert partial[-1].cum_qty == 100 and partial[-1].ord_status is OrderStatus.CANCELED
    assert engine.resting_count() == 0


def test_day_orders_expire_at_end_of_day_and_gtc_orders_stay(engine: MatchingEngine) -> None:
    engine.new_order(order("day", order_type=OrderType.LIMIT, price="90.00"))
    engine.new_order(order("gtc", order_type=OrderType.LIMIT, price="90.00", tif=TimeInForce.GTC))
    expired = engine.expire_day_orders()
    assert [(r.cl_ord_id, r.exec_type, r.ord_status) for r in expired] == [
        ("day", ExecType.EXPIRED, OrderStatus.EXPIRED)
    ]
    assert engine.resting_count() == 1
    assert engine.status("day").ord_status is OrderStatus.EXPIRED


def test_cancel_a_resting_order_and_refuse_a_second_cancel(engine: MatchingEngine) -> None:
    engine.new_order(order("o1", order_type=OrderType.LIMIT, price="90.00"))
    done = engine.cancel("x1", "o1")
    assert not isinstance(done, CancelReject)
    assert (done.exec_type, done.cl_ord_id, done.orig_cl_ord_id) == (ExecType.CANCELED, "x1", "o1")
    assert engine.resting_count() == 0
    again = engine.cancel("x2", "o1")
    assert isinstance(again, CancelReject) and not again.unknown_order
    unknown = engine.cancel("x3", "nope")
    assert isinstance(unknown, CancelReject) and unknown.unknown_order


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (order(symbol="NOPE"), m.TEXT_UNKNOWN_SYMBOL),
        (order(qty=0), m.TEXT_BAD_QTY),
        (order(qty=-5), m.TEXT_BAD_QTY),
        (order(symbol="LOTS", qty=15), m.TEXT_BAD_QTY),
        (order(order_type=OrderType.LIMIT, price="100.03"), "price not on tick size 0.05"),
        (order(order_type=OrderType.LIMIT), m.TEXT_PRICE_MISSING),
        (order(order_type=OrderType.LIMIT, price="-1.00"), m.TEXT_PRICE_MISSING),
        (order(order_type=None), m.TEXT_UNSUPPORTED_TYPE),
        (order(order_type=OrderType.STOP_LOSS), m.TEXT_UNSUPPORTED_TYPE),
        (order(tif=None), m.TEXT_UNSUPPORTED_TIF),
    ],
)
def test_rejects_carry_a_reason(
    engine: MatchingEngine, request_: NewOrderRequest, text: str
) -> None:
    [report] = engine.new_order(request_)
    assert report.exec_type is ExecType.REJECTED and report.ord_status is OrderStatus.REJECTED
    assert report.text == text and report.leaves_qty == 0
    assert engine.status("c1").ord_status is OrderStatus.REJECTED


def test_status_request_answers_the_true_state(engine: MatchingEngine) -> None:
    engine.new_order(order("o1", order_type=OrderType.LIMIT, qty=150, price="100.00"))
    status = engine.status("o1")
    assert status.exec_type is ExecType.ORDER_STATUS
    assert (status.ord_status, status.cum_qty, status.leaves_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        100,
        50,
    )
    assert status.last_qty == 0 and status.avg_px == Decimal("100.0000")
    unknown = engine.status("ghost", "ACME", Side.SELL)
    assert unknown.ord_status is OrderStatus.REJECTED and unknown.text == m.TEXT_UNKNOWN_ORDER
    assert unknown.exec_type is ExecType.ORDER_STATUS and unknown.order_id == "NONE"


def test_a_duplicate_cl_ord_id_is_rejected_and_leaves_the_first_order_alone(
    engine: MatchingEngine,
) -> None:
    engine.new_order(order("dup", order_type=OrderType.LIMIT, price="90.00"))
    [reject] = engine.new_order(order("dup", qty=5))
    assert reject.exec_type is ExecType.REJECTED and reject.text == m.TEXT_DUPLICATE
    status = engine.status("dup")
    assert status.ord_status is OrderStatus.NEW and status.order_qty == 10
    assert engine.resting_count() == 1


def test_fills_are_kept_for_the_trade_report_until_drained(engine: MatchingEngine) -> None:
    reports = engine.new_order(order(qty=150))
    fills = engine.drain_fills()
    assert [f.exec_id for f in fills] == [r.exec_id for r in reports if r.last_qty]
    assert sum(f.qty for f in fills) == 150
    assert engine.drain_fills() == []


def test_exec_ids_differ_between_engines_by_default(market: FakeMarket) -> None:
    first = MatchingEngine([ACME], market.price, partial_fill_qty_max=10)
    second = MatchingEngine([ACME], market.price, partial_fill_qty_max=10)
    a = first.new_order(order())[0].exec_id
    b = second.new_order(order())[0].exec_id
    assert a != b
