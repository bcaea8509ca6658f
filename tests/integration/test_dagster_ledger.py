"""The Dagster ledger asset and its blocking invariant checks, against the real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from dagster import materialize

from dagster_project import definitions
from dagster_project.ledger import INVARIANTS, ledger, ledger_invariants
from dagster_project.resources import PostgresResource

pytestmark = pytest.mark.integration


def test_definitions_load_with_the_ledger_asset_and_one_check_per_invariant() -> None:
    repo = definitions.defs.get_repository_def()

    assert "ledger" in {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    checks = {k.name for k in repo.asset_graph.asset_check_keys if k.asset_key == ledger.key}
    assert checks == set(INVARIANTS)
    assert len(checks) == 5


def test_checks_pass_on_a_consistent_ledger(db_dsn: str) -> None:
    result = materialize(
        [ledger, ledger_invariants], resources={"postgres": PostgresResource(dsn=db_dsn)}
    )

    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == set(INVARIANTS)
    assert all(e.passed for e in evaluations)


def test_a_broken_invariant_fails_its_check_and_names_the_row(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, password_hash) VALUES ('a@example.com', 'x') RETURNING id"
        ).fetchone()
        assert user_id is not None
        # A wallet claiming money that no journal entry put there.
        conn.execute(
            "INSERT INTO wallets (user_id, currency, balance, locked_balance)"
            " VALUES (%s, 'USD', 100, 0)",
            user_id,
        )

    result = materialize(
        [ledger, ledger_invariants],
        resources={"postgres": PostgresResource(dsn=db_dsn)},
        raise_on_error=False,
    )

    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {"wallet_matches_ledger"}
    rows = failed["wallet_matches_ledger"].metadata["rows"].value
    assert str(user_id[0]) in str(rows)
