"""Dagster resources: the project's PostgreSQL, the landing folder and Kafka, from the settings."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from dagster import ConfigurableResource

from core.settings import Settings, get_settings
from fixbridge.simulator.config import trade_report_dir
from pipelines.heal import Publish, kafka_publish


class PostgresResource(ConfigurableResource[None]):
    """Connections to the broker's database."""

    dsn: str
    # Where the loads of a closed day may read: the standby of the HA pair (its data lags the
    # primary's by the replay of a few milliseconds of WAL); None: dsn.
    read_dsn: str | None = None

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A new connection to the primary; the caller closes it (use it as a context manager)."""
        return psycopg.connect(self.dsn)

    def connect_read(self) -> psycopg.Connection[tuple[object, ...]]:
        """A new connection for reads that may lag a moment (the standby when there is one)."""
        return psycopg.connect(self.read_dsn or self.dsn)


class LandingResource(ConfigurableResource[None]):
    """The folder the exchange drops its trade reports into, and where the results go."""

    reports_dir: str
    output_dir: str

    def reports(self) -> Path:
        """The landing folder of the trade reports."""
        return Path(self.reports_dir)

    def output(self) -> Path:
        """The folder of the breaks Parquet and summaries."""
        return Path(self.output_dir)


class MarketResource(ConfigurableResource[None]):
    """The exchange's time zone and session hours."""

    tz: str
    open_at: str
    close_at: str

    def zone(self) -> ZoneInfo:
        """The exchange's time zone."""
        return ZoneInfo(self.tz)

    def session(self) -> tuple[time, time]:
        """Open and close, exchange time."""
        return time.fromisoformat(self.open_at), time.fromisoformat(self.close_at)


class ExecutionReportsResource(ConfigurableResource[None]):
    """Publishing to the execution-reports topic the settle agent consumes (for heals)."""

    bootstrap_servers: str
    topic: str
    actor: str

    def publisher(self) -> Publish:
        """A publisher that waits for Kafka's acknowledgement of each report."""
        settings = Settings(
            kafka_bootstrap_servers=self.bootstrap_servers,
            topic_execution_reports=self.topic,
        )
        return kafka_publish(settings)


def postgres_from_settings() -> PostgresResource:
    """The resource for the database named by the BROKER_* settings."""
    settings = get_settings()
    return PostgresResource(dsn=settings.pg_dsn, read_dsn=settings.pg_read_dsn)


def landing_from_settings(settings: Settings) -> LandingResource:
    """The landing and output folders named by the settings."""
    output = settings.recon_output_dir or settings.state_dir / "reconciliation"
    reports = settings.recon_landing_dir or trade_report_dir(settings)
    return LandingResource(reports_dir=str(reports), output_dir=str(output))


def market_from_settings(settings: Settings) -> MarketResource:
    """The market hours of the settings."""
    return MarketResource(
        tz=settings.market_tz, open_at=settings.market_open, close_at=settings.market_close
    )


def execution_reports_from_settings(settings: Settings) -> ExecutionReportsResource:
    """The execution-reports topic of the settings."""
    return ExecutionReportsResource(
        bootstrap_servers=settings.kafka_bootstrap,
        topic=settings.topic_execution_reports,
        actor=settings.recon_heal_actor,
    )
