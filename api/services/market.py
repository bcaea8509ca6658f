"""Market data for clients: the symbols, checks on what a stream asks for, latest quotes."""

from __future__ import annotations

import re

from pydantic import BaseModel

from api.exceptions import InvalidRequestError, NotFoundError, RateLimitedError
from api.feeds.price_events import iso_of_ns
from api.feeds.price_hub import PriceHub
from api.services.order_models import SYMBOL_PATTERN, Money
from core.db import AsyncConn, AsyncPool
from core.settings import Settings

_SYMBOL = re.compile(SYMBOL_PATTERN)
# The longest comma-separated symbol list a query may carry: about 235 symbols. A longer URL
# could not pass the front anyway (HAProxy reads a request's head into 16 KiB), and uvicorn
# answers one over 64 KiB itself, in plain text, closing the connection.
SYMBOLS_TEXT_CHARS_MAX = 4_000


class SymbolOut(BaseModel):
    """A tradable instrument."""

    symbol: str
    name: str
    currency: str
    tick_size: Money
    lot_size: int


class SymbolList(BaseModel):
    """Every active instrument, by symbol."""

    symbols: list[SymbolOut]


class QuoteOut(BaseModel):
    """The latest price of a symbol and its exchange time (ISO-8601 UTC)."""

    symbol: str
    price: Money
    ts: str


class QuoteList(BaseModel):
    """Latest prices; a symbol that has not traded yet is left out."""

    quotes: list[QuoteOut]


def parse_symbol(text: str) -> str:
    """A symbol as asked, trimmed and upper-cased; refused (422) when no symbol is spelled so.

    Checked before any query: text such as a NUL byte cannot even be sent to PostgreSQL.
    """
    symbol = text.strip().upper()
    if _SYMBOL.fullmatch(symbol) is None:
        raise InvalidRequestError(f"not a symbol: {symbol[:40]!r}", code="unknown_symbol")
    return symbol


def parse_symbols(text: str, most: int) -> list[str]:
    """Upper-cased, de-duplicated symbols of a comma-separated list, checked against ``most``."""
    symbols = list(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if not symbols:
        raise InvalidRequestError("symbols is empty: name at least one", code="symbols_required")
    if len(symbols) > most:
        raise InvalidRequestError(
            f"{len(symbols)} symbols asked; at most {most} per request", code="too_many_symbols"
        )
    return [parse_symbol(symbol) for symbol in symbols]


async def known_symbols(conn: AsyncConn, symbols: list[str]) -> set[str]:
    """Which of ``symbols`` are instruments."""
    cursor = await conn.execute(
        "SELECT symbol FROM instruments WHERE symbol = ANY(%s::text[])", (symbols,)
    )
    return {row[0] for row in await cursor.fetchall()}


async def check_known(pool: AsyncPool, symbols: list[str]) -> None:
    """Refuse (404) the first symbol that is not an instrument."""
    async with pool.connection() as conn:
        known = await known_symbols(conn, symbols)
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise NotFoundError(f"no instrument {unknown[0]!r}", code="unknown_symbol")


async def check_stream_request(
    pool: AsyncPool, settings: Settings, hub: PriceHub, text: str, open_streams: int
) -> frozenset[str]:
    """The symbols a price stream may have, or a clear refusal (limits, unknown symbols)."""
    if open_streams >= settings.stream_connections_per_user_max:
        raise RateLimitedError(
            f"{open_streams} price streams are open for this user on this server; at most"
            f" {settings.stream_connections_per_user_max}: close one first",
            retry_after_s=int(settings.stream_heartbeat_s),
        )
    symbols = parse_symbols(text, settings.stream_symbols_per_client_max)
    if not hub.known.issuperset(symbols):
        # An instrument listed since the process started: ask the database, then remember.
        await check_known(pool, symbols)
        hub.known.update(symbols)
    return frozenset(symbols)


async def list_symbols(pool: AsyncPool) -> SymbolList:
    """Every active instrument."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT symbol, name, currency, tick_size, lot_size FROM instruments"
            " WHERE is_active ORDER BY symbol"
        )
        rows = await cursor.fetchall()
    keys = ("symbol", "name", "currency", "tick_size", "lot_size")
    return SymbolList(
        symbols=[SymbolOut.model_validate(dict(zip(keys, r, strict=True))) for r in rows]
    )


def quotes(hub: PriceHub, symbols: list[str] | None) -> QuoteList:
    """The latest prices this server holds: of ``symbols``, or of every symbol when None."""
    found = (
        hub.snapshot(symbols)
        if symbols is not None
        else sorted(hub.latest.values(), key=lambda q: q.symbol)
    )
    return QuoteList(
        quotes=[QuoteOut(symbol=q.symbol, price=q.price, ts=iso_of_ns(q.ts_ns)) for q in found]
    )
