"""Shared helpers of the auth, API key, KYC and rate limit tests: users made through the API.

No tests live here; the test modules import what they need.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pyotp

from core.settings import Settings
from tests.conftest import free_port
from tests.integration.api.conftest import serve

PASSWORD = "a long enough passphrase 42"
TOTP_STEP_S = 30
# A sequence of codes must not straddle a step boundary, or "the next step" shifts under it.
STEP_MARGIN_S = 3.0


def new_email() -> str:
    """A unique email address."""
    return f"{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


async def signup(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> int:
    """Sign up through the API; the new user's id."""
    response = await client.post("/v1/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return int(response.json()["user_id"])


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, totp_code: str | None = None
) -> httpx.Response:
    """POST /v1/auth/login."""
    body: dict[str, Any] = {"email": email, "password": password}
    if totp_code is not None:
        body["totp_code"] = totp_code
    return await client.post("/v1/auth/login", json=body)


async def signed_up_token(client: httpx.AsyncClient, email: str) -> str:
    """Sign up and log in; an access token without 2FA."""
    await signup(client, email)
    response = await login(client, email)
    assert response.status_code == 200, response.text
    assert response.json()["two_factor"] is False
    return str(response.json()["access_token"])


def code_at(secret: str, steps_from_now: int = 0) -> str:
    """The TOTP code of the step ``steps_from_now`` away from the current one."""
    return pyotp.TOTP(secret).at(time.time() + steps_from_now * TOTP_STEP_S)


def wrong_code(secret: str) -> str:
    """A well-formed code that no step near now accepts."""
    near = {code_at(secret, steps) for steps in range(-2, 3)}
    return next(
        c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in near
    )


def wait_clear_of_step_boundary() -> None:
    """Sleep past the next step boundary if it is within STEP_MARGIN_S (at most that long)."""
    left_s = TOTP_STEP_S - time.time() % TOTP_STEP_S
    if left_s < STEP_MARGIN_S:
        time.sleep(left_s + 0.1)


async def enrolled_user(client: httpx.AsyncClient, email: str) -> tuple[str, str]:
    """Sign up, log in, enroll and verify TOTP (with the current step); (secret, 2FA token)."""
    token = await signed_up_token(client, email)
    enrolled = await client.post("/v1/auth/2fa/enroll", headers=bearer(token))
    assert enrolled.status_code == 200, enrolled.text
    secret = str(enrolled.json()["secret"])
    verified = await client.post(
        "/v1/auth/2fa/verify", json={"code": code_at(secret)}, headers=bearer(token)
    )
    assert verified.status_code == 200, verified.text
    return secret, str(verified.json()["access_token"])


@contextmanager
def served(settings: Settings, **changes: object) -> Iterator[str]:
    """A server of its own with changed settings (e.g. small rate limits); its URL."""
    changed = settings.model_copy(update={**changes, "api_port": free_port()})
    # serve() is a generator: closing it stops the server.
    urls = serve(changed)
    try:
        yield next(urls)
    finally:
        urls.close()
