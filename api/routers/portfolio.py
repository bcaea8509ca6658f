"""The caller's portfolio."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from api.deps import CurrentPrincipal, PoolDep, SettingsDep
from api.services import portfolio
from api.services.portfolio import Portfolio

router = APIRouter(prefix="/v1/portfolio", tags=["portfolio"])


@router.get("", response_model=Portfolio, summary="Holdings, cash and P&L")
async def get_portfolio(
    principal: CurrentPrincipal, settings: SettingsDep, pool: PoolDep
) -> Portfolio:
    """Cash, each holding valued at the latest price with its P&L, and totals (see the service)."""
    return await portfolio.get_portfolio(pool, settings, principal.user_id, datetime.now(UTC))
