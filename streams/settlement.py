"""Settling one execution report: one database transaction, effects exactly once.

Per report, under the order's row lock (``SELECT ... FOR UPDATE``), in the lock order the API
uses (order row, then wallet through the ledger, then holding):
1. a fill posts its FILL journal transaction first: ``journal_txns.exec_id`` is unique, so a
   replayed fill posts nothing (``ledger.post`` returns None) and the report changes nothing
   else either; the execution row is then written settled, pointing at that transaction;
2. the holding moves (quantity, average buy price; locked shares and realized P&L on sells);
3. the order's status moves forward only (streams/settlement_rules.decide_status); when it
   becomes final the unused reserve is released (buy) or the unfilled shares unlocked (sell).
   Becoming final is a status transition under the row lock, so the release happens once.
A final report that counts fills not settled yet is kept pending on the order
(sql/migrations/0011_settlement.sql) and completes when the missing fills arrive.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from psycopg.rows import dict_row

from core import ledger
from core.contracts import (
    FILL_EXEC_TYPES,
    TERMINAL_ORDER_STATUSES,
    ExecutionReport,
    OrderStatus,
    Side,
)
from core.db import AsyncConn
from core.ledger import AccountKind, TxnKind
from core.money import notional
from core.settings import Settings
from core.timestamps import utc_of_ns
from streams.settlement_rules import (
    BuyFunding,
    OrderProgress,
    SettlementError,
    average_price,
    decide_status,
    fill_fee,
    fund_buy,
    new_avg_buy_price,
    realized_pnl,
)

AVAILABLE, LOCKED = AccountKind.CASH_AVAILABLE, AccountKind.CASH_LOCKED

ORDER_COLUMNS = (
    "id, user_id, symbol, side, quantity, status, cum_qty, filled_notional,"
    " reserved_amount, final_status_pending, final_cum_qty_pending, reject_reason"
)
_LOCK_ORDER = f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = %s FOR UPDATE"  # noqa: S608
_UPDATE_ORDER = (
    "UPDATE orders SET status = %(status)s, cum_qty = %(cum_qty)s,"
    " filled_notional = %(filled_notional)s, avg_px = COALESCE(%(avg_px)s, avg_px),"
    " reserved_amount = %(reserved_amount)s, final_status_pending = %(final_pending)s,"
    " final_cum_qty_pending = %(final_cum_qty_pending)s, reject_reason = %(reject_reason)s,"
    " updated_at = now() WHERE id = %(id)s"
)
_INSERT_EXECUTION = (
    "INSERT INTO executions (exec_id, order_id, symbol, side, last_qty, last_px, fee,"
    " executed_at, journal_txn_id, settled_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
    # A row recorded unsettled (e.g. by reconciliation) is settled by this transaction.
    " ON CONFLICT (exec_id) DO UPDATE SET journal_txn_id = EXCLUDED.journal_txn_id,"
    " settled_at = EXCLUDED.settled_at WHERE executions.settled_at IS NULL RETURNING id"
)


class Outcome(StrEnum):
    """What settling a report did."""

    SETTLED = "settled"  # a fill was settled
    DUPLICATE = "duplicate"  # a fill settled before: nothing changed
    UPDATED = "updated"  # a status report moved the order forward
    UNCHANGED = "unchanged"  # a status report that changes nothing (late or replayed)


@dataclass(frozen=True, slots=True)
class OrderState:
    """The order row fields settlement reads and writes."""

    id: uuid.UUID
    user_id: int
    symbol: str
    side: Side
    quantity: int
    status: OrderStatus
    cum_qty: int
    filled_notional: Decimal
    reserved_amount: Decimal
    final_pending: OrderStatus | None
    final_cum_qty_pending: int | None
    reject_reason: str | None


async def settle_report(conn: AsyncConn, report: ExecutionReport, settings: Settings) -> Outcome:
    """Apply one execution report in its own database transaction; replays change nothing.

    Raises SettlementError for a report that cannot be applied (unknown order, contradiction);
    database errors propagate (the caller retries transient ones).
    """
    async with conn.transaction():
        return await apply_report(conn, report, settings)


async def apply_report(conn: AsyncConn, report: ExecutionReport, settings: Settings) -> Outcome:
    """Apply one execution report inside the caller's transaction (see ``settle_report``)."""
    before = await _lock_order(conn, report)
    filled = (before.cum_qty, before.filled_notional, before.reserved_amount)
    if report.exec_type in FILL_EXEC_TYPES:
        moved = await _settle_fill(conn, before, report, settings)
        if moved is None:
            return Outcome.DUPLICATE
        filled = moved
    after, finalize = advance(before, report, *filled)
    if finalize:
        after = await _release(conn, after, settings)
    if after == before:
        return Outcome.UNCHANGED
    await _update_order(conn, after)
    return Outcome.SETTLED if after.cum_qty != before.cum_qty else Outcome.UPDATED


