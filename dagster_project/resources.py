"""Dagster resources: the project's PostgreSQL, configured from the one settings object."""

from __future__ import annotations

import psycopg
from dagster import ConfigurableResource

from core.settings import get_settings


class PostgresResource(ConfigurableResource[None]):
    """Connections to the broker's database."""

    dsn: str

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A new connection; the caller closes it (use it as a context manager)."""
        return psycopg.connect(self.dsn)


def postgres_from_settings() -> PostgresResource:
    """The resource for the database named by the BROKER_* settings."""
    return PostgresResource(dsn=get_settings().pg_dsn)
