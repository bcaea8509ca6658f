"""A heal report counts on top of the order's settled fills and is a FILL when it completes."""

from __future__ import annotations

from decimal import Decimal

from core.contracts import ExecType, OrderStatus, Side
from pipelines.heal import OrderFills, build_report

ORDER = "7f1c0a52-8d0e-4b8a-9b57-0c3f7d2b9e11"


def details(qty: int, price: str) -> dict[str, object]:
    return {
        "ex_symbol": "ACME",
        "ex_side": "BUY",
        "ex_qty": qty,
        "ex_price": price,
        "ex_exec_time": "2024-09-16T04:30:01.500000+00:00",
    }


def test_two_missing_fills_of_one_order_follow_each_other_to_the_fill() -> None:
    order = OrderFills(quantity=100, cum_qty=50, filled_notional=Decimal("2500"))

    first = build_report("E1", ORDER, details(30, "50.00"), order)
    second = build_report("E2", ORDER, details(20, "51.00"), order)

    assert (first.exec_type, first.order_status) == (
        ExecType.PARTIAL_FILL,
        OrderStatus.PARTIALLY_FILLED,
    )
    assert (first.cum_qty, first.leaves_qty, first.avg_px) == (80, 20, Decimal("50.0000"))
    assert (second.exec_type, second.order_status) == (ExecType.FILL, OrderStatus.FILLED)
    assert (second.cum_qty, second.leaves_qty, second.avg_px) == (100, 0, Decimal("50.2000"))
    assert second.side is Side.BUY and second.last_px == Decimal("51.00")
    assert first.ts_transact_ns == 1_726_461_001_500_000_000
