"""Each user's watchlist: the symbols the web page's ticker follows, kept in PostgreSQL.

A user who never saved a list gets the first ``watchlist_default_count`` active instruments;
a saved list (an empty one included) replaces that default. Saving checks the size bound and
that every symbol is an active instrument; the table's foreign key backs the latter.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.exceptions import InvalidRequestError
from api.services.market import parse_symbol
from core.db import AsyncConn
from core.settings import Settings

_SAVED = (
    "SELECT w.user_id, s.symbol FROM watchlists AS w"
    " LEFT JOIN watchlist_symbols AS s ON s.user_id = w.user_id"
    " WHERE w.user_id = %s ORDER BY s.position"
)
_DEFAULT = "SELECT symbol FROM instruments WHERE is_active ORDER BY symbol LIMIT %s"
_ACTIVE = "SELECT symbol FROM instruments WHERE is_active AND symbol = ANY(%s::text[])"
# Takes the list's row lock first, so two saves of one user's list apply one after the other.
_CLAIM = (
    "INSERT INTO watchlists (user_id) VALUES (%s)"
    " ON CONFLICT (user_id) DO UPDATE SET updated_at = now()"
)


@dataclass(frozen=True, slots=True)
class Watchlist:
    """A user's symbols in their order; ``is_default`` when the user never saved a list."""

    symbols: list[str]
    is_default: bool


async def read(conn: AsyncConn, settings: Settings, user_id: int) -> Watchlist:
    """The user's saved list, or the default one."""
    cursor = await conn.execute(_SAVED, (user_id,))
    rows = await cursor.fetchall()
    if rows:
        return Watchlist([str(r[1]) for r in rows if r[1] is not None], is_default=False)
    cursor = await conn.execute(_DEFAULT, (settings.watchlist_default_count,))
    return Watchlist([str(r[0]) for r in await cursor.fetchall()], is_default=True)


def checked_symbols(symbols: list[str], most: int) -> list[str]:
    """Upper-cased symbols without repeats, in the order given; refused (422) over ``most``."""
    unique = list(dict.fromkeys(parse_symbol(s) for s in symbols))
    if len(unique) > most:
        raise InvalidRequestError(
            f"{len(unique)} symbols; a watchlist holds at most {most}", code="too_many_symbols"
        )
    return unique


async def save(conn: AsyncConn, settings: Settings, user_id: int, symbols: list[str]) -> Watchlist:
    """Replace the user's list with ``symbols``; refused (422) when one is not an instrument."""
    wanted = checked_symbols(symbols, settings.watchlist_symbols_max)
    async with conn.transaction():
        cursor = await conn.execute(_ACTIVE, (wanted,))
        known = {str(r[0]) for r in await cursor.fetchall()}
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise InvalidRequestError(f"no instrument {', '.join(unknown)}", code="unknown_symbol")
        await conn.execute(_CLAIM, (user_id,))
        await conn.execute("DELETE FROM watchlist_symbols WHERE user_id = %s", (user_id,))
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO watchlist_symbols (user_id, position, symbol) VALUES (%s, %s, %s)",
                [(user_id, position, symbol) for position, symbol in enumerate(wanted)],
            )
    return Watchlist(wanted, is_default=False)
