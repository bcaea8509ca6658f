"""Deposits through the real gateway simulator process, and the signed, idempotent webhook."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.test_funds_support import (
    GatewayProcess,
    assert_invariants_hold,
    funds_settings,
    gateway_process,
    journal_count,
    served,
    sign,
    wait_settled,
    wallet_of,
)

if TYPE_CHECKING:
    from tests.integration.api.conftest import TestUser

pytestmark = pytest.mark.integration

REPLAYS = 10


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The simulator as its own process for this module."""
    log_file = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with gateway_process(log_file, confirm_delay_ms=50) as running:
        yield running


@pytest.fixture
async def api(api_settings: Settings, gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a real API server that talks to the gateway and receives its webhooks."""
    with served(funds_settings(api_settings, gateway.port)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield http


async def _deposit(
    api: httpx.AsyncClient, who: TestUser, amount: str, key: str | None = None
) -> httpx.Response:
    headers = {**who.headers, **({"X-Idempotency-Key": key} if key else {})}
    return await api.post("/v1/funds/deposits", json={"amount": amount}, headers=headers)


def _deposits_of(db_dsn: str, payment_id: str) -> int:
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM journal_txns WHERE kind = 'DEPOSIT' AND external_ref = %s",
            (payment_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_deposit_through_the_gateway_is_credited_once(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user()

    response = await _deposit(api, alice, "100.00")

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PENDING"
    intent = await wait_settled(api, alice, response.json()["intent_id"])
    assert intent["status"] == "SUCCEEDED"
    assert await wallet_of(api, alice) == (Decimal("100"), Decimal("0"))
    assert _deposits_of(db_dsn, intent["payment_id"]) == 1
    assert_invariants_hold(db_dsn)


async def test_the_same_webhook_replayed_ten_times_credits_once(
    api: httpx.AsyncClient, gateway: GatewayProcess, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user()
    created = await _deposit(api, alice, "75.50")
    intent = await wait_settled(api, alice, created.json()["intent_id"])
    payment_id = intent["payment_id"]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as gw:
        body = (await gw.get(f"/v1/payments/{payment_id}")).json()["webhook_body"].encode()
        # The gateway itself resends its signed webhook, concurrently...
        redeliveries = await asyncio.gather(
            *(gw.post(f"/v1/payments/{payment_id}/redeliver") for _ in range(REPLAYS))
        )
    # ...and a captured copy is replayed as-is, concurrently too.
    replays = await asyncio.gather(
        *(
            api.post("/v1/funds/webhooks/gateway", content=body, headers=sign(body))
            for _ in range(REPLAYS)
        )
    )

    assert [r.json() for r in redeliveries] == [{"delivered": True, "status_code": 200}] * REPLAYS
    assert [(r.status_code, r.json()) for r in replays] == [(200, {"status": "duplicate"})] * 10
    assert await wallet_of(api, alice) == (Decimal("75.5"), Decimal("0"))
    assert _deposits_of(db_dsn, payment_id) == 1
    assert_invariants_hold(db_dsn)


async def test_a_declined_deposit_fails_and_moves_no_money(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user()
    before = journal_count(db_dsn)

    created = await _deposit(api, alice, "20.13")  # 13 cents: the simulator declines it
    intent = await wait_settled(api, alice, created.json()["intent_id"])

    assert (intent["status"], intent["failure_reason"]) == ("FAILED", "declined_by_test_amount")
    assert await wallet_of(api, alice) == (Decimal("0"), Decimal("0"))
    assert journal_count(db_dsn) == before
    assert_invariants_hold(db_dsn)


async def test_one_idempotency_key_makes_one_deposit(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user()

    responses = await asyncio.gather(*(_deposit(api, alice, "10", key="dep-1") for _ in range(5)))
    other_amount = await _deposit(api, alice, "11", key="dep-1")

    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["intent_id"] for r in responses}) == 1
    assert other_amount.status_code == 422
    assert other_amount.json()["error"] == "idempotency_key_reused"
    await wait_settled(api, alice, responses[0].json()["intent_id"])
    assert await wallet_of(api, alice) == (Decimal("10"), Decimal("0"))
    assert_invariants_hold(db_dsn)


async def test_a_deposit_needs_two_factor(api: httpx.AsyncClient, make_user: MakeUser) -> None:
    bob = await make_user(two_factor=False)

    response = await _deposit(api, bob, "10")

    assert response.status_code == 403
    assert response.json()["error"] == "two_factor_required"


async def test_a_deposit_while_the_gateway_is_down_fails_at_once(
    api_settings: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    from tests.conftest import free_port

    alice = await make_user()
    settings = funds_settings(api_settings, free_port(), gateway_request_attempts_max=2)
    with served(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            response = await _deposit(http, alice, "10")

    assert response.status_code == 202
    assert (response.json()["status"], response.json()["failure_reason"]) == (
        "FAILED",
        "gateway_unavailable",
    )
    assert_invariants_hold(db_dsn)


async def _pending_deposit(db_dsn: str, who: TestUser, amount: str) -> tuple[str, str]:
    """A PENDING deposit intent the gateway has taken (payment id known): (intent_id, pay id)."""
    payment_id = f"pay_{uuid.uuid4().hex}"
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        cursor = await conn.execute(
            "INSERT INTO payment_intents (user_id, kind, amount, external_ref)"
            " VALUES (%s, 'DEPOSIT', %s, %s) RETURNING id",
            (who.id, Decimal(amount), payment_id),
        )
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0]), payment_id


def _event(intent_id: str, payment_id: str, amount: str) -> bytes:
    return json.dumps(
        {
            "event_id": f"evt_{uuid.uuid4().hex}",
            "payment_id": payment_id,
            "intent_id": intent_id,
            "kind": "DEPOSIT",
            "status": "SUCCEEDED",
            "amount": amount,
            "currency": Settings().currency,  # the wallet's: the market profile's
        }
    ).encode()


async def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user()
    intent_id, payment_id = await _pending_deposit(db_dsn, alice, "500")
    body = _event(intent_id, payment_id, "500")
    tampered = body.replace(b'"500"', b'"5000"')
    journal_before = journal_count(db_dsn)
    forged = {
        "wrong secret": sign(body, secret="not-the-gateway-secret"),
        "no signature": {"Content-Type": "application/json"},
        "stale timestamp": sign(body, at=int(time.time()) - 3600),
        "garbage signature": {**sign(body), "X-Gateway-Signature": "v1=00"},
    }

    answers = {
        name: await api.post("/v1/funds/webhooks/gateway", content=body, headers=headers)
        for name, headers in forged.items()
    }
    answers["tampered body"] = await api.post(
        "/v1/funds/webhooks/gateway", content=tampered, headers=sign(body)
    )

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 401)
    assert {r.json()["error"] for r in answers.values()} == {"bad_webhook_signature"}
    assert await wallet_of(api, alice) == (Decimal("0"), Decimal("0"))
    assert journal_count(db_dsn) == journal_before
    intent = (await api.get(f"/v1/funds/intents/{intent_id}", headers=alice.headers)).json()
    assert intent["status"] == "PENDING"
    assert_invariants_hold(db_dsn)
    # The same body, signed with the right secret, is accepted: the refusals were the signature.
    genuine = await api.post("/v1/funds/webhooks/gateway", content=body, headers=sign(body))
    assert (genuine.status_code, genuine.json()) == (200, {"status": "applied"})
    assert await wallet_of(api, alice) == (Decimal("500"), Decimal("0"))
    assert_invariants_hold(db_dsn)


async def test_a_signed_webhook_that_disagrees_with_its_intent_changes_nothing(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await make_user()
    intent_id, payment_id = await _pending_deposit(db_dsn, alice, "500")
    wrong_amount = _event(intent_id, payment_id, "5000")
    wrong_payment = _event(intent_id, "pay_someone_else", "500")
    unknown_intent = _event(str(uuid.uuid4()), payment_id, "500")

    answers = [
        await api.post("/v1/funds/webhooks/gateway", content=body, headers=sign(body))
        for body in (wrong_amount, wrong_payment, unknown_intent)
    ]

    assert [r.status_code for r in answers] == [422, 409, 404]
    assert await wallet_of(api, alice) == (Decimal("0"), Decimal("0"))
    assert_invariants_hold(db_dsn)


async def test_intents_of_another_user_are_not_found(
    api: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice, mallory = await make_user(), await make_user()
    created = await _deposit(api, alice, "10")
    intent_id = created.json()["intent_id"]

    theirs = await api.get(f"/v1/funds/intents/{intent_id}", headers=mallory.headers)
    listed = await api.get("/v1/funds/intents", headers=mallory.headers)

    assert theirs.status_code == 404
    assert listed.json() == {"items": [], "next_cursor": None}
    await wait_settled(api, alice, intent_id)


async def test_a_deposit_above_the_largest_payment_is_refused(
    api: httpx.AsyncClient, make_user: MakeUser, api_settings: Settings
) -> None:
    alice = await make_user()

    response = await _deposit(api, alice, str(api_settings.payment_amount_max + Decimal("0.01")))

    assert (response.status_code, response.json()["error"]) == (422, "invalid_amount")
    listed = await api.get("/v1/funds/intents", headers=alice.headers)
    assert listed.json()["items"] == []
