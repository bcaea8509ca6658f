"""Settlement arithmetic and the order status machine, without a database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.contracts import OrderStatus
from streams.settlement_rules import (
    OrderProgress,
    SettlementError,
    decide_status,
    fill_fee,
    fund_buy,
    new_avg_buy_price,
    realized_pnl,
)

S = OrderStatus


def test_fees_round_down_so_many_partial_fills_never_outgrow_the_reserve() -> None:
    # order_place's reserve for 7 x 33.33 at 3 bps (tests/integration/test_order_place_cases.py):
    # 233.31 * 1.0003 = 233.379993, rounded up.
    reserve = Decimal("233.3800")
    taken = sum((Decimal("33.33") + fill_fee(Decimal("33.33"), 3) for _ in range(7)), Decimal(0))
    assert fill_fee(Decimal("33.33"), 3) == Decimal("0.0099")  # 0.009999 truncated
    assert taken <= reserve


def test_fund_buy_takes_the_reserve_first_then_available_cash() -> None:
    covered = fund_buy(Decimal(100), Decimal("0.03"), Decimal("100.05"))
    zero = Decimal(0)
    assert (covered.cost_available, covered.fee_available) == (zero, zero)
    assert covered.from_reserve == Decimal("100.03")
    short = fund_buy(Decimal(100), Decimal("0.03"), Decimal("99.99"))
    assert (short.cost_locked, short.cost_available) == (Decimal("99.99"), Decimal("0.01"))
    assert (short.fee_locked, short.fee_available) == (zero, Decimal("0.03"))


def test_average_buy_price_and_realized_pnl() -> None:
    assert new_avg_buy_price(0, Decimal(0), 10, Decimal("5.00")) == Decimal("5.00")
    assert new_avg_buy_price(30, Decimal("49.95"), 20, Decimal("50")) == Decimal("49.97")
    assert new_avg_buy_price(2, Decimal("1"), 1, Decimal("2")) == Decimal("1.3333")
    assert realized_pnl(Decimal(45), Decimal("39.95"), 40, Decimal("0.54")) == Decimal("201.46")


def progress(
    status: OrderStatus, cum: int, pending: OrderStatus | None = None, at: int | None = None
) -> OrderProgress:
    return OrderProgress(status, 100, cum, pending, at)


@pytest.mark.parametrize(
    ("order", "reported", "cum", "expected"),
    [
        (progress(S.SENT, 0), S.NEW, 0, (S.ACCEPTED, None, False)),
        (progress(S.FILLED, 100), S.NEW, 0, (S.FILLED, None, False)),
        (progress(S.PENDING_CANCEL, 30), S.PARTIALLY_FILLED, 30, (S.PENDING_CANCEL, None, False)),
        (progress(S.ACCEPTED, 30), S.CANCELED, 30, (S.CANCELED, None, True)),
        (progress(S.ACCEPTED, 30), S.CANCELED, 50, (S.PARTIALLY_FILLED, S.CANCELED, False)),
        (
            progress(S.PARTIALLY_FILLED, 50, S.CANCELED, 50),
            S.PARTIALLY_FILLED,
            50,
            (S.CANCELED, None, True),
        ),
        (
            progress(S.PARTIALLY_FILLED, 60),
            S.PARTIALLY_FILLED,
            100,
            (S.PARTIALLY_FILLED, None, False),
        ),
        (progress(S.PARTIALLY_FILLED, 100), S.PARTIALLY_FILLED, 40, (S.FILLED, None, True)),
        (progress(S.CANCELED, 0), S.REJECTED, 0, (S.CANCELED, None, False)),
    ],
)
def test_status_moves_forward_and_becomes_final_when_fills_agree(
    order: OrderProgress,
    reported: OrderStatus,
    cum: int,
    expected: tuple[OrderStatus, OrderStatus | None, bool],
) -> None:
    decision = decide_status(order, reported, cum)
    assert (decision.status, decision.final_pending, decision.finalize) == expected


def test_a_filled_report_short_of_the_quantity_is_refused() -> None:
    with pytest.raises(SettlementError):
        decide_status(progress(S.ACCEPTED, 10), S.FILLED, 90)
