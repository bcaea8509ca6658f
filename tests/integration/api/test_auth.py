"""Sign-up, login and two-factor authentication over real HTTP against a real database."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.integration.api.test_auth_support import (
    PASSWORD,
    bearer,
    code_at,
    enrolled_user,
    login,
    new_email,
    signed_up_token,
    signup,
    wait_clear_of_step_boundary,
    wrong_code,
)

pytestmark = pytest.mark.integration


async def test_signup_creates_the_user_with_an_empty_wallet(
    client: httpx.AsyncClient, db_dsn: str
) -> None:
    email = new_email()

    response = await client.post(
        "/v1/auth/signup", json={"email": "  " + email.upper(), "password": PASSWORD}
    )

    assert response.status_code == 201
    assert response.json()["email"] == email
    with psycopg.connect(db_dsn) as conn:
        wallet = conn.execute(
            "SELECT balance, locked_balance FROM wallets WHERE user_id = %s",
            (response.json()["user_id"],),
        ).fetchone()
        stored = conn.execute(
            "SELECT password_hash FROM users WHERE id = %s", (response.json()["user_id"],)
        ).fetchone()
    assert wallet == (0, 0)
    assert stored is not None and stored[0].startswith("$argon2id$")
    assert PASSWORD not in stored[0]


async def test_an_email_signs_up_once_whatever_its_case(client: httpx.AsyncClient) -> None:
    email = new_email()
    await signup(client, email)

    again = await client.post(
        "/v1/auth/signup", json={"email": email.upper(), "password": PASSWORD}
    )

    assert again.status_code == 409
    assert again.json()["error"] == "email_taken"


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short1!", "at least 12 characters"), ("aaaaaaaaaaaaaaaa", "different characters")],
)
async def test_a_weak_password_is_refused_with_the_reason(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    response = await client.post(
        "/v1/auth/signup", json={"email": new_email(), "password": password}
    )

    assert response.status_code == 422
    assert response.json()["error"] == "weak_password"
    assert reason in response.json()["detail"]


async def test_the_whole_flow_ends_with_a_login_that_needs_the_totp_code(
    client: httpx.AsyncClient,
) -> None:
    wait_clear_of_step_boundary()
    email = new_email()
    token = await signed_up_token(client, email)
    me = await client.get("/v1/auth/me", headers=bearer(token))
    assert me.json()["two_factor_enrolled"] is False
    assert me.json()["two_factor"] is False

    enrolled = await client.post("/v1/auth/2fa/enroll", headers=bearer(token))
    secret = enrolled.json()["secret"]
    assert enrolled.json()["otpauth_uri"].startswith("otpauth://totp/")
    verified = await client.post(
        "/v1/auth/2fa/verify", json={"code": code_at(secret)}, headers=bearer(token)
    )
    assert verified.status_code == 200
    assert verified.json()["two_factor"] is True
    me = await client.get("/v1/auth/me", headers=bearer(verified.json()["access_token"]))
    assert me.json()["two_factor_enrolled"] is True
    assert me.json()["two_factor"] is True

    without_code = await login(client, email)
    assert without_code.status_code == 401
    assert without_code.json()["error"] == "totp_required"
    wrong = await login(client, email, totp_code=wrong_code(secret))
    assert wrong.status_code == 401
    with_code = await login(client, email, totp_code=code_at(secret, 1))
    assert with_code.status_code == 200
    assert with_code.json()["two_factor"] is True
    assert with_code.json()["token_type"] == "bearer"
    assert with_code.json()["expires_in_s"] > 0


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    email = new_email()
    await signup(client, email)

    wrong_password = await login(client, email, password=PASSWORD + "x")
    unknown_email = await login(client, new_email())

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()


async def test_a_totp_code_is_accepted_once(client: httpx.AsyncClient) -> None:
    wait_clear_of_step_boundary()
    email = new_email()
    secret, _ = await enrolled_user(client, email)

    # The code that verified the enrollment is spent.
    replay_of_verification = await login(client, email, totp_code=code_at(secret))
    first = await login(client, email, totp_code=code_at(secret, 1))
    replay = await login(client, email, totp_code=code_at(secret, 1))

    assert replay_of_verification.status_code == 401
    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_totp"


async def test_enrollment_is_replaced_until_verified_then_refused(
    client: httpx.AsyncClient,
) -> None:
    wait_clear_of_step_boundary()
    token = await signed_up_token(client, new_email())
    first = (await client.post("/v1/auth/2fa/enroll", headers=bearer(token))).json()["secret"]
    second = (await client.post("/v1/auth/2fa/enroll", headers=bearer(token))).json()["secret"]
    assert first != second

    stale = await client.post(
        "/v1/auth/2fa/verify", json={"code": code_at(first)}, headers=bearer(token)
    )
    fresh = await client.post(
        "/v1/auth/2fa/verify", json={"code": code_at(second)}, headers=bearer(token)
    )
    again = await client.post("/v1/auth/2fa/enroll", headers=bearer(token))

    assert stale.status_code == 401 or code_at(first) == code_at(second)
    assert fresh.status_code == 200
    assert again.status_code == 409


async def test_the_totp_secret_is_stored_encrypted(client: httpx.AsyncClient, db_dsn: str) -> None:
    token = await signed_up_token(client, new_email())
    secret = (await client.post("/v1/auth/2fa/enroll", headers=bearer(token))).json()["secret"]

    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT * FROM user_totp").fetchone()
    assert row is not None
    raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    assert secret.encode() not in raw


async def test_a_token_without_two_factor_can_read_but_not_create_api_keys(
    client: httpx.AsyncClient,
) -> None:
    token = await signed_up_token(client, new_email())

    read = await client.get("/v1/api-keys", headers=bearer(token))
    create = await client.post("/v1/api-keys", json={"name": "bot"}, headers=bearer(token))

    assert read.status_code == 200
    assert create.status_code == 403
    assert create.json()["error"] == "two_factor_required"


async def test_requests_without_credentials_are_unauthenticated(
    client: httpx.AsyncClient,
) -> None:
    no_token = await client.get("/v1/auth/me")
    forged = await client.get("/v1/auth/me", headers=bearer("not.a.token"))

    assert no_token.status_code == forged.status_code == 401
