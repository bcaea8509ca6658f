"""Market data routes: symbols, latest quotes, candles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentPrincipal, PoolDep, ReadPoolDep, SettingsDep
from api.feeds.price_hub import PriceHub
from api.services import market, market_candles
from api.services.market import QuoteList, SymbolList
from api.services.market_candles import CandleList, Interval

router = APIRouter(prefix="/v1/market", tags=["market"])


@router.get("/symbols", response_model=SymbolList, summary="Tradable instruments")
async def symbols(_: CurrentPrincipal, pool: PoolDep) -> SymbolList:
    """Every active instrument with its tick and lot size."""
    return await market.list_symbols(pool)


@router.get("/quotes", response_model=QuoteList, summary="Latest prices")
async def quotes(
    request: Request,
    _: CurrentPrincipal,
    settings: SettingsDep,
    pool: PoolDep,
    symbols: Annotated[
        str | None,
        Query(
            max_length=market.SYMBOLS_TEXT_CHARS_MAX,
            description="Comma-separated; all when absent.",
        ),
    ] = None,
) -> QuoteList:
    """The latest price of each symbol asked for (a symbol not traded yet is left out)."""
    hub: PriceHub = request.app.state.price_hub
    wanted = None
    if symbols is not None:
        wanted = market.parse_symbols(symbols, settings.quotes_symbols_max)
        await market.check_known(pool, wanted)
    return market.quotes(hub, wanted)


@router.get("/candles", response_model=CandleList, summary="OHLCV candles")
async def candles(
    _: CurrentPrincipal,
    settings: SettingsDep,
    pool: ReadPoolDep,
    symbol: Annotated[str, Query(min_length=1, max_length=16)],
    interval: Interval = Interval.M1,
    start: Annotated[
        datetime | None, Query(description="Inclusive, ISO-8601 (UTC if no zone).")
    ] = None,
    end: Annotated[datetime | None, Query(description="Exclusive; default now.")] = None,
    limit: Annotated[int | None, Query(description="Most candles (the latest in range).")] = None,
) -> Response:
    """Candles whose bucket starts in [start, end), ascending; the latest ``limit`` of them."""
    body = await market_candles.get_candles_json(
        pool, settings, symbol, interval, start, end, limit
    )
    # Already JSON of CandleList (response_model documents it): FastAPI need not validate it.
    return Response(content=body, media_type="application/json")
