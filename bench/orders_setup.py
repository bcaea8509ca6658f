"""The orders benchmark's stage: a migrated database with funded, verified users, and the API.

The database (``bench_orders``) is created, migrated and seeded before a run and dropped after,
so a run never touches the project's data. Users are made the way the API tests make them
(tests/integration/api/conftest.py ``make_user``): 2FA and KYC rows marked verified, and cash
credited through the ledger (a DEPOSIT posting), so every invariant query holds before and after.
The API runs as its own process (``python -m api``), configured by ``BROKER_*`` variables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO

import httpx
import psycopg
from psycopg import sql

from api.security.tokens import issue_access_token
from bench.exceptions import BenchError
from bench.orders_history import History, load_history
from core.db import AsyncConn
from core.instruments import instrument_universe, seed_instruments
from core.ledger import TxnKind, deposit_entries, open_user_accounts, post
from core.settings import PROJECT_ROOT, Settings, settings_env
from infra.migrate import apply_migrations, load_invariants

log = logging.getLogger(__name__)

BENCH_DATABASE = "bench_orders"
# Enough that no run of hours can spend it: 1 share at ~100 per order.
USER_CASH = Decimal("1000000000")
# Tokens outlive any run (the API's default is 15 minutes).
TOKEN_TTL_S = 24 * 3600
# Limits no benchmark load reaches: the run measures placement, not the limiters.
LIMIT_UNREACHED = 1_000_000_000
ORDER_VALUE_MAX = Decimal("1000000000")
SERVER_POLL_INTERVAL_S = 0.1
# The symbol every benchmark order buys; history orders use it too, growing the same index ranges.
BENCH_SYMBOL = "ACME"
SERVER_LOG_TAIL_CHARS = 2000
_NONCE = b"\0" * 12


@dataclass(frozen=True)
class BenchUser:
    """A funded, verified user and the header that authenticates as them."""

    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for this user."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class BenchDatabase:
    """The benchmark's database: its name, settings that point at it, and its users."""

    name: str
    settings: Settings
    users: tuple[BenchUser, ...]

    @property
    def dsn(self) -> str:
        """A libpq connection string for the database."""
        return self.settings.pg_dsn

    @property
    def user_id_range(self) -> tuple[int, int]:
        """The lowest and highest user id; the ids are contiguous (checked at setup)."""
        return self.users[0].id, self.users[-1].id


def served_settings(settings: Settings, database: str, *, pool_size_max: int) -> Settings:
    """Settings for the benchmark: its database, market open, limits out of the way."""
    return settings.model_copy(
        update={
            "pg_database": database,
            "pg_pool_size_max": pool_size_max,
            "market_always_open": True,
            "rate_limit_user_per_minute": LIMIT_UNREACHED,
            "rate_limit_api_key_per_minute": LIMIT_UNREACHED,
            "orders_per_minute_max": LIMIT_UNREACHED,
            "order_value_max": ORDER_VALUE_MAX,
            "access_token_ttl_s": TOKEN_TTL_S,
        }
    )


