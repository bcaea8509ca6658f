"""The caller's portfolio: cash from the wallet, holdings valued at the latest prices, P&L.

Definitions (all Decimal, money rounded half-even to 4 places, percentages to 2):
- avg_price: the average buy price of the shares held (fills only; buy fees are not in it).
- unrealized_pnl = (last_price - avg_price) * quantity; its % is over avg_price * quantity.
- realized_pnl: what sales realized against the average buy price, net of their fees
  (kept on the holding by the settle agent).
- day_change = (last_price - previous close) * quantity, the previous close being the close of
  the last 1 s candle before today's midnight in the market's time zone (= yesterday's 1d close).
- cash: balance = available + locked; total_value = cash balance + market value.
A holding without any price yet has last_price, market_value, unrealized and day change null.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from api.services.order_models import Money
from core.db import AsyncPool
from core.money import MONEY_CONTEXT, to_money
from core.settings import Settings

PCT_SCALE = Decimal("0.01")
HUNDRED = Decimal(100)

_HOLDINGS = """
SELECT h.symbol, h.quantity, h.avg_buy_price, h.realized_pnl, lp.price, prev.close
FROM holdings AS h
LEFT JOIN last_prices AS lp ON lp.symbol = h.symbol
LEFT JOIN LATERAL (
    SELECT c.close FROM candles AS c
    WHERE c.symbol = h.symbol AND c.bucket_width = interval '1 second'
      AND c.bucket_start < %(today)s
    ORDER BY c.bucket_start DESC LIMIT 1
) AS prev ON true
WHERE h.user_id = %(user_id)s AND (h.quantity > 0 OR h.realized_pnl <> 0)
ORDER BY h.symbol
"""


class Cash(BaseModel):
    """The wallet: balance = available + locked."""

    balance: Money
    locked: Money
    available: Money


class HoldingOut(BaseModel):
    """One position with its value and P&L."""

    symbol: str
    quantity: int
    avg_price: Money
    last_price: Money | None
    market_value: Money | None
    unrealized_pnl: Money | None
    unrealized_pnl_pct: Money | None
    realized_pnl: Money
    day_change: Money | None
    day_change_pct: Money | None


class Totals(BaseModel):
    """Sums over the holdings (those with a price), and cash plus market value."""

    market_value: Money
    unrealized_pnl: Money
    realized_pnl: Money
    day_change: Money
    total_value: Money


class Portfolio(BaseModel):
    """Cash, holdings and totals."""

    cash: Cash
    holdings: list[HoldingOut]
    totals: Totals


def pct(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole`` (2 places), None when whole is zero."""
    if not whole:
        return None
    return MONEY_CONTEXT.divide(part * HUNDRED, whole).quantize(PCT_SCALE, context=MONEY_CONTEXT)


def value_holding(
    symbol: str,
    quantity: int,
    avg: Decimal,
    realized: Decimal,
    last: Decimal | None,
    prev_close: Decimal | None,
) -> HoldingOut:
    """A holding's value and P&L from its quantity, average price and the prices known."""
    qty = Decimal(quantity)
    value = unrealized = unrealized_pct = change = change_pct = None
    if last is not None:
        value = to_money(last * qty)
        unrealized = to_money((last - avg) * qty)
        unrealized_pct = pct(unrealized, avg * qty)
        if prev_close is not None:
            change = to_money((last - prev_close) * qty)
            change_pct = pct(last - prev_close, prev_close)
    return HoldingOut(
        symbol=symbol,
        quantity=quantity,
        avg_price=avg,
        last_price=last,
        market_value=value,
        unrealized_pnl=unrealized,
        unrealized_pnl_pct=unrealized_pct,
        realized_pnl=realized,
        day_change=change,
        day_change_pct=change_pct,
    )


def market_midnight(settings: Settings, now: datetime) -> datetime:
    """Today's midnight in the market's time zone (the start of today's session day)."""
    zone = ZoneInfo(settings.market_tz)
    return datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)


async def get_portfolio(
    pool: AsyncPool, settings: Settings, user_id: int, now: datetime
) -> Portfolio:
    """The user's portfolio as of the latest prices the database holds."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT balance, locked_balance FROM wallets WHERE user_id = %s", (user_id,)
        )
        wallet = await cursor.fetchone()
        cursor = await conn.execute(
            _HOLDINGS, {"user_id": user_id, "today": market_midnight(settings, now)}
        )
        rows = await cursor.fetchall()
    available, locked = wallet if wallet is not None else (Decimal(0), Decimal(0))
    holdings = [value_holding(*row) for row in rows]
    balance = to_money(available + locked)
    market_value = total(h.market_value for h in holdings)
    return Portfolio(
        cash=Cash(balance=balance, locked=locked, available=available),
        holdings=holdings,
        totals=Totals(
            market_value=market_value,
            unrealized_pnl=total(h.unrealized_pnl for h in holdings),
            realized_pnl=total(h.realized_pnl for h in holdings),
            day_change=total(h.day_change for h in holdings),
            total_value=to_money(balance + market_value),
        ),
    )


def total(amounts: Iterable[Decimal | None]) -> Decimal:
    """The sum of the known amounts, as money (an unknown one, None, counts as zero)."""
    return to_money(sum((a for a in amounts if a is not None), Decimal(0)))
