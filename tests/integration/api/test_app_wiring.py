"""The app's shared wiring: authentication dependencies and the error mapping, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api.conftest import MakeUser

pytestmark = pytest.mark.integration


async def test_the_real_server_answers_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).json() == {"postgres": "ok", "kafka": "ok"}


async def test_a_user_made_by_the_factory_has_cash_in_the_ledger(
    make_user: MakeUser, db_dsn: str
) -> None:
    from decimal import Decimal

    import psycopg

    made = await make_user(cash=Decimal("250.5"))

    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT balance, locked_balance FROM wallets WHERE user_id = %s", (made.id,)
        ).fetchone()
    assert row == (Decimal("250.5000"), Decimal("0.0000"))