def advance(
    order: OrderState,
    report: ExecutionReport,
    cum_qty: int,
    filled_notional: Decimal,
    reserved: Decimal,
) -> tuple[OrderState, bool]:
    """The order after the report and its fill (if any), and whether it just became final."""
    decision = decide_status(
        OrderProgress(
            order.status, order.quantity, cum_qty, order.final_pending, order.final_cum_qty_pending
        ),
        report.order_status,
        report.cum_qty,
    )
    # One constructor call, not dataclasses.replace twice: this runs for every report.
    after = OrderState(
        order.id,
        order.user_id,
        order.symbol,
        order.side,
        order.quantity,
        decision.status,
        cum_qty,
        filled_notional,
        reserved,
        decision.final_pending,
        decision.final_cum_qty_pending,
        reject_reason(order, report),
    )
    return after, decision.finalize


async def _lock_order(conn: AsyncConn, report: ExecutionReport) -> OrderState:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_LOCK_ORDER, (uuid.UUID(report.order_id),))
        row = await cursor.fetchone()
    if row is None:
        raise unknown_order(report)
    order = order_from_row(row)
    check_matches(order, report)
    return order


def unknown_order(report: ExecutionReport) -> SettlementError:
    """The error of a report whose order does not exist."""
    return SettlementError(f"unknown order {report.order_id} (exec {report.exec_id})")


def order_from_row(row: dict[str, Any]) -> OrderState:
    """An order row (the columns of ``ORDER_COLUMNS``) as settlement sees it."""
    return OrderState(
        id=row["id"],
        user_id=int(row["user_id"]),
        symbol=row["symbol"],
        side=Side(row["side"]),
        quantity=int(row["quantity"]),
        status=OrderStatus(row["status"]),
        cum_qty=int(row["cum_qty"]),
        filled_notional=row["filled_notional"],
        reserved_amount=row["reserved_amount"],
        final_pending=_status_or_none(row["final_status_pending"]),
        final_cum_qty_pending=row["final_cum_qty_pending"],
        reject_reason=row["reject_reason"],
    )


def check_matches(order: OrderState, report: ExecutionReport) -> None:
    """Raise SettlementError when the report names another symbol or side than its order."""
    if (order.symbol, order.side) != (report.symbol, report.side):
        raise SettlementError(
            f"report {report.exec_id} is {report.side} {report.symbol} but order"
            f" {order.id} is {order.side} {order.symbol}"
        )


def _status_or_none(value: str | None) -> OrderStatus | None:
    return None if value is None else OrderStatus(value)


def reject_reason(order: OrderState, report: ExecutionReport) -> str | None:
    """The order's reject reason after the report (the first REJECTED report sets it)."""
    if report.order_status is OrderStatus.REJECTED and order.reject_reason is None:
        return report.text or "rejected by the exchange"
    return order.reject_reason


