"""One settings object per process, read from ``BROKER_*`` environment variables.

Every host, port, topic name, interval and bound lives here; modules take a ``Settings`` value
instead of reading the environment themselves.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Marks a secret that only a development or test machine may run with.
DEV_SECRET_PREFIX = "dev-only-"  # noqa: S105 - a marker, not a password


class Settings(BaseSettings):
    """All configuration of one process; frozen once read."""

    model_config = SettingsConfigDict(env_prefix="BROKER_", frozen=True, extra="ignore")

    mode: Literal["development", "test", "production"] = "development"
    state_dir: Path = PROJECT_ROOT / ".local"

    # PostgreSQL: the project's own cluster on loopback.
    pg_host: str = "127.0.0.1"
    pg_port: int = 55432
    pg_user: str = "broker"
    pg_password: SecretStr = SecretStr(DEV_SECRET_PREFIX + "pg-password")
    pg_database: str = "broker"
    pg_pool_size_min: int = 1
    pg_pool_size_max: int = 10
    pg_connect_timeout_s: float = 5.0
    pg_shared_buffers_mb: int = 512
    pg_connections_max: int = 300
    # When run as root, PostgreSQL must run as this unprivileged system user.
    pg_os_user: str = "postgres"
    pg_bin_dir: Path = Path("/usr/lib/postgresql/15/bin")

    # Kafka: one KRaft node on loopback; the controller listens on its own port.
    kafka_host: str = "127.0.0.1"
    kafka_port: int = 59092
    kafka_controller_port: int = 59093
    kafka_heap_mb: int = 512
    kafka_version: str = "4.3.1"

    topic_ticks: str = "md.ticks"
    topic_conflated: str = "md.conflated"
    topic_orders: str = "oms.orders"
    topic_execution_reports: str = "exch.execution-reports"
    dlq_suffix: str = ".dlq"
    partitions_ticks: int = 12
    partitions_conflated: int = 3
    partitions_orders: int = 6
    partitions_execution_reports: int = 6
    partitions_dlq: int = 1
    # The firehose would fill the disk at 200k ticks/s; keep hours, not the default week.
    retention_ticks_ms: int = 6 * 3600 * 1000

    # Services.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dagster_host: str = "127.0.0.1"
    dagster_port: int = 3000
    conflation_ms: int = Field(default=250, ge=200, le=500)

    # Money and trading.
    currency: str = "USD"
    fee_rate_bps: int = Field(default=3, ge=0, le=1000)
    # Market buys reserve the last price plus this band, so a moving price cannot overdraw.
    market_protection_band_bps: int = Field(default=500, ge=0, le=5000)
    market_tz: str = "Asia/Kolkata"
    market_open: str = "09:15"
    market_close: str = "15:30"
    market_holidays: tuple[str, ...] = ()  # ISO dates, exchange time
    # Demo mode: the market never closes.
    market_always_open: bool = False

    # Security. Every secret refuses its dev-only default in production.
    jwt_secret: SecretStr = SecretStr(DEV_SECRET_PREFIX + "jwt-secret-change-me-0123456789")
    access_token_ttl_s: int = 900
    # Keys for AES-256-GCM (PII, TOTP secrets) are derived from this with HKDF.
    encryption_secret: SecretStr = SecretStr(DEV_SECRET_PREFIX + "encryption-secret-0123456789")
    rate_limit_user_per_minute: int = 300
    rate_limit_api_key_per_minute: int = 600
    rate_limit_login_per_minute: int = 10

    # KYC (the provider is simulated).
    kyc_age_min_years: int = 18
    kyc_review_delay_ms: int = 200
    kyc_sanctioned_names: tuple[str, ...] = ("IVAN DRAGO", "HANS GRUBER", "AURIC GOLDFINGER")

    # Payment gateway (a simulator in development).
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8070
    gateway_webhook_secret: SecretStr = SecretStr(DEV_SECRET_PREFIX + "gateway-webhook-secret")
    gateway_confirm_delay_ms: int = 300
    # Where the gateway calls back: the API as the gateway sees it.
    api_public_url: str = "http://127.0.0.1:8000"

    # Fraud rules applied before an order or withdrawal is accepted.
    order_value_max: Decimal = Decimal("1000000")
    orders_per_minute_max: int = 60
    new_account_days: int = 7
    withdrawal_after_deposit_block_s: int = 3600

    # Outbox relay.
    outbox_poll_interval_ms: int = 50
    outbox_batch_max: int = 500

    # Bounds on waiting for infrastructure: every wait has a limit.
    startup_timeout_s: float = 60.0
    shutdown_timeout_s: float = 30.0

    @property
    def kafka_bootstrap(self) -> str:
        """The bootstrap servers string for Kafka clients."""
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def pg_dsn(self) -> str:
        """A libpq connection string for the project's database."""
        return self.pg_dsn_for(self.pg_database)

    def pg_dsn_for(self, database: str) -> str:
        """A libpq connection string for another database of the same cluster."""
        return (
            f"host={self.pg_host} port={self.pg_port} user={self.pg_user} "
            f"password={self.pg_password.get_secret_value()} dbname={database} "
            f"connect_timeout={int(self.pg_connect_timeout_s)}"
        )

    @property
    def pg_url(self) -> str:
        """A SQLAlchemy-style URL (for yoyo) using the psycopg 3 driver."""
        return (
            f"postgresql+psycopg://{self.pg_user}:{self.pg_password.get_secret_value()}"
            f"@{self.pg_host}:{self.pg_port}/{self.pg_database}"
        )

    def dlq_topic(self, topic: str) -> str:
        """The dead-letter topic of a source topic."""
        return topic + self.dlq_suffix

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Settings:
        if self.mode == "production":
            for name, value in self.model_dump().items():
                if isinstance(value, SecretStr) and value.get_secret_value().startswith(
                    DEV_SECRET_PREFIX
                ):
                    raise ValueError(f"BROKER_{name.upper()} must be set in production mode")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
