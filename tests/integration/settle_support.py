"""Helpers of the settlement tests: users, orders placed as the API places them, exchange reports.

Orders are written as order_place writes them (its reserve rule and reserve posting for buys,
locked shares for sells), so settlement meets the state it meets in production.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from core.contracts import ExecType, ExecutionReport, OrderStatus, OrderType, Side
from core.instruments import DEFAULT_INSTRUMENTS, seed_instruments
from core.ledger import TxnKind, deposit_entries, open_user_accounts, post
from core.money import to_money
from core.settings import Settings
from infra.migrate import load_invariants

AConn = psycopg.AsyncConnection[Any]


async def setup_user(conn: AConn, cash: str) -> int:
    """Seed the instruments (once), create a user with a wallet and deposit ``cash``."""
    await seed_instruments(conn, DEFAULT_INSTRUMENTS)
    cursor = await conn.execute(
        "INSERT INTO users (email, password_hash) VALUES (gen_random_uuid() || '@x.io', 'h')"
        " RETURNING id"
    )
    row = await cursor.fetchone()
    assert row is not None
    user_id = int(row[0])
    await open_user_accounts(conn, user_id, "USD")
    amount = Decimal(cash)
    if amount:
        await post(
            conn,
            TxnKind.DEPOSIT,
            deposit_entries(user_id, amount),
            currency="USD",
            external_ref=f"dep-{uuid.uuid4().hex}",
        )
    await conn.commit()
    return user_id


async def place_order(
    conn: AConn,
    settings: Settings,
    user_id: int,
    side: Side,
    symbol: str,
    quantity: int,
    price: str | None,
    *,
    order_type: OrderType = OrderType.LIMIT,
    trigger_price: str | None = None,
    status: OrderStatus = OrderStatus.SENT,
) -> uuid.UUID:
    """Insert an order with its reserve (buy) or locked shares (sell), as the API does."""
    order_id = uuid.uuid4()
    px = Decimal(price) if price is not None else None
    trigger = Decimal(trigger_price) if trigger_price is not None else None
    valued_at = px if px is not None else trigger
    reserve = Decimal(0)
    if side is Side.BUY:
        assert valued_at is not None
        cursor = await conn.execute(
            "SELECT order_buy_reserve(%s, %s, %s, %s)",
            (
                order_type.value,
                to_money(valued_at * quantity),
                settings.fee_rate_bps,
                settings.market_protection_band_bps,
            ),
        )
        row = await cursor.fetchone()
        assert row is not None
        reserve = row[0]
    await conn.execute(
        "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type, quantity,"
        " price, trigger_price, status, reserved_amount)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            order_id,
            user_id,
            str(order_id),
            symbol,
            side.value,
            order_type.value,
            quantity,
            px,
            trigger,
            status.value,
            reserve,
        ),
    )
    if side is Side.BUY:
        await conn.execute(
            "SELECT ledger_post_order_reserve(%s, %s, %s, 'USD')", (user_id, order_id, reserve)
        )
    else:
        await conn.execute(
            "UPDATE holdings SET locked_quantity = locked_quantity + %s"
            " WHERE user_id = %s AND symbol = %s",
            (quantity, user_id, symbol),
        )
    await conn.commit()
    return order_id


async def place_stop_buy(
    conn: AConn, settings: Settings, user_id: int, symbol: str, quantity: int, trigger_price: str
) -> uuid.UUID:
    """A stop-loss (market) buy, its reserve valued at the trigger: a fill above may outrun it."""
    return await place_order(
        conn,
        settings,
        user_id,
        Side.BUY,
        symbol,
        quantity,
        None,
        order_type=OrderType.STOP_LOSS,
        trigger_price=trigger_price,
    )


@dataclass
class Exchange:
    """The exchange's side of one order: produces consistent execution reports."""

    order_id: uuid.UUID
    symbol: str
    side: Side
    quantity: int
    cum_qty: int = 0
    notional: Decimal = Decimal(0)
    reports: list[ExecutionReport] = field(default_factory=list)

    def _report(self, exec_type: ExecType, status: OrderStatus, **kw: Any) -> ExecutionReport:
        final = status in (
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        )
        avg = to_money(self.notional / self.cum_qty) if self.cum_qty else Decimal(0)
        report = ExecutionReport(
            exec_id=f"x-{uuid.uuid4().hex}",
            order_id=str(self.order_id),
            exec_type=exec_type,
            order_status=status,
            symbol=self.symbol,
            side=self.side,
            last_qty=kw.pop("last_qty", 0),
            last_px=kw.pop("last_px", None),
            cum_qty=self.cum_qty,
            leaves_qty=0 if final else self.quantity - self.cum_qty,
            avg_px=avg,
            ts_transact_ns=time.time_ns(),
            **kw,
        )
        self.reports.append(report)
        return report

    def ack(self) -> ExecutionReport:
        """The exchange accepted the order."""
        return self._report(ExecType.NEW, OrderStatus.NEW)

    def fill(self, qty: int, px: str) -> ExecutionReport:
        """A fill of ``qty`` at ``px`` (FILL when it completes the order)."""
        self.cum_qty += qty
        self.notional += Decimal(px) * qty
        done = self.cum_qty == self.quantity
        return self._report(
            ExecType.FILL if done else ExecType.PARTIAL_FILL,
            OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
            last_qty=qty,
            last_px=Decimal(px),
        )

    def pending_cancel(self) -> ExecutionReport:
        """The cancel request is being worked on."""
        return self._report(ExecType.PENDING_CANCEL, OrderStatus.PENDING_CANCEL)

    def cancel(self) -> ExecutionReport:
        """The rest of the order is canceled."""
        return self._report(ExecType.CANCELED, OrderStatus.CANCELED)

    def expire(self) -> ExecutionReport:
        """The rest of the order expired (end of day)."""
        return self._report(ExecType.EXPIRED, OrderStatus.EXPIRED)

    def reject(self, text: str) -> ExecutionReport:
        """The order is rejected."""
        return self._report(ExecType.REJECTED, OrderStatus.REJECTED, text=text)


