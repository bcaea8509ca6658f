"""Pure rules of settlement: fees, averages, P&L, where a buy's cash comes from, order status.

No database here: streams/settlement.py reads the order, asks these functions, and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from core.contracts import TERMINAL_ORDER_STATUSES, OrderStatus
from core.exceptions import BrokerError
from core.money import MONEY_CONTEXT, MONEY_SCALE, to_money

BPS = Decimal(10_000)

# How far along an order is; a report never moves an order to a lower rank.
_WORKING_RANK = {
    OrderStatus.PENDING_TRIGGER: 0,
    OrderStatus.NEW: 1,
    OrderStatus.SENT: 2,
    OrderStatus.ACCEPTED: 3,
    OrderStatus.PARTIALLY_FILLED: 4,
    OrderStatus.PENDING_CANCEL: 5,
}


class SettlementError(BrokerError):
    """A report cannot be settled as it stands (unknown order, or it contradicts the order).

    Retrying does not help: the settle agent sends the report to the dead-letter topic. An
    operator should compare the report with the order and the exchange's trade report, fix the
    cause, and replay the dead letter; settlement is idempotent, so a replay is safe.
    """


def fill_fee(cost: Decimal, fee_rate_bps: int) -> Decimal:
    """The fee of one fill: its notional times the rate, rounded DOWN to the money scale.

    Down, because a buy reserves the fee of the whole order rounded up
    (order_buy_reserve, sql/migrations/0030): per-fill fees rounded down never add up to more.
    """
    fee = MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(cost, Decimal(fee_rate_bps)), BPS)
    return fee.quantize(MONEY_SCALE, rounding=ROUND_FLOOR, context=MONEY_CONTEXT)


def average_price(total_notional: Decimal, quantity: int) -> Decimal:
    """Notional over quantity as money (half-even)."""
    return to_money(MONEY_CONTEXT.divide(total_notional, Decimal(quantity)))


def new_avg_buy_price(held: int, avg: Decimal, qty: int, px: Decimal) -> Decimal:
    """The average buy price after buying ``qty`` at ``px`` on top of ``held`` at ``avg``."""
    total = MONEY_CONTEXT.add(
        MONEY_CONTEXT.multiply(avg, Decimal(held)), MONEY_CONTEXT.multiply(px, Decimal(qty))
    )
    return average_price(total, held + qty)


def realized_pnl(px: Decimal, avg_buy_price: Decimal, qty: int, fee: Decimal) -> Decimal:
    """The P&L a sell of ``qty`` at ``px`` realizes against the average buy price, net of fee."""
    gain = MONEY_CONTEXT.multiply(MONEY_CONTEXT.subtract(px, avg_buy_price), Decimal(qty))
    return to_money(MONEY_CONTEXT.subtract(gain, fee))


@dataclass(frozen=True, slots=True)
class BuyFunding:
    """Where a buy fill's cost and fee come from: the order's reserve first, then available cash.

    Only a marketable buy that traded beyond its protection band needs available cash; a limit
    buy's reserve always covers it.
    """

    cost_locked: Decimal
    cost_available: Decimal
    fee_locked: Decimal
    fee_available: Decimal

    @property
    def from_reserve(self) -> Decimal:
        """What the fill takes out of the order's reserve."""
        return self.cost_locked + self.fee_locked


def fund_buy(cost: Decimal, fee: Decimal, reserve_left: Decimal) -> BuyFunding:
    """Split a buy fill's cost and fee between the remaining reserve and available cash."""
    cost_locked = min(cost, reserve_left)
    fee_locked = min(fee, reserve_left - cost_locked)
    return BuyFunding(cost_locked, cost - cost_locked, fee_locked, fee - fee_locked)


def oms_status(reported: OrderStatus) -> OrderStatus:
    """The OMS status of an exchange status: the exchange's NEW is the OMS's ACCEPTED."""
    return OrderStatus.ACCEPTED if reported is OrderStatus.NEW else reported


@dataclass(frozen=True, slots=True)
class OrderProgress:
    """An order's status fields as settlement sees them (cum_qty after this report's fill)."""

    status: OrderStatus
    quantity: int
    cum_qty: int
    final_pending: OrderStatus | None
    final_cum_qty_pending: int | None


@dataclass(frozen=True, slots=True)
class StatusDecision:
    """The order's next status fields, and whether it just became final (release once)."""

    status: OrderStatus
    final_pending: OrderStatus | None
    final_cum_qty_pending: int | None
    finalize: bool


def decide_status(
    order: OrderProgress, reported: OrderStatus, reported_cum_qty: int
) -> StatusDecision:
    """Move an order forward on a report, never backwards, and final only when fills agree.

    A final report whose cum_qty counts fills not settled yet is remembered as pending; the
    order becomes final when the settled cum_qty reaches it (fills may arrive after the cancel).
    An order that is final already never changes.
    """
    if order.status in TERMINAL_ORDER_STATUSES:
        return StatusDecision(order.status, None, None, finalize=False)
    target = oms_status(reported)
    pending, pending_cum = order.final_pending, order.final_cum_qty_pending
    if target in TERMINAL_ORDER_STATUSES and pending is None:
        pending, pending_cum = target, reported_cum_qty
    if pending is OrderStatus.FILLED and pending_cum != order.quantity:
        raise SettlementError(
            f"a FILLED report with cum_qty {pending_cum} on an order of {order.quantity}"
        )
    if pending is not None and pending_cum is not None and order.cum_qty >= pending_cum:
        final = OrderStatus.FILLED if order.cum_qty == order.quantity else pending
        return StatusDecision(final, None, None, finalize=True)
    if order.cum_qty == order.quantity:
        return StatusDecision(OrderStatus.FILLED, None, None, finalize=True)
    working = order.status
    if order.cum_qty > 0 and _rank(OrderStatus.PARTIALLY_FILLED) > _rank(working):
        working = OrderStatus.PARTIALLY_FILLED
    if target not in TERMINAL_ORDER_STATUSES and _rank(target) > _rank(working):
        working = target
    return StatusDecision(working, pending, pending_cum, finalize=False)


def _rank(status: OrderStatus) -> int:
    return _WORKING_RANK[status]