async def _settle_fill(
    conn: AsyncConn, order: OrderState, report: ExecutionReport, settings: Settings
) -> tuple[int, Decimal, Decimal] | None:
    """Post the fill, record the execution, move the holding; None if settled before.

    Returns the order's cum_qty, filled notional and reserve after the fill.
    """
    posting = fill_posting(order, report, settings.fee_rate_bps)
    qty, px, cost, fee = posting.qty, posting.px, posting.cost, posting.fee
    working, reserve_left = posting.working, posting.reserve_left
    txn_id = await ledger.post(
        conn,
        TxnKind.FILL,
        posting.entries,
        currency=settings.currency,
        reference=posting.reference,
        order_id=order.id,
        exec_id=report.exec_id,
    )
    if txn_id is None:
        return None
    await _record_execution(conn, order, report, fee, txn_id)
    if order.side is Side.BUY:
        await _buy_holding(conn, order, qty, px)
    else:
        await _sell_holding(conn, order, qty, px, fee, unlock=working)
    cum_qty = order.cum_qty + qty
    if cum_qty > order.quantity:
        raise SettlementError(f"fill {report.exec_id} takes order {order.id} past its quantity")
    reserved = reserve_left if working else order.reserved_amount
    return cum_qty, order.filled_notional + cost, reserved


@dataclass(frozen=True, slots=True)
class FillPosting:
    """What a fill moves: its money, the journal legs, and the order's reserve left after it."""

    qty: int
    px: Decimal
    cost: Decimal
    fee: Decimal
    working: bool  # the order was not final yet: the fill draws on (and unlocks) its reserve
    entries: list[ledger.Entry]
    reserve_left: Decimal
    reference: str


def fill_posting(order: OrderState, report: ExecutionReport, fee_rate_bps: int) -> FillPosting:
    """The posting of a fill of ``order`` (the same rule for one report and for a batch)."""
    qty, px = report.last_qty, report.last_px
    if px is None:  # the contract guarantees a price on fills; this is a bug, not bad data
        raise ValueError(f"fill {report.exec_id} without last_px")
    cost = notional(qty, px)
    fee = fill_fee(cost, fee_rate_bps)
    working = order.status not in TERMINAL_ORDER_STATUSES
    reserve_left = order.reserved_amount if working else Decimal(0)
    if order.side is Side.BUY:
        funding = fund_buy(cost, fee, reserve_left)
        entries = buy_entries(order.user_id, cost, fee, funding)
        reserve_left -= funding.from_reserve
    else:
        entries = sell_entries(order.user_id, cost, fee)
    reference = f"{order.side} {qty} {order.symbol} @ {px}"
    return FillPosting(qty, px, cost, fee, working, entries, reserve_left, reference)


def buy_entries(
    user_id: int, cost: Decimal, fee: Decimal, funding: BuyFunding
) -> list[ledger.Entry]:
    """The legs of a buy fill: cost and fee from the reserve, then from available cash."""
    legs = [
        ledger.user(LOCKED, user_id, -funding.cost_locked),
        ledger.user(AVAILABLE, user_id, -funding.cost_available),
        ledger.system(AccountKind.EXCHANGE_CLEARING, cost),
        ledger.user(LOCKED, user_id, -funding.fee_locked),
        ledger.user(AVAILABLE, user_id, -funding.fee_available),
        ledger.system(AccountKind.FEES, fee),
    ]
    return [leg for leg in legs if leg.amount != 0]


def sell_entries(user_id: int, cost: Decimal, fee: Decimal) -> list[ledger.Entry]:
    """The legs of a sell fill: proceeds to available cash, the fee out of it."""
    legs = [
        ledger.system(AccountKind.EXCHANGE_CLEARING, -cost),
        ledger.user(AVAILABLE, user_id, cost),
        ledger.user(AVAILABLE, user_id, -fee),
        ledger.system(AccountKind.FEES, fee),
    ]
    return [leg for leg in legs if leg.amount != 0]


async def _record_execution(
    conn: AsyncConn, order: OrderState, report: ExecutionReport, fee: Decimal, txn_id: uuid.UUID
) -> None:
    cursor = await conn.execute(
        _INSERT_EXECUTION,
        (
            report.exec_id,
            order.id,
            order.symbol,
            order.side.value,
            report.last_qty,
            report.last_px,
            fee,
            utc_of_ns(report.ts_transact_ns),
            txn_id,
        ),
    )
    if await cursor.fetchone() is None:
        # The journal had no FILL for this exec id, yet the execution is settled: a broken
        # invariant 5 that only a person should untangle.
        raise SettlementError(f"execution {report.exec_id} is settled without its journal txn")


