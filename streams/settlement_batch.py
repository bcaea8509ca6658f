"""Settling many execution reports in one database transaction with a handful of round trips.

The same effects as applying each report with streams/settlement.py, in the same order:
1. lock what the reports touch, each kind sorted by key, in the order the per-report path takes
   them (orders by id, then wallets by user, then holdings by user and symbol), so two batches
   never deadlock; read which exec ids have a journal transaction or an execution row already;
2. apply the reports one after another in memory with the rules of
   streams/settlement_rules.py: a fill whose exec id has a journal transaction is a replay and
   changes nothing, an order only moves forward, a final order releases what it no longer needs;
3. write it all with one call of ``settle_apply`` (sql/migrations/0019_settle_batch.sql).
A report that cannot be settled (SettlementError), or a batch the database would refuse part of
(BatchRefused: a balance going negative, say), fails the whole transaction; the caller then
settles those reports one by one with streams/settlement.py, which finds the culprit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import msgspec
from psycopg.rows import dict_row

from core import ledger
from core.contracts import FILL_EXEC_TYPES, ExecutionReport, Side
from core.db import AsyncConn
from core.ids import time_ordered_id
from core.ledger import AccountKind, TxnKind
from core.settings import Settings
from core.timestamps import utc_of_ns
from streams.settlement import (
    ORDER_COLUMNS,
    OrderState,
    Outcome,
    advance,
    check_matches,
    fill_posting,
    order_from_row,
    release_entries,
    release_ref,
    unknown_order,
)
from streams.settlement_rules import (
    SettlementError,
    average_price,
    new_avg_buy_price,
    realized_pnl,
)

_LOCK_ORDERS = (
    f"SELECT {ORDER_COLUMNS} FROM orders"  # noqa: S608 - a constant column list
    " WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
)
_LOCK_WALLETS = (
    "SELECT user_id, balance, locked_balance FROM wallets WHERE user_id = ANY(%s)"
    " ORDER BY user_id FOR UPDATE"
)
_LOCK_HOLDINGS = (
    "SELECT h.user_id, h.symbol, h.quantity, h.locked_quantity, h.avg_buy_price, h.realized_pnl"
    " FROM holdings h JOIN unnest(%s::bigint[], %s::text[]) AS k(user_id, symbol)"
    "  ON h.user_id = k.user_id AND h.symbol = k.symbol"
    " ORDER BY h.user_id, h.symbol FOR UPDATE OF h"
)
_SEEN_EXECS = (
    "SELECT exec_id, true FROM journal_txns WHERE exec_id = ANY(%(ids)s)"
    " UNION ALL SELECT exec_id, false FROM executions"
    " WHERE exec_id = ANY(%(ids)s) AND settled_at IS NOT NULL"
)
_APPLY = "SELECT settle_apply(%s::jsonb)"


class BatchRefused(Exception):  # noqa: N818 - a refusal, not a failure of the code
    """The database would refuse part of this batch (e.g. a balance going negative).

    Not the reports' fault as such: the caller settles them one by one, where the database
    itself decides which report breaks a constraint.
    """


@dataclass(slots=True)
class _Wallet:
    available: Decimal
    locked: Decimal
    delta_available: Decimal = Decimal(0)
    delta_locked: Decimal = Decimal(0)


@dataclass(slots=True)
class _Holding:
    quantity: int
    locked: int
    avg: Decimal
    pnl: Decimal
    changed: bool = False
    new: bool = False  # not in the database yet


@dataclass(slots=True)
class _Batch:
    """What the batch locked and read, as the reports change it, and the rows to write."""

    orders: dict[str, OrderState]  # by order id as the reports spell it
    wallets: dict[int, _Wallet]
    holdings: dict[tuple[int, str], _Holding]
    journaled: set[str]  # exec ids with a journal transaction
    settled: set[str]  # exec ids with a settled execution row
    txns: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    order_steps: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=lambda: defaultdict(int))


async def settle_reports(
    conn: AsyncConn, reports: Sequence[ExecutionReport], settings: Settings
) -> list[Outcome]:
    """Apply the reports in order inside the caller's transaction; one outcome per report.

    Raises SettlementError, BatchRefused or a database error; the caller's transaction then
    rolls back, and nothing of the batch is written.
    """
    batch = await _lock(conn, reports)
    outcomes = [_apply(batch, report, settings) for report in reports]
    # msgspec writes Decimal and UUID as JSON strings: exact, and cast back in settle_apply.
    document = msgspec.json.encode(_document(batch, settings)).decode()
    await conn.execute(_APPLY, (document,))
    return outcomes


async def _lock(conn: AsyncConn, reports: Sequence[ExecutionReport]) -> _Batch:
    order_ids = sorted({uuid.UUID(o) for o in {r.order_id for r in reports}})
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_LOCK_ORDERS, (order_ids,))
        orders = {str(row["id"]): order_from_row(row) for row in await cursor.fetchall()}
    users = sorted({o.user_id for o in orders.values()})
    cursor = await conn.execute(_LOCK_WALLETS, (users,))
    wallets = {
        int(uid): _Wallet(Decimal(bal), Decimal(locked))
        for uid, bal, locked in await cursor.fetchall()
    }
    keys = sorted({(o.user_id, o.symbol) for o in orders.values()})
    cursor = await conn.execute(_LOCK_HOLDINGS, ([k[0] for k in keys], [k[1] for k in keys]))
    holdings = {
        (int(uid), sym): _Holding(int(qty), int(locked), Decimal(avg), Decimal(pnl))
        for uid, sym, qty, locked, avg, pnl in await cursor.fetchall()
    }
    exec_ids = list({r.exec_id for r in reports if r.exec_type in FILL_EXEC_TYPES})
    journaled: set[str] = set()
    settled: set[str] = set()
    if exec_ids:
        cursor = await conn.execute(_SEEN_EXECS, {"ids": exec_ids})
        for exec_id, in_journal in await cursor.fetchall():
            (journaled if in_journal else settled).add(exec_id)
    return _Batch(orders, wallets, holdings, journaled, settled)


def _apply(batch: _Batch, report: ExecutionReport, settings: Settings) -> Outcome:
    """streams/settlement.apply_report, on the batch's state in memory."""
    order_id = report.order_id
    if order_id not in batch.orders:  # spelled another way than PostgreSQL spells a uuid?
        order_id = str(uuid.UUID(order_id))
    before = batch.orders.get(order_id)
    if before is None:
        raise unknown_order(report)
    check_matches(before, report)
    filled = (before.cum_qty, before.filled_notional, before.reserved_amount)
    if report.exec_type in FILL_EXEC_TYPES:
        moved = _fill(batch, before, report, settings)
        if moved is None:
            return Outcome.DUPLICATE
        filled = moved
    after, finalize = advance(before, report, *filled)
    if finalize:
        after = _release(batch, after)
    if after == before:
        return Outcome.UNCHANGED
    batch.orders[order_id] = after
    batch.steps[order_id] += 1
    batch.order_steps.append(_order_step(after, batch.steps[order_id]))
    return Outcome.SETTLED if after.cum_qty != before.cum_qty else Outcome.UPDATED


