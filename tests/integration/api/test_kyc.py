"""KYC over real HTTP: PII encrypted at rest, the simulated provider's rules, ownership."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from typing import Any

import httpx
import psycopg
import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser

pytestmark = pytest.mark.integration

REVIEW_TIMEOUT_S = 15.0
POLL_INTERVAL_S = 0.1
ADULT_DOB = "1990-04-01"
VALID_ID = Settings().profile.national_id_example
# The same id as a careless person types it: lower case, spaced out.
TYPED_ID = f" {' '.join(VALID_ID.lower())} "


def _years_ago(years: int) -> str:
    """The 1st of January ``years`` years ago: that person is ``years`` old today."""
    return date(datetime.now(UTC).date().year - years, 1, 1).isoformat()


def _details(**changes: str) -> dict[str, str]:
    return {
        "full_name": "Alice Example",
        "date_of_birth": ADULT_DOB,
        "national_id": VALID_ID,
        "address": "1 Market Street",
        **changes,
    }


async def _reviewed(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Poll GET /v1/kyc until the record is no longer PENDING (bounded)."""
    deadline = time.monotonic() + REVIEW_TIMEOUT_S
    while time.monotonic() < deadline:
        response = await client.get("/v1/kyc", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "PENDING":
            return body
        await asyncio.sleep(POLL_INTERVAL_S)
    raise AssertionError("the KYC record was not reviewed in time")


async def test_the_raw_row_holds_no_plaintext_pii(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    person = await make_user(kyc=None, two_factor=False)
    details = _details(full_name="Priya Raman", address="42 Residency Road, Bengaluru")

    response = await client.post("/v1/kyc", json=details, headers=person.headers)

    assert response.status_code == 202
    assert response.json() == {"status": "PENDING"}
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT * FROM kyc_records WHERE user_id = %s", (person.id,)).fetchone()
        as_text = conn.execute(
            "SELECT r::text FROM kyc_records r WHERE user_id = %s", (person.id,)
        ).fetchone()
    assert row is not None and as_text is not None
    raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    raw += as_text[0].encode()
    for value in ("Priya", "Raman", "Residency Road", VALID_ID, ADULT_DOB, "19900401"):
        assert value.encode() not in raw
        assert value.encode().hex().encode() not in raw


@pytest.mark.parametrize(
    ("changes", "status", "reason_start"),
    [
        ({}, "VERIFIED", None),
        ({"national_id": TYPED_ID}, "VERIFIED", None),
        ({"date_of_birth": _years_ago(17)}, "REJECTED", "age"),
        ({"national_id": "12345"}, "REJECTED", "national_id"),
        ({"full_name": "  hans   GRUBER "}, "REJECTED", "sanctions"),
    ],
    ids=["adult", "id-normalised", "minor", "bad-id", "sanctioned"],
)
async def test_the_provider_decides_by_the_rules(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    changes: dict[str, str],
    status: str,
    reason_start: str | None,
) -> None:
    person = await make_user(kyc=None, two_factor=False)
    submitted = await client.post("/v1/kyc", json=_details(**changes), headers=person.headers)
    assert submitted.status_code == 202

    reviewed = await _reviewed(client, person.headers)

    assert reviewed["status"] == status
    assert reviewed["reviewed_at"] is not None
    if reason_start is None:
        assert reviewed["rejection_reason"] is None
    else:
        assert reviewed["rejection_reason"].startswith(reason_start)


async def test_status_shows_a_masked_name_and_verified_status_reaches_the_profile(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user(kyc=None)
    await client.post("/v1/kyc", json=_details(), headers=person.headers)

    reviewed = await _reviewed(client, person.headers)
    me = await client.get("/v1/auth/me", headers=person.headers)

    assert reviewed["full_name_masked"] == "A**** E******"
    assert me.json()["kyc_status"] == "VERIFIED"


async def test_only_a_rejected_submission_can_be_replaced(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user(kyc=None, two_factor=False)
    await client.post("/v1/kyc", json=_details(national_id="bad"), headers=person.headers)
    while_pending = await client.post("/v1/kyc", json=_details(), headers=person.headers)
    assert (await _reviewed(client, person.headers))["status"] == "REJECTED"

    resubmitted = await client.post("/v1/kyc", json=_details(), headers=person.headers)
    after_review = await _reviewed(client, person.headers)
    once_verified = await client.post("/v1/kyc", json=_details(), headers=person.headers)

    assert while_pending.status_code == 409
    assert resubmitted.status_code == 202
    assert after_review["status"] == "VERIFIED"
    assert after_review["rejection_reason"] is None
    assert once_verified.status_code == 409


async def test_a_user_sees_only_their_own_record(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person, other = await make_user(kyc=None), await make_user(kyc=None)
    await client.post("/v1/kyc", json=_details(), headers=person.headers)

    response = await client.get("/v1/kyc", headers=other.headers)

    assert response.status_code == 404


async def test_a_birth_date_in_the_future_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user(kyc=None)
    tomorrow = date.fromordinal(datetime.now(UTC).date().toordinal() + 1).isoformat()

    response = await client.post(
        "/v1/kyc", json=_details(date_of_birth=tomorrow), headers=person.headers
    )

    assert response.status_code == 422


async def test_a_record_the_provider_cannot_read_does_not_stop_the_others(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    # The factory writes placeholder bytes that no configured key decrypts.
    unreadable = await make_user(kyc="PENDING")
    person = await make_user(kyc=None)
    await client.post("/v1/kyc", json=_details(), headers=person.headers)

    reviewed = await _reviewed(client, person.headers)
    stuck = await client.get("/v1/kyc", headers=unreadable.headers)

    assert reviewed["status"] == "VERIFIED"
    assert stuck.status_code == 200
    assert stuck.json()["status"] == "PENDING"
    assert stuck.json()["full_name_masked"] is None
