"""Routes for the caller's watchlist: read it (a default until saved), replace it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnDep, CurrentPrincipal, SettingsDep
from api.errors import documented
from api.services import watchlist

router = APIRouter(prefix="/v1/watchlist", tags=["watchlist"])

SYMBOL_CHARS_MAX = 16
# A bound on the request alone; the list's own bound is the watchlist_symbols_max setting.
SYMBOLS_IN_BODY_MAX = 1_000


class WatchlistIn(BaseModel):
    """The whole list, in the order to show it; it replaces the saved one."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"symbols": ["ACME", "ALPHA"]}]}
    )

    symbols: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=SYMBOL_CHARS_MAX)]],
        Field(max_length=SYMBOLS_IN_BODY_MAX),
    ]


class WatchlistOut(BaseModel):
    """The caller's symbols; ``is_default`` until the caller saves a list."""

    symbols: list[str]
    is_default: bool


@router.get("", summary="Your watchlist")
async def read_watchlist(
    principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> WatchlistOut:
    """The saved list, or the first active instruments when none was saved yet."""
    found = await watchlist.read(conn, settings, principal.user_id)
    return WatchlistOut(symbols=found.symbols, is_default=found.is_default)


@router.put(
    "",
    summary="Replace your watchlist",
    responses={
        422: documented(
            "validation_failed, a symbol that is not an instrument (unknown_symbol), or more"
            " symbols than a watchlist holds (too_many_symbols)",
            ("unknown_symbol", "no instrument NOPE"),
        )
    },
)
async def save_watchlist(
    body: WatchlistIn, principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> WatchlistOut:
    """Save the list (repeats dropped, symbols upper-cased); other users' lists are untouched."""
    saved = await watchlist.save(conn, settings, principal.user_id, body.symbols)
    return WatchlistOut(symbols=saved.symbols, is_default=saved.is_default)
