"""Market data routes: symbols, latest quotes, candles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import CurrentPrincipal, PoolDep, ReadPoolDep, SettingsDep
from api.feeds.price_hub import PriceHub
from api.services import market, market_candles
from api.services.market import QuoteList, SymbolList
from api.services.market_candles import MEDIA_TYPES, CandleFormat, CandleList, Interval

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


@router.get(
    "/candles",
    response_model=CandleList,
    summary="OHLCV candles",
    responses={
        200: {
            "content": {
                MEDIA_TYPES[CandleFormat.CSV]: {"schema": {"type": "string"}},
                MEDIA_TYPES[CandleFormat.PARQUET]: {
                    "schema": {"type": "string", "format": "binary"}
                },
            }
        }
    },
)
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
    format: Annotated[
        CandleFormat | None,
        Query(description="json, csv or parquet; else chosen by Accept (default json)."),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Candles whose bucket starts in [start, end), ascending; the latest ``limit`` of them.

    As JSON, CSV (streamed) or Parquet, with the same bounds and refusals each way.
    """
    chosen = market_candles.negotiate(format, accept)
    query = market_candles.candle_query(settings, symbol, interval, start, end, limit)
    if chosen is CandleFormat.JSON:
        body = await market_candles.get_candles_json(pool, query)
        # Already JSON of CandleList (response_model documents it): FastAPI need not validate.
        return Response(content=body, media_type=MEDIA_TYPES[chosen])
    filename = f"{query.symbol}_{query.interval.value}.{chosen.value}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if chosen is CandleFormat.CSV:
        await market_candles.check_known(pool, query.symbol)
        return StreamingResponse(
            market_candles.stream_candles_csv(pool, query),
            media_type=MEDIA_TYPES[chosen],
            headers=headers,
        )
    body = await market_candles.get_candles_parquet(pool, query)
    return Response(content=body, media_type=MEDIA_TYPES[chosen], headers=headers)
