"""Candles for clients: the SQL rollups of migrations 0012 (fixed widths) and 0015 (weeks, months).

The same functions answer on plain PostgreSQL (the stored 1 s, 1 m and 1 d candles, rolled up to
the other widths at query time: migration 0017) and on TimescaleDB (continuous aggregates), so
the API gives the same numbers either way.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec
from pydantic import BaseModel

from api.exceptions import InvalidRequestError, NotFoundError
from api.services.market import known_symbols, parse_symbol
from api.services.order_models import Money
from core.db import AsyncPool
from core.settings import Settings


class Interval(StrEnum):
    """Candle widths served."""

    S1 = "1s"
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"
    W1 = "1w"
    MO1 = "1mo"


# Fixed widths; weeks and months are calendar units rolled up by candles_calendar_between.
WIDTHS: dict[Interval, timedelta] = {
    Interval.S1: timedelta(seconds=1),
    Interval.M1: timedelta(minutes=1),
    Interval.M5: timedelta(minutes=5),
    Interval.M15: timedelta(minutes=15),
    Interval.H1: timedelta(hours=1),
    Interval.D1: timedelta(days=1),
    Interval.W1: timedelta(weeks=1),
    Interval.MO1: timedelta(days=31),  # the longest month: bounds and default ranges only
}
CALENDAR_UNITS = {Interval.W1: "week", Interval.MO1: "month"}
# Decimals encode as JSON strings, datetimes as RFC 3339.
_ENCODER = msgspec.json.Encoder(decimal_format="string")

# The latest ``limit`` candles of a range, ascending; ``{}`` is the candle function's call.
_LATEST = """
SELECT * FROM (
    SELECT bucket_start, open, high, low, close, volume, trade_count
    FROM {}
    ORDER BY bucket_start DESC LIMIT %(limit)s
) AS latest ORDER BY bucket_start
"""
_FIXED = _LATEST.format("candles_between(%(symbol)s, %(width)s, %(start)s, %(end)s)")
_CALENDAR = _LATEST.format("candles_calendar_between(%(symbol)s, %(unit)s, %(start)s, %(end)s)")


class CandleOut(BaseModel):
    """One OHLCV candle; ``ts`` is the bucket start (UTC)."""

    ts: datetime
    open: Money
    high: Money
    low: Money
    close: Money
    volume: str
    trades: int


class CandleList(BaseModel):
    """Candles of one symbol and width, ascending by ``ts``."""

    symbol: str
    interval: Interval
    candles: list[CandleOut]


def candle_range(
    settings: Settings,
    interval: Interval,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    now: datetime,
) -> tuple[datetime, datetime, int]:
    """(start, end, limit) with defaults filled in, or a clear refusal of a bad range or limit."""
    size = settings.candles_limit_default if limit is None else limit
    if not 1 <= size <= settings.candles_limit_max:
        raise InvalidRequestError(
            f"limit must be between 1 and {settings.candles_limit_max}", code="invalid_limit"
        )
    width = WIDTHS[interval]
    end = _aware(end) if end is not None else now
    try:
        start = _aware(start) if start is not None else end - width * size
    except OverflowError:
        # An end near year 1 leaves no room for the default range before it.
        raise InvalidRequestError(
            "end is too early for the range asked", code="invalid_range"
        ) from None
    if start >= end:
        raise InvalidRequestError("start must be before end", code="invalid_range")
    span = end - start
    if span > timedelta(days=settings.candles_range_days_max):
        raise InvalidRequestError(
            f"the range spans {span.days} days; at most {settings.candles_range_days_max}",
            code="range_too_large",
        )
    if span / width > settings.candles_range_buckets_max:
        raise InvalidRequestError(
            f"the range spans {int(span / width)} {interval.value} candles; at most"
            f" {settings.candles_range_buckets_max} per request: narrow it or use a wider"
            " interval",
            code="range_too_large",
        )
    return start, end, size


def _aware(ts: datetime) -> datetime:
    # A time without a zone is taken as UTC, the zone of every time this API returns.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class CandleFormat(StrEnum):
    """What a candles answer is written as."""

    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


MEDIA_TYPES = {
    CandleFormat.JSON: "application/json",
    CandleFormat.CSV: "text/csv; charset=utf-8",
    CandleFormat.PARQUET: "application/vnd.apache.parquet",
}
_BY_MEDIA_TYPE = {
    "application/json": CandleFormat.JSON,
    "text/csv": CandleFormat.CSV,
    "application/vnd.apache.parquet": CandleFormat.PARQUET,
    "application/x-parquet": CandleFormat.PARQUET,
}
CSV_HEADER = "ts,open,high,low,close,volume,trades\n"
# Rows per chunk of a streamed CSV answer: one write per chunk, not per row.
CSV_CHUNK_ROWS = 1_000


def negotiate(wanted: CandleFormat | None, accept: str | None) -> CandleFormat:
    """The ``format`` parameter if given, else the first known type of ``Accept``, else JSON."""
    if wanted is not None:
        return wanted
    for part in (accept or "").split(","):
        found = _BY_MEDIA_TYPE.get(part.split(";")[0].strip().lower())
        if found is not None:
            return found
    return CandleFormat.JSON


@dataclass(frozen=True, slots=True)
class CandleQuery:
    """A checked candles request: the SQL to run and its parameters."""

    symbol: str
    interval: Interval
    sql: str
    params: dict[str, Any]


def candle_query(
    settings: Settings,
    symbol: str,
    interval: Interval,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
) -> CandleQuery:
    """The query for a request, or a clear refusal of a bad symbol, range or limit."""
    symbol = parse_symbol(symbol)
    start, end, size = candle_range(settings, interval, start, end, limit, datetime.now(UTC))
    params: dict[str, Any] = {"symbol": symbol, "start": start, "end": end, "limit": size}
    if interval in CALENDAR_UNITS:
        query, params["unit"] = _CALENDAR, CALENDAR_UNITS[interval]
    else:
        query, params["width"] = _FIXED, WIDTHS[interval]
    return CandleQuery(symbol, interval, query, params)


async def check_known(pool: AsyncPool, symbol: str) -> None:
    """Refuse a symbol that is not an instrument (before an answer starts streaming)."""
    async with pool.connection() as conn:
        if symbol not in await known_symbols(conn, [symbol]):
            raise NotFoundError(f"no instrument {symbol!r}", code="unknown_symbol")


async def _rows(pool: AsyncPool, query: CandleQuery) -> list[tuple[Any, ...]]:
    await check_known(pool, query.symbol)
    async with pool.connection() as conn:
        cursor = await conn.execute(query.sql, query.params)
        return await cursor.fetchall()


async def get_candles_json(pool: AsyncPool, query: CandleQuery) -> bytes:
    """``CandleList`` JSON: the latest ``limit`` candles starting in [start, end), ascending."""
    rows = await _rows(pool, query)
    # A day of 1 m is hundreds of candles: pydantic took ~2 ms to build and dump them, msgspec
    # ~0.3 ms. The shape is CandleList's (decimals as strings, times RFC 3339 in UTC).
    return _ENCODER.encode(
        {
            "symbol": query.symbol,
            "interval": query.interval.value,
            "candles": [
                {
                    "ts": ts,
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": str(v),
                    "trades": n,
                }
                for ts, o, h, lo, c, v, n in rows
            ],
        }
    )


def _csv_line(row: tuple[Any, ...]) -> str:
    ts, o, h, lo, c, v, n = row
    stamp = ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"{stamp},{o},{h},{lo},{c},{v},{n}\n"


async def stream_candles_csv(pool: AsyncPool, query: CandleQuery) -> AsyncIterator[bytes]:
    """The candles as CSV (a header, then a row each), read and sent in chunks.

    The symbol is checked by the caller before the answer starts, so a refusal is still a 4xx.
    """
    yield CSV_HEADER.encode()
    async with pool.connection() as conn, conn.cursor() as cursor:
        chunk: list[str] = []
        async for row in cursor.stream(query.sql, query.params):
            chunk.append(_csv_line(row))
            if len(chunk) >= CSV_CHUNK_ROWS:
                yield "".join(chunk).encode()
                chunk = []
        if chunk:
            yield "".join(chunk).encode()


async def get_candles_parquet(pool: AsyncPool, query: CandleQuery) -> bytes:
    """The candles as one Parquet file (prices as decimals, volume and trades as integers)."""
    # Imported here: Polars costs a quarter of the API's import time, and an API process that
    # was killed serves again sooner without it; only a Parquet answer needs it.
    import polars as pl

    rows = await _rows(pool, query)
    price = pl.Decimal(18, 4)
    frame = pl.DataFrame(
        rows,
        schema={
            "ts": pl.Datetime("us", "UTC"),
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "volume": pl.Int64,
            "trades": pl.Int64,
        },
        orient="row",
    )
    out = io.BytesIO()
    frame.write_parquet(out)
    return out.getvalue()