def _fill(
    batch: _Batch, order: OrderState, report: ExecutionReport, settings: Settings
) -> tuple[int, Decimal, Decimal] | None:
    """Post the fill, record the execution, move the holding; None if settled before.

    Returns the order's cum_qty, filled notional and reserve after the fill.
    """
    if report.exec_id in batch.journaled:
        return None
    posting = fill_posting(order, report, settings.fee_rate_bps)
    if report.exec_id in batch.settled:
        raise SettlementError(f"execution {report.exec_id} is settled without its journal txn")
    qty, px, cost, fee = posting.qty, posting.px, posting.cost, posting.fee
    working, reserve_left = posting.working, posting.reserve_left
    txn_id = _post(
        batch,
        TxnKind.FILL,
        posting.entries,
        reference=posting.reference,
        order_id=order.id,
        exec_id=report.exec_id,
    )
    batch.journaled.add(report.exec_id)
    batch.settled.add(report.exec_id)
    batch.executions.append(
        {
            "exec_id": report.exec_id,
            "order_id": order.id,
            "symbol": order.symbol,
            "side": order.side.value,
            "last_qty": qty,
            "last_px": px,
            "fee": fee,
            "executed_at": utc_of_ns(report.ts_transact_ns),
            "journal_txn_id": txn_id,
        }
    )
    if order.side is Side.BUY:
        _buy_holding(batch, order, qty, px)
    else:
        _sell_holding(batch, order, qty, px, fee, unlock=working)
    cum_qty = order.cum_qty + qty
    if cum_qty > order.quantity:
        raise SettlementError(f"fill {report.exec_id} takes order {order.id} past its quantity")
    reserved = reserve_left if working else order.reserved_amount
    return cum_qty, order.filled_notional + cost, reserved


