"""The app's shared wiring: authentication dependencies and the error mapping, over real HTTP."""

from __future__ import annotations

import gc

import httpx
import pytest

from core.settings import Settings
from tests.integration.api.conftest import MakeUser, serve

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


@pytest.mark.parametrize("own_process", [True, False], ids=["python -m api", "embedded"])
def test_an_api_in_its_own_process_tunes_the_collector_and_an_embedded_one_leaves_it(
    api_settings: Settings, restored_gc: None, own_process: bool
) -> None:
    gc.unfreeze()
    settings = api_settings.model_copy(update={"api_gc_gen0_threshold": 23_456})
    before = gc.get_threshold()

    for _ in serve(settings, own_process=own_process):
        tuned = (gc.get_threshold()[0], gc.get_freeze_count() > 0)

    assert tuned == ((23_456, True) if own_process else (before[0], False))
