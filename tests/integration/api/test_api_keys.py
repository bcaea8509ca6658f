"""API keys over real HTTP: shown once, authenticate as their owner, revoked at once, owned."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.integration.api.conftest import MakeUser

if TYPE_CHECKING:
    from tests.integration.api.conftest import TestUser

pytestmark = pytest.mark.integration


async def _create_key(
    client: httpx.AsyncClient, owner: TestUser, name: str = "bot"
) -> dict[str, object]:
    response = await client.post("/v1/api-keys", json={"name": name}, headers=owner.headers)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_a_key_authenticates_as_its_owner_until_revoked(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user()
    created = await _create_key(client, owner)
    key_header = {"X-API-Key": str(created["key"])}

    me = await client.get("/v1/auth/me", headers=key_header)
    revoked = await client.delete(f"/v1/api-keys/{created['id']}", headers=owner.headers)
    after = await client.get("/v1/auth/me", headers=key_header)

    assert me.status_code == 200
    assert me.json()["user_id"] == owner.id
    assert revoked.status_code == 204
    assert after.status_code == 401


async def test_listing_shows_keys_without_their_secret(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user()
    created = await _create_key(client, owner, name="reporting")

    listed = await client.get("/v1/api-keys", headers=owner.headers)

    assert listed.status_code == 200
    assert [(k["id"], k["name"], k["prefix"]) for k in listed.json()] == [
        (created["id"], "reporting", created["prefix"])
    ]
    assert str(created["key"]) not in listed.text
    assert str(created["key"]).startswith(f"bk_{created['prefix']}_")


async def test_another_users_key_cannot_be_revoked_or_listed(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner, other = await make_user(), await make_user()
    created = await _create_key(client, owner)

    delete = await client.delete(f"/v1/api-keys/{created['id']}", headers=other.headers)
    listed = await client.get("/v1/api-keys", headers=other.headers)
    still_works = await client.get("/v1/auth/me", headers={"X-API-Key": str(created["key"])})

    assert delete.status_code == 404
    assert listed.json() == []
    assert still_works.status_code == 200


async def test_an_api_key_cannot_mint_more_keys(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user()
    created = await _create_key(client, owner)

    response = await client.post(
        "/v1/api-keys", json={"name": "child"}, headers={"X-API-Key": str(created["key"])}
    )

    assert response.status_code == 403


async def test_an_unknown_key_is_unauthenticated(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/me", headers={"X-API-Key": "bk_000000000000_nope"})

    assert response.status_code == 401