def _post(
    batch: _Batch,
    kind: TxnKind,
    entries: list[ledger.Entry],
    *,
    reference: str,
    order_id: uuid.UUID,
    exec_id: str | None = None,
    external_ref: str | None = None,
) -> uuid.UUID:
    """core.ledger.post, in memory: the journal rows to write and the wallets moved."""
    ledger.check_entries(entries)
    txn_id = time_ordered_id()
    batch.txns.append(
        {
            "id": txn_id,
            "kind": kind.value,
            "reference": reference,
            "order_id": order_id,
            "exec_id": exec_id,
            "external_ref": external_ref,
        }
    )
    deltas: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for e in entries:
        batch.entries.append(
            {
                "txn_id": txn_id,
                "user_id": e.user_id,
                "kind": e.kind.value,
                "amount": e.amount,
            }
        )
        if e.user_id is not None:
            deltas[e.user_id][0 if e.kind is AccountKind.CASH_AVAILABLE else 1] += e.amount
    for user_id, (available, locked) in deltas.items():
        wallet = batch.wallets.get(user_id)
        if wallet is None:
            raise BatchRefused(f"user {user_id} has no wallet")
        wallet.available += available
        wallet.locked += locked
        wallet.delta_available += available
        wallet.delta_locked += locked
        # The wallet's CHECK constraints would refuse this posting on its own.
        if wallet.available < 0 or wallet.locked < 0:
            raise BatchRefused(f"the wallet of user {user_id} would go negative")
    return txn_id


def _buy_holding(batch: _Batch, order: OrderState, qty: int, px: Decimal) -> None:
    key = (order.user_id, order.symbol)
    held = batch.holdings.get(key)
    if held is None:
        batch.holdings[key] = _Holding(qty, 0, px, Decimal(0), changed=True, new=True)
        return
    held.avg = new_avg_buy_price(held.quantity, held.avg, qty, px)
    held.quantity += qty
    held.changed = True


def _sell_holding(
    batch: _Batch, order: OrderState, qty: int, px: Decimal, fee: Decimal, *, unlock: bool
) -> None:
    held = batch.holdings.get((order.user_id, order.symbol))
    if held is None or held.quantity < qty:
        raise SettlementError(f"user {order.user_id} sold {qty} {order.symbol} not held")
    held.pnl += realized_pnl(px, held.avg, qty, fee)
    held.avg = held.avg if held.quantity > qty else Decimal(0)
    held.quantity -= qty
    # The shares of a working sell are locked; an order final already released its lock.
    if unlock:
        held.locked -= qty
    held.changed = True
    _check_holding(order, held)


def _check_holding(order: OrderState, held: _Holding) -> None:
    # The holding's CHECK constraints would refuse this change on its own.
    if held.locked < 0 or held.locked > held.quantity:
        raise BatchRefused(f"the {order.symbol} holding of user {order.user_id} would break")


def _release(batch: _Batch, order: OrderState) -> OrderState:
    """Release what the final order no longer needs: unused cash (buy) or unfilled shares."""
    if order.side is Side.BUY:
        if order.reserved_amount > 0:
            # A second release of one order is refused by the ledger's (kind, external_ref) key.
            _post(
                batch,
                TxnKind.ORDER_RELEASE,
                release_entries(order),
                reference=f"release of {order.status} order {order.id}",
                order_id=order.id,
                external_ref=release_ref(order),
            )
        return replace(order, reserved_amount=Decimal(0))
    unfilled = order.quantity - order.cum_qty
    held = batch.holdings.get((order.user_id, order.symbol))
    if unfilled > 0 and held is not None:
        held.locked -= unfilled
        held.changed = True
        _check_holding(order, held)
    return order


def _order_step(order: OrderState, step: int) -> dict[str, Any]:
    return {
        "step": step,
        "id": order.id,
        "status": order.status.value,
        "cum_qty": order.cum_qty,
        "filled_notional": order.filled_notional,
        "avg_px": average_price(order.filled_notional, order.cum_qty) if order.cum_qty else None,
        "reserved_amount": order.reserved_amount,
        "final_status_pending": order.final_pending.value if order.final_pending else None,
        "final_cum_qty_pending": order.final_cum_qty_pending,
        "reject_reason": order.reject_reason,
    }


def _document(batch: _Batch, settings: Settings) -> dict[str, Any]:
    """The argument of ``settle_apply``: every row the batch writes."""
    return {
        "currency": settings.currency,
        "txns": batch.txns,
        "entries": batch.entries,
        "wallets": [
            {
                "user_id": uid,
                "available": w.delta_available,
                "locked": w.delta_locked,
            }
            for uid, w in sorted(batch.wallets.items())
            if w.delta_available or w.delta_locked
        ],
        "executions": batch.executions,
        "holdings": [
            {
                "user_id": uid,
                "symbol": symbol,
                "quantity": h.quantity,
                "locked_quantity": h.locked,
                "avg_buy_price": h.avg,
                "realized_pnl": h.pnl,
                "new": h.new,
            }
            for (uid, symbol), h in sorted(batch.holdings.items())
            if h.changed
        ],
        "orders": batch.order_steps,
    }
