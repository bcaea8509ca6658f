"""Sessions over real HTTP: refresh rotation and reuse, logout everywhere, passwords, recovery
codes; revocations seen by a second API process of the same database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import psycopg
import pytest

from core.settings import Settings
from tests.integration.api.test_auth_support import (
    PASSWORD,
    bearer,
    code_at,
    enrolled_user,
    login,
    new_email,
    served,
    signup,
    wait_clear_of_step_boundary,
)

pytestmark = pytest.mark.integration

# How long another process may take to hear of a revocation (a NOTIFY, then its event loop).
REVOCATION_SEEN_WITHIN_S = 1.0


async def _session(client: httpx.AsyncClient) -> dict[str, str]:
    email = new_email()
    await signup(client, email)
    response = await login(client, email)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] and body["refresh_expires_in_s"] > 0
    return {"email": email, **body}


async def _me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/v1/auth/me", headers=bearer(token))).status_code


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_a_refresh_token_works_once_and_its_successor_keeps_the_session(
    client: httpx.AsyncClient,
) -> None:
    session = await _session(client)

    first = await _refresh(client, session["refresh_token"])
    second = await _refresh(client, first.json()["refresh_token"])

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["refresh_token"] != session["refresh_token"]
    assert await _me(client, second.json()["access_token"]) == 200
    assert second.json()["two_factor"] is False  # a refresh keeps the login's 2FA state


async def test_a_reused_refresh_token_ends_the_whole_session(client: httpx.AsyncClient) -> None:
    session = await _session(client)
    stolen = session["refresh_token"]
    legit = (await _refresh(client, stolen)).json()

    reused = await _refresh(client, stolen)  # the thief, or the victim's old copy

    assert reused.status_code == 401
    assert reused.json()["error"] == "refresh_token_reused"
    # Every token of the family is dead: the successor refresh token and the access tokens.
    after = await _refresh(client, legit["refresh_token"])
    assert (after.status_code, after.json()["error"]) == (401, "session_ended")
    assert await _me(client, legit["access_token"]) == 401
    assert await _me(client, session["access_token"]) == 401


@pytest.mark.parametrize(
    "body",
    [{"refresh_token": "never-issued"}, {"refresh_token": ""}, {}],
)
async def test_a_bad_refresh_request_is_a_4xx_in_the_envelope(
    client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post("/v1/auth/refresh", json=body)

    assert response.status_code in (401, 422)
    assert set(response.json()) >= {"error", "detail"}


async def test_logout_ends_this_session_only_and_logout_all_ends_every_one(
    client: httpx.AsyncClient,
) -> None:
    first = await _session(client)
    second = (await login(client, first["email"])).json()
    third = (await login(client, first["email"])).json()

    logout = await client.post("/v1/auth/logout", headers=bearer(first["access_token"]))

    assert logout.status_code == 204
    assert await _me(client, first["access_token"]) == 401
    assert (await _refresh(client, first["refresh_token"])).status_code == 401
    assert await _me(client, second["access_token"]) == 200
    everywhere = await client.post("/v1/auth/logout-all", headers=bearer(second["access_token"]))
    assert everywhere.status_code == 204
    assert await _me(client, second["access_token"]) == 401
    assert await _me(client, third["access_token"]) == 401
    assert (await _refresh(client, third["refresh_token"])).status_code == 401


async def test_a_logout_and_a_reused_refresh_token_are_refused_by_another_api_process(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    logged_out = await _session(client)
    reused = await _session(client)
    with served(api_settings) as other_url:
        async with httpx.AsyncClient(base_url=other_url, timeout=30) as other:
            assert await _me(other, logged_out["access_token"]) == 200
            assert await _me(other, reused["access_token"]) == 200

            await client.post("/v1/auth/logout", headers=bearer(logged_out["access_token"]))
            await _refresh(client, reused["refresh_token"])
            await _refresh(client, reused["refresh_token"])  # reuse: the session ends
            started = time.monotonic()
            while time.monotonic() - started < REVOCATION_SEEN_WITHIN_S * 5:
                codes = {
                    await _me(other, logged_out["access_token"]),
                    await _me(other, reused["access_token"]),
                }
                if codes == {401}:
                    break
                await asyncio.sleep(0.02)
            seen_after_s = time.monotonic() - started
            refused = await _refresh(other, reused["refresh_token"])

    assert codes == {401}
    assert seen_after_s <= REVOCATION_SEEN_WITHIN_S, f"seen after {seen_after_s:.2f} s"
    assert refused.status_code == 401


async def _logout(client: httpx.AsyncClient, session: dict[str, str]) -> list[str]:
    await client.post("/v1/auth/logout", headers=bearer(session["access_token"]))
    return [session["access_token"]]


async def _logout_all(client: httpx.AsyncClient, session: dict[str, str]) -> list[str]:
    other = (await login(client, session["email"])).json()
    await client.post("/v1/auth/logout-all", headers=bearer(session["access_token"]))
    return [session["access_token"], other["access_token"]]


async def _password_change(client: httpx.AsyncClient, session: dict[str, str]) -> list[str]:
    other = (await login(client, session["email"])).json()
    await client.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD + " renewed"},
        headers=bearer(session["access_token"]),
    )
    return [other["access_token"]]


async def _refresh_reuse(client: httpx.AsyncClient, session: dict[str, str]) -> list[str]:
    await _refresh(client, session["refresh_token"])
    await _refresh(client, session["refresh_token"])
    return [session["access_token"]]


@pytest.mark.parametrize(
    "end_sessions",
    [_logout, _logout_all, _password_change, _refresh_reuse],
    ids=["logout", "logout-all", "password-change", "refresh-token-reuse"],
)
async def test_the_process_that_ends_a_session_refuses_its_tokens_without_waiting_for_the_notify(
    client: httpx.AsyncClient,
    db_dsn: str,
    end_sessions: Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[list[str]]],
) -> None:
    session = await _session(client)
    # No NOTIFY at all: only the process's own bookkeeping can refuse the next request.
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE auth_sessions DISABLE TRIGGER auth_sessions_revoked_notify")

    ended = await end_sessions(client, session)

    assert [await _me(client, token) for token in ended] == [401] * len(ended)


async def test_a_password_change_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient,
) -> None:
    session = await _session(client)
    other = (await login(client, session["email"])).json()
    new_password = PASSWORD + " renewed"

    wrong = await client.post(
        "/v1/auth/password",
        json={"current_password": "not it at all, sorry", "new_password": new_password},
        headers=bearer(session["access_token"]),
    )
    changed = await client.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=bearer(session["access_token"]),
    )

    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_credentials")
    assert changed.status_code == 204
    assert await _me(client, session["access_token"]) == 200
    assert await _me(client, other["access_token"]) == 401
    assert (await login(client, session["email"])).status_code == 401
    assert (await login(client, session["email"], new_password)).status_code == 200


async def test_recovery_codes_are_shown_once_hashed_at_rest_and_each_replaces_a_code_once(
    client: httpx.AsyncClient, db_dsn: str
) -> None:
    email = new_email()
    wait_clear_of_step_boundary()
    secret, _ = await enrolled_user(client, email)
    # enrolled_user keeps only the token; verify answered the codes: renew to read a set.
    token = (await login(client, email, totp_code=code_at(secret, 1))).json()["access_token"]
    renewed = await client.post("/v1/auth/2fa/recovery-codes", headers=bearer(token))
    assert renewed.status_code == 200, renewed.text
    codes = renewed.json()["recovery_codes"]
    body = {"email": email, "password": PASSWORD}

    first = await client.post("/v1/auth/login", json=body | {"recovery_code": codes[0].lower()})
    again = await client.post("/v1/auth/login", json=body | {"recovery_code": codes[0]})

    assert first.status_code == 200, first.text
    assert first.json()["two_factor"] is True
    assert (again.status_code, again.json()["error"]) == (401, "invalid_totp")
    with psycopg.connect(db_dsn) as conn:
        stored = conn.execute(
            "SELECT c.code_hash FROM user_recovery_codes c JOIN users u ON u.id = c.user_id"
            " WHERE u.email = %s",
            (email,),
        ).fetchall()
    assert len(stored) == len(codes)
    assert all(codes[0].encode() not in bytes(row[0]) for row in stored)
