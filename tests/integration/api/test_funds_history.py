"""The wallet and the ledger history: owner-scoped, keyset-paginated, bounded page sizes."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from core.ledger import AccountKind, TxnKind, post, user
from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.test_funds_support import assert_invariants_hold, deposit_in_ledger

if TYPE_CHECKING:
    from tests.integration.api.conftest import TestUser

pytestmark = pytest.mark.integration

DEPOSITS = 23
PAGE = 5


async def _walk(
    client: httpx.AsyncClient, who: TestUser, path: str, limit: int
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following next_cursor to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(1000):  # a bound: a cursor loop would otherwise never end
        params: dict[str, str | int] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=params, headers=who.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


async def test_the_wallet_shows_balance_locked_and_available(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user(cash=Decimal("100"))
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        # Lock 30 as a pending withdrawal would (ledger posting, the same code the API uses).
        await post(
            conn,
            TxnKind.WITHDRAWAL_RESERVE,
            [
                user(AccountKind.CASH_AVAILABLE, alice.id, Decimal(-30)),
                user(AccountKind.CASH_LOCKED, alice.id, Decimal(30)),
            ],
            currency=api_settings.currency,
            external_ref="test-reserve",
        )

    response = await client.get("/v1/wallet", headers=alice.headers)

    assert response.json() == {
        "currency": api_settings.currency,
        "balance": "100.0000",
        "locked": "30.0000",
        "available": "70.0000",
    }
    assert_invariants_hold(db_dsn)


async def test_wallet_and_transactions_show_only_the_callers_data(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user(cash=Decimal("100"))
    bob = await make_user(cash=Decimal("7"))

    alice_wallet = (await client.get("/v1/wallet", headers=alice.headers)).json()
    bob_wallet = (await client.get("/v1/wallet", headers=bob.headers)).json()
    alice_history = (await client.get("/v1/transactions", headers=alice.headers)).json()
    bob_history = (await client.get("/v1/transactions", headers=bob.headers)).json()

    assert (alice_wallet["available"], bob_wallet["available"]) == ("100.0000", "7.0000")
    assert [(t["kind"], t["account"], t["amount"]) for t in alice_history["items"]] == [
        ("DEPOSIT", "CASH_AVAILABLE", "100.0000")
    ]
    assert [t["amount"] for t in bob_history["items"]] == ["7.0000"]
    assert {t["txn_id"] for t in alice_history["items"]}.isdisjoint(
        t["txn_id"] for t in bob_history["items"]
    )


async def test_transaction_pages_walk_every_entry_exactly_once_newest_first(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str, api_settings: Settings
) -> None:
    alice = await make_user()
    await make_user(cash=Decimal("1"))  # someone else's entry must not appear
    for i in range(1, DEPOSITS + 1):
        await deposit_in_ledger(db_dsn, alice.id, Decimal(i), api_settings.currency)

    pages = await _walk(client, alice, "/v1/transactions", PAGE)

    ids = [t["id"] for page in pages for t in page]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == DEPOSITS
    assert [Decimal(t["amount"]) for page in pages for t in page] == [
        Decimal(i) for i in range(DEPOSITS, 0, -1)
    ]


async def test_intent_pages_walk_every_intent_exactly_once(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    alice, bob = await make_user(), await make_user()
    with psycopg.connect(db_dsn) as conn:
        for who, count in ((alice, 7), (bob, 2)):
            for i in range(count):
                conn.execute(
                    "INSERT INTO payment_intents (user_id, kind, amount)"
                    " VALUES (%s, 'DEPOSIT', %s)",
                    (who.id, Decimal(i + 1)),
                )
                conn.commit()  # one transaction each: distinct created_at values

    pages = await _walk(client, alice, "/v1/funds/intents", 3)

    ids = [i["intent_id"] for page in pages for i in page]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert len(set(ids)) == 7
    assert [i["amount"] for page in pages for i in page] == [f"{n}.0000" for n in range(7, 0, -1)]


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/funds/intents"])
@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 10_001}, {"cursor": "not-a-cursor"}, {"cursor": "WyJ2MSIsIngiXQ"}],
)
async def test_bad_page_requests_are_refused(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    api_settings: Settings,
    path: str,
    params: dict[str, str | int],
) -> None:
    alice = await make_user(cash=Decimal("1"))

    response = await client.get(path, params=params, headers=alice.headers)

    assert response.status_code == 422, response.text
    assert api_settings.page_limit_max < 10_001


async def test_the_largest_page_is_allowed(
    client: httpx.AsyncClient, make_user: MakeUser, api_settings: Settings
) -> None:
    alice = await make_user(cash=Decimal("1"))

    response = await client.get(
        "/v1/transactions", params={"limit": api_settings.page_limit_max}, headers=alice.headers
    )
    too_big = await client.get(
        "/v1/transactions",
        params={"limit": api_settings.page_limit_max + 1},
        headers=alice.headers,
    )

    assert response.status_code == 200
    assert (too_big.status_code, too_big.json()["error"]) == (422, "invalid_limit")
