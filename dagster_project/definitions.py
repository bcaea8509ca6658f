"""The one Dagster ``Definitions`` of the project; ``python -m dagster_project`` serves it."""

from __future__ import annotations

from dagster import Definitions

from dagster_project.ledger import ledger, ledger_invariants
from dagster_project.resources import postgres_from_settings

defs = Definitions(
    assets=[ledger],
    asset_checks=[ledger_invariants],
    resources={"postgres": postgres_from_settings()},
)
