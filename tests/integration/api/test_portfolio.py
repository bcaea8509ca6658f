"""GET /v1/portfolio against a hand-computed example: partial fills at several prices, a sale.

Fills are settled by the settle agent's own settle_report; fees are 3 bps, truncated to 4 places.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from api.security.tokens import issue_access_token
from api.services.portfolio import market_midnight
from core.contracts import Side
from core.settings import Settings
from streams.settlement import settle_report
from tests.integration.settle_support import Exchange, place_order, setup_user

pytestmark = pytest.mark.integration


async def insert_candle(conn: psycopg.AsyncConnection[object], at: datetime, close: str) -> None:
    await conn.execute(
        "INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close, volume,"
        " trade_count) VALUES ('ACME', interval '1 second', %s, %s, %s, %s, %s, 1, 1)",
        (at, close, close, close, close),
    )


async def test_portfolio_matches_the_hand_computed_example(
    api_url: str, api_settings: Settings, db_dsn: str
) -> None:
    assert api_settings.fee_rate_bps == 3
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "200000")
        buy = await place_order(conn, api_settings, uid, Side.BUY, "ACME", 100, "1510.00")
        bought = Exchange(buy, "ACME", Side.BUY, 100)
        for report in (
            bought.ack(),
            bought.fill(30, "1500.00"),  # 45,000.00, fee 13.50
            bought.fill(50, "1502.00"),  # 75,100.00, fee 22.53
            bought.fill(20, "1505.00"),  # 30,100.00, fee 9.03
        ):
            await settle_report(conn, report, api_settings)
        sell = await place_order(conn, api_settings, uid, Side.SELL, "ACME", 40, "1520.00")
        sold = Exchange(sell, "ACME", Side.SELL, 40)
        for report in (sold.ack(), sold.fill(15, "1520.00"), sold.fill(25, "1521.00")):
            await settle_report(conn, report, api_settings)  # 22,800 fee 6.84; 38,025 fee 11.4075
        midnight = market_midnight(api_settings, datetime.now(UTC))
        await insert_candle(conn, midnight - timedelta(hours=20), "1490.00")
        await insert_candle(conn, midnight - timedelta(hours=14), "1510.00")  # previous close
        await insert_candle(conn, midnight + timedelta(seconds=1), "1525.00")  # today's
        await conn.execute(
            "INSERT INTO last_prices (symbol, price, ts_event) VALUES ('ACME', 1530.00, now())"
        )
        await conn.commit()

    token = issue_access_token(api_settings, uid, two_factor=True)
    async with httpx.AsyncClient(base_url=api_url) as http:
        got = (await http.get("/v1/portfolio", headers={"Authorization": f"Bearer {token}"})).json()

    # Bought 100 for 150,200.00 (avg 1,502.00), fees 45.06; sold 40 for 60,825.00, fees 18.2475.
    # Cash: 200,000 - 150,200 - 45.06 + 60,825 - 18.2475 = 110,561.6925.
    # Realized: (1520 - 1502) * 15 + (1521 - 1502) * 25 - 18.2475 = 745 - 18.2475 = 726.7525.
    # 60 left at 1,530.00: value 91,800.00; unrealized (1530 - 1502) * 60 = 1,680.00, which is
    # 1,680 / 90,120 = 1.86 %; day change (1530 - 1510) * 60 = 1,200.00, 20 / 1510 = 1.32 %.
    assert got == {
        "cash": {"balance": "110561.6925", "locked": "0.0000", "available": "110561.6925"},
        "holdings": [
            {
                "symbol": "ACME",
                "quantity": 60,
                "avg_price": "1502.0000",
                "last_price": "1530.0000",
                "market_value": "91800.0000",
                "unrealized_pnl": "1680.0000",
                "unrealized_pnl_pct": "1.86",
                "realized_pnl": "726.7525",
                "day_change": "1200.0000",
                "day_change_pct": "1.32",
            }
        ],
        "totals": {
            "market_value": "91800.0000",
            "unrealized_pnl": "1680.0000",
            "realized_pnl": "726.7525",
            "day_change": "1200.0000",
            "total_value": "202361.6925",
        },
    }
