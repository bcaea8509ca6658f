"""The local infrastructure as one unit: Redis, PostgreSQL and Kafka, migrated and with topics."""

from __future__ import annotations

import logging

from core.settings import Settings
from infra import kafka_node, migrate, patroni_node, postgres, redis_node, seed, topics

log = logging.getLogger(__name__)


def start(settings: Settings, *, redis: bool = True) -> None:
    """Bring Redis, PostgreSQL and Kafka up (a second call is harmless); migrate, seed, topics.

    ``redis=False`` leaves Redis to the supervisor (the run command restarts it when it dies).
    """
    if redis:
        # First: it starts in a moment, and the API's login limits need it.
        redis_node.start(settings)
        log.info("redis ready on %s:%s", settings.redis_host, settings.redis_port)
    if settings.pg_ha:
        patroni_node.start(settings)
    else:
        postgres.start(settings)
    applied = migrate.apply_migrations(settings.pg_dsn)
    instruments = seed.seed_reference_data(settings)
    log.info(
        "postgres ready on %s port %s (%d migrations applied, %d instruments)",
        settings.pg_host,
        ",".join(str(port) for port in settings.pg_ports),
        applied,
        instruments,
    )
    kafka_node.start(settings)
    created = topics.ensure_topics(settings)
    log.info("kafka ready on %s (%d topics created)", settings.kafka_bootstrap, len(created))


def stop(settings: Settings) -> None:
    """Stop Kafka, then PostgreSQL, then Redis; stopping what is not running is harmless."""
    kafka_node.stop(settings)
    postgres.stop(settings)
    # Both, whatever the setting says now: a stack started in the other mode still stops.
    patroni_node.stop(settings)
    redis_node.stop(settings)


def status(settings: Settings, *, redis: bool = True) -> list[str]:
    """A line per server saying whether it runs and where (Redis unless supervised)."""
    lines = [redis_node.status(settings)] if redis else []
    pg = patroni_node.status(settings) if settings.pg_ha else [postgres.status(settings)]
    return [*lines, *pg, *kafka_node.status(settings)]


def urls(settings: Settings) -> list[str]:
    """Where each service of the system listens, for people starting it."""
    return [
        f"postgres  postgresql://{settings.pg_user}@"
        + ",".join(f"{settings.pg_host}:{port}" for port in settings.pg_ports)
        + f"/{settings.pg_database}",
        f"kafka     {settings.kafka_bootstrap}",
        f"redis     redis://{settings.redis_host}:{settings.redis_port}/0 "
        "(password: BROKER_REDIS_PASSWORD)",
        f"front     {settings.front_url} (TLS 1.3; web page /app/, docs /docs, ready /readyz;"
        f" plain http://{settings.front_public_host}:{settings.front_http_port} redirects here;"
        f" local CA {settings.ca_cert_path})",
        f"api       {settings.api_processes} processes on {settings.api_host}:{settings.api_port}"
        f"-{settings.api_port + settings.api_processes - 1} (behind the front)",
        f"dagster   http://{settings.dagster_host}:{settings.dagster_port}",
    ]
