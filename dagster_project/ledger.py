"""The ledger as a Dagster asset, guarded by sql/invariants.sql as blocking asset checks.

A broken invariant fails its check, names the violating rows in the check's metadata and, being
blocking, stops every asset downstream of the ledger in the same run.
"""

# No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation at
# definition time and refuses a string.
from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset_check,
)

from dagster_project.resources import PostgresResource
from infra.migrate import load_invariants

INVARIANTS = load_invariants()
ROWS_SHOWN_MAX = 20


@asset(group_name="ledger", compute_kind="postgres")
def ledger(context: AssetExecutionContext, postgres: PostgresResource) -> MaterializeResult[None]:
    """Row counts of the double-entry ledger, observed as of this run."""
    with postgres.connect() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM journal_txns), (SELECT count(*) FROM journal_entries),"
            " (SELECT count(*) FROM wallets)"
        ).fetchone()
    assert row is not None
    txns, entries, wallets = (int(str(v)) for v in row)
    context.log.info("ledger: %d transactions, %d entries, %d wallets", txns, entries, wallets)
    return MaterializeResult(
        metadata={"journal_txns": txns, "journal_entries": entries, "wallets": wallets}
    )


@multi_asset_check(
    specs=[AssetCheckSpec(name, asset=ledger, blocking=True) for name in INVARIANTS],
    description="Each ledger invariant of ARCHITECTURE.md section 4; failing rows are listed.",
)
def ledger_invariants(postgres: PostgresResource) -> Iterator[AssetCheckResult]:
    """Run every invariant query; a check passes when its query returns no rows."""
    with postgres.connect() as conn:
        for name, query in INVARIANTS.items():
            cursor = conn.execute(query)
            columns = [c.name for c in cursor.description or []]
            rows = cursor.fetchall()
            shown = [dict(zip(columns, map(str, r), strict=True)) for r in rows[:ROWS_SHOWN_MAX]]
            yield AssetCheckResult(
                asset_key=ledger.key,
                check_name=name,
                passed=not rows,
                metadata={
                    "violations": len(rows),
                    "rows": MetadataValue.json(shown),
                },
            )
