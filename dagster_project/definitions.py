"""The one Dagster ``Definitions`` of the project; ``python -m dagster_project`` serves it."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from core.settings import get_settings
from dagster_project.ledger import ledger, ledger_invariants
from dagster_project.recon_automation import (
    nightly_reconciliation,
    reconciliation_job,
    trade_report_sensor,
)
from dagster_project.recon_checks import RECON_CHECKS
from dagster_project.reconciliation import (
    day_candles,
    internal_executions,
    recon_breaks,
    recon_heals,
    recon_report,
    trade_report,
)
from dagster_project.resources import (
    execution_reports_from_settings,
    landing_from_settings,
    market_from_settings,
    postgres_from_settings,
)

_settings = get_settings()

defs = Definitions(
    assets=[
        ledger,
        trade_report,
        internal_executions,
        day_candles,
        recon_breaks,
        recon_report,
        recon_heals,
    ],
    asset_checks=[ledger_invariants, *RECON_CHECKS],
    jobs=[reconciliation_job],
    schedules=[nightly_reconciliation],
    sensors=[trade_report_sensor],
    # One process per run, not one per step: each step process would import Dagster, Polars
    # and Great Expectations again (seconds each on a small host) for a few milliseconds of work.
    executor=in_process_executor,
    resources={
        "postgres": postgres_from_settings(),
        "landing": landing_from_settings(_settings),
        "market": market_from_settings(_settings),
        "execution_reports": execution_reports_from_settings(_settings),
    },
)
