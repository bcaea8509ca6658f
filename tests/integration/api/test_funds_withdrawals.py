"""Withdrawals: lock first, pay out on confirmation, unlock on failure; the fraud rule.

The gateway confirms after GATEWAY_DELAY_MS, long enough to see the lock before the payout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest

from core.settings import Settings
from tests.conftest import free_port
from tests.integration.api.conftest import MakeUser
from tests.integration.api.test_funds_support import (
    GatewayProcess,
    age_account,
    assert_invariants_hold,
    funds_settings,
    gateway_process,
    journal_kinds,
    served,
    wait_settled,
    wallet_of,
)

if TYPE_CHECKING:
    from tests.integration.api.conftest import TestUser

pytestmark = pytest.mark.integration

GATEWAY_DELAY_MS = 500
OLD_ACCOUNT_DAYS = 30


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The simulator as its own process for this module."""
    log_file = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with gateway_process(log_file, confirm_delay_ms=GATEWAY_DELAY_MS) as running:
        yield running


@pytest.fixture
def wd_settings(api_settings: Settings, gateway: GatewayProcess) -> Settings:
    """API settings wired to the module's gateway."""
    return funds_settings(api_settings, gateway.port, gateway_confirm_delay_ms=GATEWAY_DELAY_MS)


@pytest.fixture
async def api(wd_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a real API server that talks to the gateway and receives its webhooks."""
    with served(wd_settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield http


async def _old_user(make_user: MakeUser, db_dsn: str, cash: str, **kwargs: object) -> TestUser:
    """A user whose account is old enough for the fraud rule to let withdrawals through."""
    made = await make_user(cash=Decimal(cash), **kwargs)
    age_account(db_dsn, made.id, OLD_ACCOUNT_DAYS)
    return made


async def _withdraw(
    api: httpx.AsyncClient, who: TestUser, amount: str, key: str | None = None
) -> httpx.Response:
    headers = {**who.headers, **({"X-Idempotency-Key": key} if key else {})}
    return await api.post("/v1/funds/withdrawals", json={"amount": amount}, headers=headers)


async def test_a_withdrawal_locks_then_pays_out_on_success(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await _old_user(make_user, db_dsn, "100")

    response = await _withdraw(api, alice, "40")
    locked_meanwhile = await wallet_of(api, alice)
    intent = await wait_settled(api, alice, response.json()["intent_id"])

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PENDING"
    assert locked_meanwhile == (Decimal("60"), Decimal("40"))
    assert intent["status"] == "SUCCEEDED"
    assert await wallet_of(api, alice) == (Decimal("60"), Decimal("0"))
    assert journal_kinds(db_dsn, alice.id) == ["DEPOSIT", "WITHDRAWAL_RESERVE", "WITHDRAWAL"]
    assert_invariants_hold(db_dsn)


async def test_a_failed_payout_unlocks_the_money(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await _old_user(make_user, db_dsn, "100")

    response = await _withdraw(api, alice, "40.13")  # 13 cents: the simulator declines it
    locked_meanwhile = await wallet_of(api, alice)
    intent = await wait_settled(api, alice, response.json()["intent_id"])

    assert locked_meanwhile == (Decimal("59.87"), Decimal("40.13"))
    assert intent["status"] == "FAILED"
    assert await wallet_of(api, alice) == (Decimal("100"), Decimal("0"))
    assert journal_kinds(db_dsn, alice.id) == [
        "DEPOSIT",
        "WITHDRAWAL_RESERVE",
        "WITHDRAWAL_RELEASE",
    ]
    assert_invariants_hold(db_dsn)


async def test_a_withdrawal_beyond_available_cash_is_refused(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await _old_user(make_user, db_dsn, "100")

    response = await _withdraw(api, alice, "100.0001")

    assert response.status_code == 422
    assert response.json()["error"] == "insufficient_funds"
    assert await wallet_of(api, alice) == (Decimal("100"), Decimal("0"))
    listed = await api.get("/v1/funds/intents", headers=alice.headers)
    assert listed.json()["items"] == []
    assert_invariants_hold(db_dsn)


async def test_concurrent_withdrawals_never_overdraw(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await _old_user(make_user, db_dsn, "100")

    responses = await asyncio.gather(*(_withdraw(api, alice, "30") for _ in range(10)))

    assert sorted(r.status_code for r in responses) == [202] * 3 + [422] * 7
    for r in responses:
        if r.status_code == 202:
            await wait_settled(api, alice, r.json()["intent_id"])
    assert await wallet_of(api, alice) == (Decimal("10"), Decimal("0"))
    assert_invariants_hold(db_dsn)


async def test_one_idempotency_key_makes_one_withdrawal(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await _old_user(make_user, db_dsn, "100")

    responses = await asyncio.gather(*(_withdraw(api, alice, "25", key="wd-1") for _ in range(5)))

    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["intent_id"] for r in responses}) == 1
    await wait_settled(api, alice, responses[0].json()["intent_id"])
    assert await wallet_of(api, alice) == (Decimal("75"), Decimal("0"))
    assert_invariants_hold(db_dsn)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"kyc": "PENDING"}, "kyc_required"),
        ({"kyc": "REJECTED"}, "kyc_required"),
        ({"kyc": None}, "kyc_required"),
        ({"two_factor": False}, "two_factor_required"),
    ],
)
async def test_a_withdrawal_needs_kyc_and_two_factor(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, kwargs: dict[str, object], code: str
) -> None:
    bob = await _old_user(make_user, db_dsn, "100", **kwargs)

    response = await _withdraw(api, bob, "10")

    assert (response.status_code, response.json()["error"]) == (403, code)
    assert await wallet_of(api, bob) == (Decimal("100"), Decimal("0"))


async def test_a_new_account_cannot_withdraw_right_after_a_deposit(
    api: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    newcomer = await make_user(cash=Decimal("100"))  # opened and funded just now
    veteran = await _old_user(make_user, db_dsn, "100")  # funded just now, but old

    refused = await _withdraw(api, newcomer, "10")
    allowed = await _withdraw(api, veteran, "10")

    assert refused.status_code == 422
    assert refused.json()["error"] == "fraud_withdrawal_after_deposit"
    assert await wallet_of(api, newcomer) == (Decimal("100"), Decimal("0"))
    assert allowed.status_code == 202
    await wait_settled(api, veteran, allowed.json()["intent_id"])
    assert_invariants_hold(db_dsn)


# (account age in days, cash deposited just now, amount asked) -> (status, error code).
# Funds are checked before the fraud rule: a refusal names the reason the user can act on.
REFUSAL_ORDER_CASES = [
    pytest.param(0, "100", "150", 422, "insufficient_funds", id="new-short-funds"),
    pytest.param(0, "0", "10", 422, "insufficient_funds", id="new-never-funded"),
    pytest.param(0, "100", "10", 422, "fraud_withdrawal_after_deposit", id="new-covered"),
    pytest.param(0, "100", "100", 422, "fraud_withdrawal_after_deposit", id="new-all-cash"),
    pytest.param(OLD_ACCOUNT_DAYS, "100", "150", 422, "insufficient_funds", id="old-short-funds"),
    pytest.param(OLD_ACCOUNT_DAYS, "100", "10", 202, None, id="old-covered"),
]


@pytest.mark.parametrize(("age_days", "cash", "amount", "status", "code"), REFUSAL_ORDER_CASES)
async def test_a_withdrawal_refusal_names_funds_before_the_fraud_rule(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    db_dsn: str,
    age_days: int,
    cash: str,
    amount: str,
    status: int,
    code: str | None,
) -> None:
    who = await make_user(cash=Decimal(cash))
    age_account(db_dsn, who.id, age_days)

    response = await _withdraw(api, who, amount)

    assert response.status_code == status, response.text
    if code is None:
        await wait_settled(api, who, response.json()["intent_id"])
    else:
        assert response.json()["error"] == code
        assert await wallet_of(api, who) == (Decimal(cash), Decimal("0"))
    assert_invariants_hold(db_dsn)


async def test_a_new_account_may_withdraw_once_the_block_has_passed(
    wd_settings: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    block_s = 1
    newcomer = await make_user(cash=Decimal("100"))
    with served(
        wd_settings.model_copy(update={"withdrawal_after_deposit_block_s": block_s})
    ) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            too_soon = await _withdraw(api, newcomer, "10")
            await asyncio.sleep(block_s + 0.2)
            later = await _withdraw(api, newcomer, "10")
            await wait_settled(api, newcomer, later.json()["intent_id"])

    assert too_soon.status_code == 422
    assert later.status_code == 202
    assert_invariants_hold(db_dsn)


async def test_a_withdrawal_the_gateway_never_took_unlocks_at_once(
    wd_settings: Settings, make_user: MakeUser, db_dsn: str
) -> None:
    alice = await _old_user(make_user, db_dsn, "100")
    nowhere = wd_settings.model_copy(
        update={"gateway_port": free_port(), "gateway_request_attempts_max": 2}
    )
    with served(nowhere) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            response = await _withdraw(api, alice, "40")
            wallet = await wallet_of(api, alice)

    assert response.status_code == 202
    assert (response.json()["status"], response.json()["failure_reason"]) == (
        "FAILED",
        "gateway_unavailable",
    )
    assert wallet == (Decimal("100"), Decimal("0"))
    assert journal_kinds(db_dsn, alice.id) == [
        "DEPOSIT",
        "WITHDRAWAL_RESERVE",
        "WITHDRAWAL_RELEASE",
    ]
    assert_invariants_hold(db_dsn)
