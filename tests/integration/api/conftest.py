"""API fixtures: the real app served by uvicorn over HTTP on a fresh database, and users.

Tests talk HTTP to a real server (so concurrency is real), and set up state either through the
API itself or, for preconditions outside the test's subject, with the same service code.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from psycopg.conninfo import conninfo_to_dict

from api.main import create_app
from api.security.tokens import issue_access_token
from core.ledger import TxnKind, deposit_entries, open_user_accounts, post
from core.settings import Settings
from tests.conftest import free_port

SERVER_START_TIMEOUT_S = 10.0


@pytest.fixture
def api_settings(running_stack: Settings, db_dsn: str) -> Settings:
    """Settings pointing at this test's database, the market always open, generous limits."""
    return running_stack.model_copy(
        update={
            "pg_database": conninfo_to_dict(db_dsn)["dbname"],
            # The test's cluster: the session's, or the plain PostgreSQL (both_backends).
            "pg_port": int(str(conninfo_to_dict(db_dsn)["port"])),
            "market_always_open": True,
            "api_port": free_port(),
            "pg_pool_size_max": 20,
            # The test host is shared with other test sessions: a stall there must not count as
            # Redis lost and turn logins away (tests/unit/test_ratelimit_fail_policy.py covers
            # the timeout itself).
            "redis_timeout_s": 2.0,
        }
    )


def serve(
    settings: Settings, *, keep_alive_s: int = 5, own_process: bool = False
) -> Generator[str, None, None]:
    """Serve the app with uvicorn in a thread until the generator is closed; yield its URL."""
    config = uvicorn.Config(
        create_app(settings, own_process=own_process),
        host="127.0.0.1",
        port=settings.api_port,
        log_level="warning",
        timeout_keep_alive=keep_alive_s,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def api_url(api_settings: Settings) -> Iterator[str]:
    """The base URL of a real API server for this test."""
    yield from serve(api_settings)


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the test's API server."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        yield http


@dataclass(frozen=True)
class TestUser:
    """A user made for a test, with a ready access token."""

    id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for this user."""
        return {"Authorization": f"Bearer {self.token}"}


MakeUser = Callable[..., Coroutine[Any, Any, TestUser]]


@pytest.fixture
def make_user(api_settings: Settings, db_dsn: str) -> MakeUser:
    """A factory of users: 2FA verified and KYC verified by default, with optional cash."""

    async def make(
        *, cash: Decimal = Decimal(0), two_factor: bool = True, kyc: str | None = "VERIFIED"
    ) -> TestUser:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
            cursor = await conn.execute(
                "INSERT INTO users (email, password_hash) VALUES (%s, 'not-a-login') RETURNING id",
                (email,),
            )
            row = await cursor.fetchone()
            assert row is not None
            user_id = int(row[0])
            await open_user_accounts(conn, user_id, api_settings.currency)
            nonce = b"\0" * 12
            if two_factor:
                await conn.execute(
                    "INSERT INTO user_totp (user_id, secret_ciphertext, secret_nonce, key_id,"
                    " is_verified, verified_at) VALUES (%s, 'x', %s, 'test', true, now())",
                    (user_id, nonce),
                )
            if kyc is not None:
                await conn.execute(
                    "INSERT INTO kyc_records (user_id, status, rejection_reason, key_id,"
                    " legal_name_ciphertext, legal_name_nonce, date_of_birth_ciphertext,"
                    " date_of_birth_nonce, national_id_ciphertext, national_id_nonce,"
                    " address_ciphertext, address_nonce, reviewed_at)"
                    " VALUES (%s, %s, %s, 'test', 'x', %s, 'x', %s, 'x', %s, 'x', %s,"
                    " CASE WHEN %s = 'PENDING' THEN NULL ELSE now() END)",
                    (
                        user_id,
                        kyc,
                        "test" if kyc == "REJECTED" else None,
                        nonce,
                        nonce,
                        nonce,
                        nonce,
                        kyc,
                    ),
                )
            if cash > 0:
                await post(
                    conn,
                    TxnKind.DEPOSIT,
                    deposit_entries(user_id, cash),
                    currency=api_settings.currency,
                    external_ref=f"test-deposit-{uuid.uuid4().hex}",
                )
        token = issue_access_token(api_settings, user_id, two_factor=two_factor)
        return TestUser(id=user_id, email=email, token=token)

    return make
