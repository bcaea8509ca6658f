"""Shared helpers of the funds tests: the gateway simulator as a real process, served APIs, checks.

No tests live here; the funds test modules import what they need.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
from pydantic import SecretStr

from api.payments import signing
from core.ledger import TxnKind, deposit_entries, post
from core.settings import PROJECT_ROOT, Settings
from infra.migrate import load_invariants
from tests.conftest import free_port
from tests.integration.api.conftest import serve

if TYPE_CHECKING:
    from tests.integration.api.conftest import TestUser

GATEWAY_START_TIMEOUT_S = 15.0
GATEWAY_STOP_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 15.0
POLL_INTERVAL_S = 0.05
GATEWAY_SECRET = "test-gateway-secret-" + uuid.uuid4().hex


@dataclass(frozen=True)
class GatewayProcess:
    """A running simulator: its port and base URL."""

    port: int
    url: str


@contextmanager
def gateway_process(log_file: Path, *, confirm_delay_ms: int) -> Iterator[GatewayProcess]:
    """Run ``python -m api.payments`` as a child process until the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "BROKER_MODE": "test",
        "BROKER_GATEWAY_HOST": "127.0.0.1",
        "BROKER_GATEWAY_PORT": str(port),
        "BROKER_GATEWAY_WEBHOOK_SECRET": GATEWAY_SECRET,
        "BROKER_GATEWAY_CONFIRM_DELAY_MS": str(confirm_delay_ms),
        "BROKER_GATEWAY_WEBHOOK_BACKOFF_INITIAL_MS": "20",
        "BROKER_GATEWAY_WEBHOOK_BACKOFF_MAX_MS": "200",
        "BROKER_GATEWAY_WEBHOOK_ATTEMPTS_MAX": "5",
    }
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.payments"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log_file)
        yield GatewayProcess(port, url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=GATEWAY_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=GATEWAY_STOP_TIMEOUT_S)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log_file: Path) -> None:
    deadline = time.monotonic() + GATEWAY_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited: {log_file.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"the gateway did not start: {log_file.read_text()[-2000:]}")


def funds_settings(api_settings: Settings, gateway_port: int, **update: Any) -> Settings:
    """The test's API settings, wired to the gateway (which calls this API back)."""
    return api_settings.model_copy(
        update={
            "gateway_port": gateway_port,
            "api_public_url": f"http://127.0.0.1:{api_settings.api_port}",
            "gateway_confirm_delay_ms": 50,
            "gateway_webhook_secret": SecretStr(GATEWAY_SECRET),
            **update,
        }
    )


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """Serve the API with these settings for the block; yield its URL."""
    # serve() is a generator function; closing it stops the server.
    server = serve(settings)
    try:
        yield next(server)
    finally:
        server.close()


def sign(body: bytes, *, secret: str = GATEWAY_SECRET, at: int | None = None) -> dict[str, str]:
    """Headers of a webhook delivery of ``body``, signed as the gateway does."""
    return signing.signed_headers(secret, int(time.time()) if at is None else at, body)


async def wait_settled(client: httpx.AsyncClient, who: TestUser, intent_id: str) -> dict[str, Any]:
    """Poll an intent until it leaves PENDING; return it."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/funds/intents/{intent_id}", headers=who.headers)
        assert response.status_code == 200, response.text
        intent: dict[str, Any] = response.json()
        if intent["status"] != "PENDING":
            return intent
        await asyncio.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"intent {intent_id} still PENDING after {SETTLE_TIMEOUT_S}s")


async def wallet_of(client: httpx.AsyncClient, who: TestUser) -> tuple[Decimal, Decimal]:
    """(available, locked) of a user, read through the API."""
    response = await client.get("/v1/wallet", headers=who.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return Decimal(body["available"]), Decimal(body["locked"])


def journal_kinds(db_dsn: str, user_id: int) -> list[str]:
    """The kinds of the journal transactions touching a user's accounts, oldest first."""
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT t.kind FROM journal_txns t WHERE EXISTS (SELECT 1 FROM journal_entries e"
            " JOIN ledger_accounts a ON a.id = e.account_id"
            " WHERE e.txn_id = t.id AND a.user_id = %s) ORDER BY t.created_at, t.id",
            (user_id,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def journal_count(db_dsn: str) -> int:
    """How many journal transactions exist."""
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM journal_txns").fetchone()
    assert row is not None
    return int(row[0])


def assert_invariants_hold(db_dsn: str) -> None:
    """Every invariant query of sql/invariants.sql returns no rows."""
    with psycopg.connect(db_dsn) as conn:
        for name, query in load_invariants().items():
            rows = conn.execute(query).fetchall()
            assert rows == [], f"invariant {name} broken: {rows}"


def age_account(db_dsn: str, user_id: int, days: int) -> None:
    """Pretend the account was opened ``days`` ago (the fraud rule looks at its age)."""
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "UPDATE users SET created_at = now() - make_interval(days => %s) WHERE id = %s",
            (days, user_id),
        )


async def deposit_in_ledger(db_dsn: str, user_id: int, amount: Decimal, currency: str) -> None:
    """Credit a user as a settled deposit would (a precondition, not the subject)."""
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await post(
            conn,
            TxnKind.DEPOSIT,
            deposit_entries(user_id, amount),
            currency=currency,
            external_ref=f"test-{uuid.uuid4().hex}",
        )