async def _buy_holding(conn: AsyncConn, order: OrderState, qty: int, px: Decimal) -> None:
    cursor = await conn.execute(
        "SELECT quantity, avg_buy_price FROM holdings WHERE user_id = %s AND symbol = %s"
        " FOR UPDATE",
        (order.user_id, order.symbol),
    )
    row = await cursor.fetchone()
    if row is None:
        # The wallet row, locked by the ledger posting above, serializes this user's fills, so
        # no other settlement can insert the holding in between.
        await conn.execute(
            "INSERT INTO holdings (user_id, symbol, quantity, avg_buy_price)"
            " VALUES (%s, %s, %s, %s)",
            (order.user_id, order.symbol, qty, px),
        )
        return
    held, avg = int(row[0]), Decimal(row[1])
    await conn.execute(
        "UPDATE holdings SET quantity = quantity + %s, avg_buy_price = %s, updated_at = now()"
        " WHERE user_id = %s AND symbol = %s",
        (qty, new_avg_buy_price(held, avg, qty, px), order.user_id, order.symbol),
    )


async def _sell_holding(
    conn: AsyncConn,
    order: OrderState,
    qty: int,
    px: Decimal,
    fee: Decimal,
    *,
    unlock: bool,
) -> None:
    cursor = await conn.execute(
        "SELECT quantity, avg_buy_price FROM holdings WHERE user_id = %s AND symbol = %s"
        " FOR UPDATE",
        (order.user_id, order.symbol),
    )
    row = await cursor.fetchone()
    if row is None or int(row[0]) < qty:
        raise SettlementError(f"user {order.user_id} sold {qty} {order.symbol} not held")
    held, avg = int(row[0]), Decimal(row[1])
    # The shares of a working sell are locked; an order final already released its lock.
    await conn.execute(
        "UPDATE holdings SET quantity = quantity - %s, locked_quantity = locked_quantity - %s,"
        " realized_pnl = realized_pnl + %s, avg_buy_price = %s, updated_at = now()"
        " WHERE user_id = %s AND symbol = %s",
        (
            qty,
            qty if unlock else 0,
            realized_pnl(px, avg, qty, fee),
            avg if held > qty else Decimal(0),
            order.user_id,
            order.symbol,
        ),
    )


async def _release(conn: AsyncConn, order: OrderState, settings: Settings) -> OrderState:
    """Release what the final order no longer needs: unused cash (buy) or unfilled shares."""
    if order.side is Side.BUY:
        if order.reserved_amount > 0:
            txn_id = await ledger.post(
                conn,
                TxnKind.ORDER_RELEASE,
                release_entries(order),
                currency=settings.currency,
                reference=f"release of {order.status} order {order.id}",
                order_id=order.id,
                # A second release of one order is refused by the ledger itself.
                external_ref=release_ref(order),
            )
            if txn_id is None:
                raise SettlementError(f"order {order.id} was released before")
        return replace(order, reserved_amount=Decimal(0))
    unfilled = order.quantity - order.cum_qty
    if unfilled > 0:
        await conn.execute(
            "UPDATE holdings SET locked_quantity = locked_quantity - %s, updated_at = now()"
            " WHERE user_id = %s AND symbol = %s",
            (unfilled, order.user_id, order.symbol),
        )
    return order


def release_entries(order: OrderState) -> list[ledger.Entry]:
    """The legs of releasing a final buy's unused reserve back to available cash."""
    return [
        ledger.user(LOCKED, order.user_id, -order.reserved_amount),
        ledger.user(AVAILABLE, order.user_id, order.reserved_amount),
    ]


def release_ref(order: OrderState) -> str:
    """The external ref of an order's release: the ledger's (kind, ref) key allows one."""
    return f"order-release:{order.id}"


async def _update_order(conn: AsyncConn, order: OrderState) -> None:
    await conn.execute(
        _UPDATE_ORDER,
        {
            "id": order.id,
            "status": order.status.value,
            "cum_qty": order.cum_qty,
            "filled_notional": order.filled_notional,
            "avg_px": average_price(order.filled_notional, order.cum_qty)
            if order.cum_qty
            else None,
            "reserved_amount": order.reserved_amount,
            "final_pending": order.final_pending.value if order.final_pending else None,
            "final_cum_qty_pending": order.final_cum_qty_pending,
            "reject_reason": order.reject_reason,
        },
    )
