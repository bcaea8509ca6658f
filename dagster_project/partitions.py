"""The daily partitions of the reconciliation: one per exchange-local calendar day."""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

from core.settings import get_settings


def trading_days() -> DailyPartitionsDefinition:
    """Daily partitions in the exchange's time zone, from ``recon_start_date`` to today."""
    settings = get_settings()
    # Today's partition must exist: the report lands at the close, and the evening's run
    # reconciles it. By default Dagster's last daily partition is the last finished day.
    return DailyPartitionsDefinition(
        start_date=settings.recon_start_date, timezone=settings.market_tz, end_offset=1
    )


TRADING_DAYS = trading_days()


def partition_day(key: str) -> date:
    """The trading day of a partition key (YYYY-MM-DD)."""
    return date.fromisoformat(key)
