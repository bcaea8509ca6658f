"""The daily partitions of the reconciliation: one per exchange-local calendar day."""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

from core.settings import get_settings


def trading_days() -> DailyPartitionsDefinition:
    """Daily partitions in the exchange's time zone, from ``recon_start_date``."""
    settings = get_settings()
    return DailyPartitionsDefinition(
        start_date=settings.recon_start_date, timezone=settings.market_tz
    )


TRADING_DAYS = trading_days()


def partition_day(key: str) -> date:
    """The trading day of a partition key (YYYY-MM-DD)."""
    return date.fromisoformat(key)
