"""Records the bridge tests share: the exchange's answer about an order it never held."""

from __future__ import annotations

from decimal import Decimal

from core.contracts import ExecType, ExecutionReport, OrderStatus, Side


def unknown_order_answer(
    order_id: str, *, symbol: str = "ACME", side: Side = Side.BUY, ts_ns: int = 1
) -> ExecutionReport:
    """The status answer (REJECTED "unknown order") about an order the exchange never held."""
    return ExecutionReport(
        exec_id=f"E-{order_id}",
        order_id=order_id,
        exec_type=ExecType.ORDER_STATUS,
        order_status=OrderStatus.REJECTED,
        symbol=symbol,
        side=side,
        last_qty=0,
        last_px=None,
        cum_qty=0,
        leaves_qty=0,
        avg_px=Decimal(0),
        text="unknown order",
        ts_transact_ns=ts_ns,
    )