async def wallet(conn: AConn, user_id: int) -> tuple[Decimal, Decimal]:
    """(available, locked) cash of a user."""
    row = await (
        await conn.execute(
            "SELECT balance, locked_balance FROM wallets WHERE user_id = %s", (user_id,)
        )
    ).fetchone()
    assert row is not None
    return row[0], row[1]


async def holding(conn: AConn, user_id: int, symbol: str) -> tuple[int, int, Decimal, Decimal]:
    """(quantity, locked_quantity, avg_buy_price, realized_pnl) of a user's holding."""
    row = await (
        await conn.execute(
            "SELECT quantity, locked_quantity, avg_buy_price, realized_pnl FROM holdings"
            " WHERE user_id = %s AND symbol = %s",
            (user_id, symbol),
        )
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), row[2], row[3]


async def order_row(conn: AConn, order_id: uuid.UUID) -> dict[str, Any]:
    """The settlement fields of an order."""
    cursor = await conn.execute(
        "SELECT status, cum_qty, avg_px, reserved_amount, reject_reason, final_status_pending"
        " FROM orders WHERE id = %s",
        (order_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    keys = ("status", "cum_qty", "avg_px", "reserved_amount", "reject_reason", "pending")
    return dict(zip(keys, row, strict=True))


async def violations(conn: AConn) -> dict[str, int]:
    """Invariant names with violating rows (empty when every invariant holds)."""
    found = {}
    for name, query in load_invariants().items():
        rows = await (await conn.execute(query)).fetchall()
        if rows:
            found[name] = len(rows)
    return found


def fee(cost: Decimal, bps: int) -> Decimal:
    """The broker's fee on a fill, computed here independently: truncated to 4 places."""
    scaled = cost * bps / Decimal(10_000)
    return Decimal(int(scaled * 10_000)) / Decimal(10_000)
