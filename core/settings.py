"""One settings object per process, read from ``BROKER_*`` environment variables.

Every host, port, topic name, interval and bound lives here; modules take a ``Settings`` value
instead of reading the environment themselves.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.market_profile import PROFILES, MarketProfile, ProfileName

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Marks a secret that only a development or test machine may run with.
DEV_SECRET_PREFIX = "dev-only-"  # noqa: S105 - a marker, not a password


KAFKA_PORT_STRIDE = 2
KAFKA_REPLICAS_MAX = 3


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
    # WAL between checkpoints before one is forced. PostgreSQL's 1 GB made the orders load
    # checkpoint every ~50 s, each followed by a burst of whole-page images in the WAL; at 8 GB
    # checkpoints come from checkpoint_timeout (5 min), which also bounds crash recovery.
    pg_max_wal_size_mb: int = Field(default=8192, ge=64)
    pg_connections_max: int = 300
    # When run as root, PostgreSQL must run as this unprivileged system user.
    pg_os_user: str = "postgres"
    pg_bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    # High availability: a primary and a synchronous hot standby run by Patroni, with etcd as
    # its store (infra/patroni_node.py). Node i listens on pg_port + i, its REST API on
    # pg_ha_rest_port + i. Off: one server on pg_port (lighter; a dead server stops trading).
    pg_ha: bool = True
    pg_ha_nodes: int = Field(default=2, ge=2, le=2)
    pg_ha_rest_port: int = 58008
    # Nodes on hosts of their own (docker-compose.yml's pg-1, pg-2), each on pg_port; else pg_host.
    pg_ha_hosts: tuple[str, ...] = ()
    pg_ha_scope: str = "broker"
    # Patroni's leader key lives ttl_s; a leader renews it every loop_wait_s; a store or
    # database call gives up after retry_timeout_s. Patroni needs loop_wait + 2 * retry <= ttl.
    pg_ha_ttl_s: int = 10
    pg_ha_loop_wait_s: int = 2
    pg_ha_retry_timeout_s: int = 4
    patroni_bin: Path = Path("/usr/bin/patroni")
    etcd_host: str = "127.0.0.1"
    etcd_client_port: int = 52379
    etcd_peer_port: int = 52380
    etcd_bin: Path = Path("/usr/bin/etcd")
    # A statement cut by a failover: an idempotent one (order placement, by its key) is run
    # again up to this many times, backoff_ms apart and doubling; other requests are refused
    # with 503 and Retry-After pg_unavailable_retry_after_s.
    pg_failover_retries_max: int = 4
    pg_failover_backoff_ms: int = 500
    pg_unavailable_retry_after_s: int = 5
    # Preload TimescaleDB (candles as a hypertable, continuous aggregates, compression); off,
    # the same migrations build candles in plain PostgreSQL tables and views.
    pg_timescaledb: bool = True
    # TimescaleDB's background workers: its launcher, one scheduler per database, its jobs.
    pg_timescaledb_workers_max: int = Field(default=16, ge=4, le=256)
    # Source tarballs setup reads before downloading (infra/timescaledb.py); a folder shared
    # between checkouts, so a machine without access to the project's site still installs.
    source_cache_dir: Path = Path.home() / ".cache" / "broker" / "sources"

    # Kafka: KRaft nodes on loopback, each a broker and a controller. Node i (from 0) listens on
    # kafka_port + 2i and its controller on kafka_controller_port + 2i, so the defaults interleave.
    # Three nodes let one die with nothing lost (replication 3, two in sync); one is lighter.
    kafka_host: str = "127.0.0.1"
    kafka_port: int = 59092
    kafka_controller_port: int = 59093
    kafka_nodes: int = Field(default=3, ge=1, le=9)
    # Where clients find the nodes when they are not all on kafka_host (Docker: one host each).
    kafka_bootstrap_servers: str | None = None
    kafka_heap_mb: int = 384
    # A killed node's partitions get new leaders once the controller stops hearing from it:
    # Kafka's default waits 9 s, time in which writes to those partitions wait.
    kafka_heartbeat_ms: int = Field(default=1_000, gt=0)
    kafka_session_timeout_ms: int = Field(default=4_000, gt=0)
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
    partitions_order_updates: int = 6
    partitions_dlq: int = 1
    # The firehose would fill the disk at 200k ticks/s; keep hours, not the default week.
    retention_ticks_ms: int = 6 * 3600 * 1000

    # Services. The run command starts api_processes API processes, the i-th on api_port + i,
    # all behind the front (HAProxy), which is the public entry.
    api_host: str = "127.0.0.1"
    api_port: int = 8001
    api_processes: int = Field(default=2, ge=1, le=16)
    # Proxies whose X-Forwarded-For the API trusts for the client's address (the front).
    api_forwarded_allow_ips: str = "127.0.0.1"
    # /readyz asks Kafka at most this often (the front asks /readyz twice a second).
    api_ready_kafka_check_interval_s: float = Field(default=5.0, ge=0)
    # How long a starting API process waits for its live feeds before it serves anyway: a
    # restarted process rejoins the front sooner, and its feeds catch up within seconds.
    api_feeds_ready_wait_s: float = Field(default=2.0, ge=0)
    api_access_log: bool = False
    # An API process's young-generation collection runs after this many net allocations
    # (Python's 700; 0 keeps it), with what start-up allocated frozen: a request allocates
    # hundreds of short-lived objects, and every collection walked FastAPI's, pydantic's and
    # the pools' long-lived ones.
    api_gc_gen0_threshold: int = Field(default=50_000, ge=0, le=10_000_000)
    # The largest request body the API reads (413 above it): FastAPI holds a whole JSON body in
    # memory before validating it. The largest real one, a KYC submission, stays under 5 KiB
    # even with every character \u-escaped.
    api_request_body_bytes_max: int = Field(default=65_536, ge=1_024, le=16 * 1_048_576)
    dagster_host: str = "127.0.0.1"
    dagster_port: int = 3000
    # gRPC processes serve the Dagster code location (the run command), so the UI and the
    # daemon start without loading it and come back fast when killed; false: each loads it in
    # a subprocess of its own.
    dagster_code_server: bool = False
    dagster_code_host: str = "127.0.0.1"
    dagster_code_port: int = 4266
    # The run command starts this many UIs and code servers, the i-th on dagster_port + i and
    # dagster_code_port + i; the front serves them on dagster_port and dagster_code_port, so a
    # killed one is not an outage while it imports Dagster again.
    dagster_webserver_processes: int = Field(default=2, ge=1, le=8)
    dagster_code_processes: int = Field(default=2, ge=1, le=8)
    # host:port of each UI and code server behind the front, when they are not the processes
    # above on this machine (docker-compose: one container each).
    dagster_webserver_backends: tuple[str, ...] = ()
    dagster_code_backends: tuple[str, ...] = ()
    conflation_ms: int = Field(default=250, ge=200, le=500)

    # Money and trading. The profile gives the defaults of currency, market_tz, market_open,
    # market_close and the KYC national id (pattern and format); each may still be set alone.
    # Holidays come from the profile's exchange calendar (core.calendar).
    market_profile: ProfileName = "NYSE"
    currency: str = Field(default="", pattern=r"^[A-Z]{3}$")
    fee_rate_bps: int = Field(default=3, ge=0, le=1000)
    # Market buys reserve the last price plus this band, so a moving price cannot overdraw.
    market_protection_band_bps: int = Field(default=500, ge=0, le=5000)
    market_tz: str = ""
    market_open: str = ""  # HH:MM, exchange time
    market_close: str = ""
    # Demo mode: the market never closes.
    market_always_open: bool = False
    # The largest quantity one order may ask for (shares).
    order_quantity_max: int = Field(default=10_000_000, ge=1)

    # Security. Every secret refuses its dev-only default in production.
    jwt_secret: SecretStr = SecretStr(DEV_SECRET_PREFIX + "jwt-secret-change-me-0123456789")
    access_token_ttl_s: int = 900
    # A login's session lives this long; its one-time refresh tokens renew the access token.
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    # How many 2FA recovery codes a user gets (each usable once instead of a TOTP code).
    recovery_codes_count: int = Field(default=10, ge=1, le=50)
    # The longest wait between attempts to LISTEN again for revoked sessions after a failure.
    session_listen_retry_backoff_ms_max: int = Field(default=5_000, ge=10)
    # Keys for AES-256-GCM (PII, TOTP secrets) are derived from this with HKDF.
    encryption_secret: SecretStr = SecretStr(DEV_SECRET_PREFIX + "encryption-secret-0123456789")
    rate_limit_user_per_minute: int = 300
    rate_limit_api_key_per_minute: int = 600
    rate_limit_login_per_minute: int = 10
    # Login attempts per client IP: higher than per email, since many people may share one NAT.
    rate_limit_login_ip_per_minute: int = 60
    # Passwords: length bounds (the upper one caps the hashing work an attacker can ask for).
    password_length_min: int = Field(default=12, ge=8)
    password_length_max: int = Field(default=128, ge=16, le=1024)
    # Argon2 hashes run on at most this many threads (each uses 64 MiB while it runs).
    password_hash_threads_max: int = Field(default=4, ge=1, le=64)
    # Keys replaced by a rotation: still decrypt old rows, never encrypt new ones.
    encryption_secrets_retired: tuple[SecretStr, ...] = ()
    totp_issuer: str = "Broker"
    # TOTP codes of this many 30 s steps before and after now are accepted (clock drift).
    totp_valid_window_steps: int = Field(default=1, ge=0, le=2)
    api_keys_per_user_max: int = Field(default=20, ge=1)

    # The demo trader `make up` makes ready (2FA, KYC, cash, these holdings) for a first look;
    # never in production mode. Its password is printed for the person trying the system.
    demo_trader: bool = True
    demo_email: str = "demo@example.com"
    demo_password: str = "a demo passphrase 2026"  # noqa: S105 - printed, not a secret
    demo_cash: Decimal = Decimal("100000.00")
    demo_holdings: dict[str, int] = Field(default_factory=lambda: {"ACME": 5, "ALPHA": 10})

    # KYC (the provider is simulated).
    kyc_age_min_years: int = 18
    kyc_review_delay_ms: int = 200
    # How long a VERIFIED status is trusted without asking the database again, and how many.
    kyc_verified_cache_s: float = 30.0
    kyc_verified_cache_max: int = 100_000
    kyc_sanctioned_names: tuple[str, ...] = ("IVAN DRAGO", "HANS GRUBER", "AURIC GOLDFINGER")
    # Matched after removing spaces and upper-casing; the format is what a refusal tells.
    kyc_national_id_pattern: str = ""
    kyc_national_id_format: str = ""
    # A date of birth older than this is refused at submission as implausible.
    kyc_age_max_years: int = Field(default=130, ge=1)
    # The in-process reviewer: how often it looks for pending records and how many it takes.
    kyc_review_poll_interval_ms: int = Field(default=200, ge=10)
    kyc_review_batch_max: int = Field(default=50, ge=1, le=1000)
    # A record the reviewer could not process (e.g. key not configured) is retried after this.
    kyc_review_retry_ms: int = Field(default=60_000, ge=100)

    # Payment gateway (a simulator in development).
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8070
    gateway_webhook_secret: SecretStr = SecretStr(DEV_SECRET_PREFIX + "gateway-webhook-secret")
    gateway_confirm_delay_ms: int = 300
    # Where the gateway calls back: the API as the gateway sees it.
    api_public_url: str = "https://127.0.0.1:8443"
    # A signed webhook older or newer than this is refused (replay window, clock skew).
    gateway_webhook_tolerance_s: int = Field(default=300, ge=1)
    # The API's calls to the gateway: per-call timeout and attempts (creation is idempotent).
    gateway_request_timeout_s: float = Field(default=5.0, gt=0)
    gateway_request_attempts_max: int = Field(default=3, ge=1, le=10)
    gateway_request_backoff_ms: int = Field(default=100, ge=1)
    # The gateway redelivers a webhook with exponential backoff until a 2xx, at most this often.
    gateway_webhook_attempts_max: int = Field(default=8, ge=1, le=100)
    gateway_webhook_backoff_initial_ms: int = Field(default=100, ge=1)
    gateway_webhook_backoff_max_ms: int = Field(default=10_000, ge=1)
    # The largest single deposit or withdrawal the API accepts.
    payment_amount_max: Decimal = Decimal("10000000")
    # The simulator keeps its payments in memory: at most this many, then it answers 503.
    gateway_payments_max: int = Field(default=100_000, ge=1)
    # Every paginated list (transactions, payment intents, orders): default and largest page.
    page_limit_default: int = Field(default=50, ge=1)
    page_limit_max: int = Field(default=200, ge=1)

    # Fraud rules applied before an order or withdrawal is accepted.
    order_value_max: Decimal = Decimal("1000000")
    orders_per_minute_max: int = 60
    new_account_days: int = 7
    withdrawal_after_deposit_block_s: int = 3600

    # Stream agents (Faust). Each worker process serves its web page (metrics, liveness) on
    # streams_web_port + its index, so several workers can share a machine.
    streams_app_id: str = "broker-streams"
    streams_web_host: str = "127.0.0.1"
    streams_web_port: int = 6066
    streams_workers: int = Field(default=2, ge=1, le=16)
    streams_batch_max: int = 2000
    # The tick agents' batches: their database writes are per candle, not per tick, so a
    # bigger batch of the firehose costs the same writes (profiled: writes were ~15% of a
    # worker at 2,000). A batch is only this big when ticks are waiting.
    streams_tick_batch_max: int = Field(default=10_000, ge=1, le=100_000)
    streams_batch_within_ms: int = 100
    streams_commit_interval_ms: int = 1000
    # A worker's young-generation collection runs after this many net allocations (Python's
    # default is 700; 0 keeps it). A tick batch allocates tens of thousands of short-lived
    # tuples, and every collection also walked Faust's and aiokafka's long-lived objects:
    # measured +10-15% ticks/s per worker with 50,000 and start-up objects frozen.
    streams_gc_gen0_threshold: int = Field(default=50_000, ge=0, le=10_000_000)
    # An agent silent this long while its topics have lag is reported stalled by /livez.
    streams_stall_s: float = 30.0
    # Orders the settle agent settles in parallel within a batch (one pool connection each);
    # the reports of one order are always applied one after another, in offset order.
    settle_concurrency: int = Field(default=4, ge=1, le=64)
    # Fetched batches the settle agent works on at once: the next batch is decoded and its lanes
    # start as soon as the same lanes of the one before have committed, so PostgreSQL is not idle
    # while Python prepares a batch. Offsets are still committed in order, after each batch.
    settle_batches_in_flight: int = Field(default=2, ge=1, le=8)
    # The stops agent reloads the pending stop orders from PostgreSQL this often.
    stops_refresh_ms: int = Field(default=1_000, ge=50, le=600_000)
    # A tick this far behind its partition's newest exchange time still corrects its candle;
    # an older one goes to the DLQ (the candle was published already).
    candles_grace_ms: int = Field(default=2_000, ge=0, le=3_600_000)
    # A failed candle or last-price write is retried (the batch stays unacknowledged) after this.
    streams_db_retry_backoff_ms_max: int = Field(default=5_000, ge=10)

    # Outbox relay.
    outbox_poll_interval_ms: int = 50
    outbox_batch_max: int = 500
    # A batch not acknowledged by Kafka within this is retried (rows stay unpublished).
    outbox_delivery_timeout_ms: int = Field(default=30_000, ge=1_000)
    # Reconnects after a Kafka or PostgreSQL failure back off exponentially up to this.
    outbox_retry_backoff_ms_max: int = Field(default=5_000, ge=10)

    # Retention (streams/retention.py, run beside each relay; one leads): done outbox rows and
    # idempotency keys are deleted this long after they were written. Kafka keeps the published
    # records; a client may retry with the same idempotency key within the window.
    outbox_retention_s: int = Field(default=86_400, ge=60)
    idempotency_key_retention_s: int = Field(default=86_400, ge=60)
    # Rows deleted per statement (its locks last one batch); full batches follow each other
    # at once, and when a batch comes back short the purger sleeps this long.
    retention_batch_max: int = Field(default=5_000, ge=1, le=100_000)
    retention_interval_s: float = Field(default=60.0, gt=0, le=3_600)

    # Exchange simulator.
    sim_fix_host: str = "127.0.0.1"
    sim_fix_port: int = 9878
    sim_sender_comp_id: str = "EXCHANGE"  # the simulator's CompID
    sim_target_comp_id: str = "BROKER"  # the CompID the bridge logs on with
    sim_seed: int = 20240915
    sim_symbols_count: int = Field(default=50, ge=1, le=20_000)
    sim_tick_rate_per_s: int = Field(default=2_000, ge=0, le=5_000_000)
    # The publisher wakes this often and sends the ticks due since its last wake-up at once.
    sim_tick_interval_ms: int = Field(default=10, ge=1, le=1000)
    # Publisher processes sharing the symbols (one tops out near 150k ticks/s); 0: a thread.
    sim_tick_workers: int = Field(default=1, ge=0, le=16)
    # The 9:15 surge: for the first sim_open_burst_s seconds the rate is multiplied.
    sim_open_burst_multiplier: int = Field(default=5, ge=1, le=1000)
    sim_open_burst_s: float = Field(default=0.0, ge=0.0)
    sim_tick_size_max: int = Field(default=500, ge=1)  # shares per tick print
    # Simulated seconds per real second: 60 moves prices in a minute as much as in an hour.
    sim_time_scale: float = Field(default=60.0, gt=0.0)
    sim_eod_enabled: bool = True  # expire DAY orders and write the report at market_close
    # The demo close: in always-open mode the simulator also lands the day's trade report so far
    # this often (DAY orders are left alone), so a demo has a report to reconcile; 0: never.
    sim_demo_close_interval_s: int = Field(default=3600, ge=0)
    # The first demo close comes this soon after the simulator starts, so a reconciliation run
    # shows in Dagster minutes after `make up`; the next ones every interval.
    sim_demo_close_first_s: int = Field(default=60, ge=1)
    # How long `python -m infra close-day` waits for the simulator's trade report to land.
    sim_close_day_timeout_s: float = Field(default=30.0, gt=0)
    # Market orders above this size fill in several executions of at most this size.
    sim_partial_fill_qty_max: int = Field(default=500, ge=1)
    sim_resting_orders_max: int = Field(default=100_000, ge=1)
    sim_producer_linger_ms: int = Field(default=20, ge=0)
    sim_producer_batch_messages: int = Field(default=100_000, ge=1)
    sim_producer_queue_messages_max: int = Field(default=1_000_000, ge=1)
    # None: state_dir/landing/trade_reports (fixbridge.simulator.config.trade_report_dir).
    sim_trade_report_dir: Path | None = None
    # Known breaks written into the trade report, listed in its sidecar JSON.
    sim_inject_drop_fills: int = Field(default=0, ge=0)
    sim_inject_change_qty: int = Field(default=0, ge=0)
    sim_inject_extra_trades: int = Field(default=0, ge=0)

    # FIX bridge.
    # Where the bridge connects: the exchange (the simulator in development) or a proxy before it.
    bridge_fix_host: str = "127.0.0.1"
    bridge_fix_port: int = 9878
    bridge_sender_comp_id: str = "BROKER"
    bridge_target_comp_id: str = "EXCHANGE"
    bridge_heartbeat_s: int = Field(default=30, ge=1, le=300)
    # QuickFIX 1.15 retries a lost connection at this fixed interval (its only backoff).
    bridge_reconnect_interval_s: int = Field(default=5, ge=1, le=300)
    bridge_consumer_group: str = "fixbridge"
    # Order commands taken from Kafka per poll; offsets are committed after each batch.
    bridge_batch_max: int = Field(default=100, ge=1, le=10_000)
    bridge_poll_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    # A report Kafka has not acknowledged within this stops the bridge (FIX resends it later).
    bridge_publish_timeout_s: float = Field(default=30.0, gt=0)
    # Recovery reads unfinished sent orders in pages of this many.
    bridge_recovery_page_max: int = Field(default=500, ge=1, le=100_000)

    # Bounds on waiting for infrastructure: every wait has a limit.
    startup_timeout_s: float = 60.0
    shutdown_timeout_s: float = 30.0

    # Issue 5 (streams throughput): where Faust keeps its data folder (None: state_dir/streams).
    streams_data_dir: Path | None = None

    # Issue #3 (OMS benchmark): how often the API's in-process rate limiter drops expired hits.
    rate_limit_sweep_interval_s: float = Field(default=1.0, gt=0, le=60)

    # Nightly reconciliation (issue 7).
    # None: the simulator's landing folder (fixbridge.simulator.config.trade_report_dir).
    recon_landing_dir: Path | None = None
    # None: state_dir/reconciliation (breaks Parquet and summaries per day).
    recon_output_dir: Path | None = None
    # The first trading day Dagster offers as a partition.
    recon_start_date: str = "2024-01-01"
    # The nightly run for the previous trading day, in exchange time.
    recon_schedule_hour: int = Field(default=2, ge=0, le=23)
    recon_schedule_minute: int = Field(default=30, ge=0, le=59)
    recon_sensor_interval_s: int = Field(default=60, ge=5)
    recon_top_breaks: int = Field(default=20, ge=1, le=1000)
    # Who heals, as written into healed_by and the audit rows.
    recon_heal_actor: str = "reconciliation-heal"

    # Issue 6: market data and portfolio for clients (SSE feeds, candles, quotes).
    # SSE price stream: heartbeat comment period, and the bounds per client and per user.
    stream_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    stream_symbols_per_client_max: int = Field(default=100, ge=1, le=10_000)
    stream_connections_per_user_max: int = Field(default=5, ge=1, le=1_000_000)
    # A client is sent at most one update per symbol this often (>= the conflate interval).
    stream_client_interval_ms: int = Field(default=250, ge=0, le=10_000)
    # The price hub's one consumer per API process: poll timeout and messages per poll.
    stream_feed_poll_ms: int = Field(default=100, ge=10, le=5_000)
    stream_feed_batch_max: int = Field(default=1_000, ge=1, le=100_000)
    # The order feed: one consumer of the order updates topic per API process, polled as the
    # price feed's (stream_feed_*). Order updates one stream may have waiting; past it the stream
    # ends with a resync event.
    order_feed_queue_max: int = Field(default=1_000, ge=1, le=1_000_000)
    # The longest wait between attempts to start a feed's consumer while Kafka is away.
    order_feed_retry_backoff_ms_max: int = Field(default=5_000, ge=10)
    # Candles API: the most candles one answer may hold, the default, and the widest range.
    candles_limit_max: int = Field(default=5_000, ge=1, le=1_000_000)
    candles_limit_default: int = Field(default=500, ge=1)
    candles_range_days_max: int = Field(default=3_660, ge=1)
    # And the most buckets of the asked width one range may span (1s over a year is refused).
    candles_range_buckets_max: int = Field(default=100_000, ge=1)
    quotes_symbols_max: int = Field(default=200, ge=1, le=10_000)
    # The web page's watchlist: the most symbols one user may keep (each is a ticker tile and a
    # symbol of the page's one price stream, below stream_symbols_per_client_max), and how many
    # of the first active instruments a user who never saved a list is shown.
    watchlist_symbols_max: int = Field(default=30, ge=1, le=100)
    watchlist_default_count: int = Field(default=10, ge=0, le=100)

    # Issue 3: order throughput. Verified access tokens kept per API process until they expire
    # (a JWT decode is a noticeable share of an order's CPU); at the maximum the cache is emptied.
    access_token_cache_max: int = Field(default=100_000, ge=0)

    # Issue #6 (SSE load goals): the API's listen backlog. 10,000 streams connecting at once
    # overflow uvicorn's default of 2048; the kernel caps it at net.core.somaxconn.
    api_backlog: int = Field(default=8_192, ge=64, le=65_535)
    # A price stream's writes at least this far apart (0: as updates come): fewer, larger writes
    # per client, each update late by at most this much.
    stream_client_batch_ms: int = Field(default=0, ge=0, le=1_000)

    # Redis: what every API process must share (rate-limit counters).
    redis_host: str = "127.0.0.1"
    redis_port: int = 56379
    redis_password: SecretStr = SecretStr(DEV_SECRET_PREFIX + "redis-password")
    # A Redis call slower than this counts as Redis lost (the API then uses its fallback).
    # Measured on the API's event loop, so it includes the loop's own lag under load: a call
    # answered in 1 ms can still read 300 ms late on a saturated host, and a false loss refuses
    # logins.
    redis_timeout_s: float = Field(default=1.0, gt=0, le=10)
    # After Redis was lost, the API tries it again at most this often.
    redis_retry_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Connections one API process keeps to Redis; a call waits at most redis_timeout_s for one.
    redis_connections_max: int = Field(default=32, ge=1, le=10_000)
    # The server's memory bound (its counters live one rate-limit window each).
    redis_maxmemory_mb: int = Field(default=256, ge=16)

    # The public front (HAProxy): TLS 1.3 only on front_https_port; plain HTTP on
    # front_http_port is redirected there. It health-checks every API process on /readyz.
    # front_host is where the front binds; front_public_host is how clients name it (the
    # certificate's name and the redirect's target).
    front_host: str = "127.0.0.1"
    front_public_host: str = "127.0.0.1"
    front_https_port: int = 8443
    front_http_port: int = 8000
    # The API processes as host:port, when they are not api_processes ports on api_host
    # (containers: each process is a host of its own).
    api_backends: tuple[str, ...] = ()
    front_check_interval_ms: int = Field(default=500, ge=100, le=10_000)
    # After a failed check the next comes this soon, and a check waits this long for /readyz.
    # A hung process is out of rotation at worst interval + fall x timeout + (fall - 1) x fast
    # interval after its last good check: 1.75 s (with the fast interval equal to the interval,
    # 2.0 s, no slack for a loaded host's scheduling).
    front_check_fast_interval_ms: int = Field(default=250, ge=100, le=10_000)
    front_check_timeout_ms: int = Field(default=500, ge=100, le=10_000)
    # Failed checks in a row that take an API process out of rotation.
    front_check_fall: int = Field(default=2, ge=1, le=10)
    front_check_rise: int = Field(default=2, ge=1, le=10)
    # Streams (SSE, WebSocket) stay open through the front this long without a byte.
    front_stream_idle_timeout_s: int = Field(default=3_600, ge=60)
    # Client connections the front holds at once: each also takes one to an API process, and
    # both count against the process's file limit (ulimit -n), 20,000 on these machines.
    front_connections_max: int = Field(default=9_000, ge=100)
    front_hsts_max_age_s: int = Field(default=31_536_000, ge=0)
    # The front's certificate chain and key in one PEM file (HAProxy's format); None: a local
    # certificate made at setup under state_dir/tls, signed by a local CA (tls_ca_file).
    tls_cert_file: Path | None = None
    # More names the local certificate is made for (say, the front's host name in containers).
    tls_cert_names: tuple[str, ...] = ()
    # The CA that the project's own clients of the front trust (the gateway's webhooks, tests);
    # None: the local CA under state_dir/tls.
    tls_ca_file: Path | None = None

    # Redundancy of the run command: processes of each kind under the supervisor.
    relay_processes: int = Field(default=2, ge=1, le=8)
    bridge_processes: int = Field(default=2, ge=1, le=8)
    # The FIX bridge's leader lease in PostgreSQL: the leader renews it this often, and a
    # standby takes it over once it is this old (the takeover bound is about ttl + renew).
    bridge_lease_ttl_ms: int = Field(default=3_000, ge=500, le=60_000)
    bridge_lease_renew_ms: int = Field(default=500, ge=100, le=30_000)
    # The supervisor: a service that exits within start_s of starting is retried at most
    # retries_max times, each wait a second longer (its backoff), then left FATAL and logged.
    supervisor_start_s: int = Field(default=3, ge=1, le=60)
    supervisor_retries_max: int = Field(default=10, ge=0, le=100)
    # How long the run command waits for every service to be up behind the front.
    supervisor_ready_timeout_s: float = Field(default=240.0, gt=0)

    @property
    def tls_dir(self) -> Path:
        """Where the local CA and the front's certificate are made at setup."""
        return self.state_dir / "tls"

    @property
    def front_cert_path(self) -> Path:
        """The PEM file (chain and key) HAProxy serves."""
        return self.tls_cert_file or self.tls_dir / "front.pem"

    @property
    def ca_cert_path(self) -> Path:
        """The CA certificate clients of the front verify it with."""
        return self.tls_ca_file or self.tls_dir / "ca.pem"

    @property
    def front_url(self) -> str:
        """The public HTTPS address of the system."""
        return f"https://{self.front_public_host}:{self.front_https_port}"

    def kafka_node_port(self, index: int) -> int:
        """The client port of Kafka node ``index`` (from 0)."""
        return self.kafka_port + KAFKA_PORT_STRIDE * index

    def kafka_node_controller_port(self, index: int) -> int:
        """The controller port of Kafka node ``index`` (from 0)."""
        return self.kafka_controller_port + KAFKA_PORT_STRIDE * index

    @property
    def kafka_bootstrap(self) -> str:
        """The bootstrap servers string for Kafka clients: every node, so any one may be down."""
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        return ",".join(
            f"{self.kafka_host}:{self.kafka_node_port(i)}" for i in range(self.kafka_nodes)
        )

    @property
    def kafka_replication_factor(self) -> int:
        """Copies of each partition: three where there are three nodes."""
        return min(KAFKA_REPLICAS_MAX, self.kafka_nodes)

    @property
    def kafka_min_insync_replicas(self) -> int:
        """Copies an acks=all write needs: all but one, so one node may die without refusals."""
        return max(1, self.kafka_replication_factor - 1)

    @property
    def pg_dsn(self) -> str:
        """A libpq connection string for the project's database."""
        return self.pg_dsn_for(self.pg_database)

    def pg_dsn_for(self, database: str) -> str:
        """A libpq connection string for another database of the same cluster (its primary)."""
        return self._pg_dsn(database, "read-write")

    @property
    def pg_read_dsn(self) -> str:
        """A connection string for reads that may see the standby's slightly older data."""
        return self._pg_dsn(self.pg_database, "prefer-standby")

    @property
    def pg_ports(self) -> tuple[int, ...]:
        """The port of each PostgreSQL node: one, or one per node of the HA pair."""
        count = self.pg_ha_nodes if self.pg_ha else 1
        return tuple(self.pg_port + i for i in range(count))

    @property
    def pg_addresses(self) -> tuple[tuple[str, int], ...]:
        """Each node's host and port, in the order clients try them."""
        if self.pg_ha and self.pg_ha_hosts:
            return tuple((host, self.pg_port) for host in self.pg_ha_hosts)
        return tuple((self.pg_host, port) for port in self.pg_ports)

    def _pg_dsn(self, database: str, session_attrs: str) -> str:
        common = (
            f"user={self.pg_user} password={self.pg_password.get_secret_value()} "
            f"dbname={database} connect_timeout={int(self.pg_connect_timeout_s)}"
        )
        if not self.pg_ha:
            return f"host={self.pg_host} port={self.pg_port} {common}"
        # libpq tries each host in turn and keeps the first whose role fits.
        hosts = ",".join(host for host, _ in self.pg_addresses)
        ports = ",".join(str(port) for _, port in self.pg_addresses)
        return f"host={hosts} port={ports} {common} target_session_attrs={session_attrs}"

    def dlq_topic(self, topic: str) -> str:
        """The dead-letter topic of a source topic."""
        return topic + self.dlq_suffix

    @property
    def profile(self) -> MarketProfile:
        """The market profile the settings were read with."""
        return PROFILES[self.market_profile]

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_the_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("market_profile", cls.model_fields["market_profile"].default)
        profile = PROFILES.get(name)
        if profile is None:
            return data  # the field's own validation names the allowed profiles
        defaults = {
            "currency": profile.currency,
            "market_tz": profile.tz,
            "market_open": profile.open_at,
            "market_close": profile.close_at,
            "kyc_national_id_pattern": profile.national_id_pattern,
            "kyc_national_id_format": profile.national_id_format,
        }
        # An empty value (a variable set to nothing) also takes the profile's.
        return {**data, **{k: v for k, v in defaults.items() if not data.get(k)}}

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Settings:
        if self.mode == "production":
            for name, value in self.model_dump().items():
                if isinstance(value, SecretStr) and value.get_secret_value().startswith(
                    DEV_SECRET_PREFIX
                ):
                    raise ValueError(f"BROKER_{name.upper()} must be set in production mode")
        return self


def settings_env(settings: Settings) -> dict[str, str]:
    """``BROKER_*`` variables that make a child process read exactly these settings."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        env[f"BROKER_{name.upper()}"] = _env_value(value)
    return env


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        # pydantic-settings reads complex fields as JSON.
        return json.dumps([_env_value(v) for v in value])
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