def free_port() -> int:
    """A TCP port nothing listens on right now (for the API server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin(settings: Settings, statement: sql.Composed) -> None:
    with psycopg.connect(settings.pg_dsn_for("postgres"), autocommit=True) as conn:
        conn.execute(statement)


def _drop(settings: Settings, name: str) -> None:
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    _admin(settings, drop)


@contextmanager
def bench_database(
    settings: Settings,
    *,
    users: int,
    pool_size_max: int,
    name: str = BENCH_DATABASE,
    history: History | None = None,
) -> Iterator[BenchDatabase]:
    """Create, migrate and seed the benchmark database with ``users`` users; drop it after.

    With ``history``, past users and orders are loaded after the seed (bench/orders_history.py).
    """
    if users < 1:
        raise ValueError(f"the benchmark needs at least one user, got {users}")
    _drop(settings, name)
    _admin(settings, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        served = served_settings(settings, name, pool_size_max=pool_size_max)
        apply_migrations(served.pg_dsn)
        user_ids = asyncio.run(_seed(served, users))
        if history is not None:
            load_history(
                served.pg_dsn,
                history,
                currency=served.currency,
                symbol=BENCH_SYMBOL,
                topic=served.topic_orders,
            )
        with psycopg.connect(served.pg_dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        tokens = [issue_access_token(served, uid, two_factor=True) for uid in user_ids]
        yield BenchDatabase(name, served, tuple(map(BenchUser, user_ids, tokens)))
    finally:
        _drop(settings, name)


async def _seed(settings: Settings, users: int) -> list[int]:
    async with await psycopg.AsyncConnection.connect(settings.pg_dsn) as conn:
        await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))
        user_ids = [await _make_user(conn, settings) for _ in range(users)]
    if user_ids != list(range(user_ids[0], user_ids[0] + users)):
        # pgbench draws user ids from a range: a gap would send it to a user with no wallet.
        raise BenchError(f"benchmark user ids are not contiguous: {user_ids[:5]}...")
    log.info("seeded %d users (ids %d..%d)", users, user_ids[0], user_ids[-1])
    return user_ids


async def funded_user(conn: AsyncConn, settings: Settings) -> int:
    """A new user with its ledger accounts and USER_CASH deposited; returns its id."""
    cursor = await conn.execute(
        "INSERT INTO users (email, password_hash) VALUES (%s, 'not-a-login') RETURNING id",
        (f"bench-{uuid.uuid4().hex[:12]}@example.com",),
    )
    row = await cursor.fetchone()
    if row is None:
        raise BenchError("inserting a benchmark user returned no id")
    user_id = int(row[0])
    await open_user_accounts(conn, user_id, settings.currency)
    await post(
        conn,
        TxnKind.DEPOSIT,
        deposit_entries(user_id, USER_CASH),
        currency=settings.currency,
        external_ref=f"bench-deposit-{uuid.uuid4().hex}",
    )
    return user_id


async def _make_user(conn: AsyncConn, settings: Settings) -> int:
    """A funded user with verified 2FA and KYC (placeholder ciphertext)."""
    user_id = await funded_user(conn, settings)
    await conn.execute(
        "INSERT INTO user_totp (user_id, secret_ciphertext, secret_nonce, key_id,"
        " is_verified, verified_at) VALUES (%s, 'x', %s, 'bench', true, now())",
        (user_id, _NONCE),
    )
    await conn.execute(
        "INSERT INTO kyc_records (user_id, status, key_id, legal_name_ciphertext,"
        " legal_name_nonce, date_of_birth_ciphertext, date_of_birth_nonce,"
        " national_id_ciphertext, national_id_nonce, address_ciphertext, address_nonce,"
        " reviewed_at) VALUES (%s, 'VERIFIED', 'bench', 'x', %s, 'x', %s, 'x', %s, 'x', %s, now())",
        (user_id, _NONCE, _NONCE, _NONCE, _NONCE),
    )
    return user_id


def invariant_violations(dsn: str) -> dict[str, int]:
    """How many rows each invariant query returns (all zero when the data is sound)."""
    with psycopg.connect(dsn) as conn:
        return {name: len(conn.execute(q).fetchall()) for name, q in load_invariants().items()}


def server_command(settings: Settings, workers: int) -> list[str]:
    """``python -m api``, or with several workers uvicorn's own command line for the same app."""
    if workers < 1:
        raise ValueError(f"the API needs at least one worker, got {workers}")
    if workers == 1:
        return [sys.executable, "-m", "api"]
    return [
        *(sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory"),
        *("--workers", str(workers), "--host", settings.api_host, "--port", str(settings.api_port)),
        *(() if settings.api_access_log else ("--no-access-log",)),
    ]


@contextmanager
def api_server(settings: Settings, log_path: Path, workers: int = 1) -> Iterator[str]:
    """Run the API (``workers`` uvicorn processes) with ``settings``; yield its base URL.

    The workers share their rate-limit counters in the stack's Redis (api/security/ratelimit.py):
    the benchmark sets its limits out of reach, so only the cost of counting is measured.
    """
    with api_server_process(settings, log_path, workers):
        yield f"http://{settings.api_host}:{settings.api_port}"


@contextmanager
def api_server_process(
    settings: Settings, log_path: Path, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the API with ``settings`` until it answers; yield its (parent) process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env |= settings_env(settings)
    url = f"http://{settings.api_host}:{settings.api_port}"
    with log_path.open("w", encoding="utf-8") as server_log:
        process = subprocess.Popen(
            server_command(settings, workers),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(process, url, settings.startup_timeout_s, log_path)
            log.info("API server pid %d serving %s", process.pid, url)
            yield process
        finally:
            _stop(process, settings.shutdown_timeout_s, server_log)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, timeout_s: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the API server exited {process.returncode}: {_tail(log_path)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == httpx.codes.OK:
                return
        except httpx.HTTPError:
            pass
        time.sleep(SERVER_POLL_INTERVAL_S)
    raise BenchError(f"the API server did not answer in {timeout_s} s: {_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes], timeout_s: float, server_log: IO[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("API server pid %d did not stop in %.0f s; killed", process.pid, timeout_s)
        process.kill()
        process.wait()
    server_log.flush()


def _tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-SERVER_LOG_TAIL_CHARS:]
