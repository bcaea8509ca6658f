"""Record a reconciliation run and its breaks in PostgreSQL (sql/migrations/0006)."""

from __future__ import annotations

import json
from datetime import date, datetime

import psycopg

from pipelines.compare import Comparison

_EVIDENCE = (
    *("ex_symbol", "ex_side", "ex_qty", "ex_price", "ex_line", "ex_exec_time"),
    *("in_symbol", "in_side", "in_qty", "in_price", "in_user_id"),
)

# A missing internal fill is safe to heal when the broker knows its order (ClOrdID = order id)
# with the same symbol and side, and the fill still fits in the order's quantity: the settle
# agent can then settle it exactly as if the report had arrived on time.
_MARK_SAFE = (
    "UPDATE reconciliation_breaks b SET is_safe_to_heal = true FROM orders o"
    " WHERE b.run_id = %s AND b.kind = 'MISSING_INTERNAL'"
    " AND b.cl_ord_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
    " AND o.id = b.cl_ord_id::uuid AND o.symbol = b.details->>'ex_symbol'"
    " AND o.side = b.details->>'ex_side'"
    " AND o.cum_qty + (b.details->>'ex_qty')::bigint <= o.quantity"
)


def start_run(conn: psycopg.Connection[tuple[object, ...]], day: date) -> int:
    """Open a RUNNING run for ``day``; return its id (committed, so a failure stays visible)."""
    row = conn.execute(
        "INSERT INTO reconciliation_runs (trading_day) VALUES (%s) RETURNING id", (day,)
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(str(row[0]))


def record_breaks(
    conn: psycopg.Connection[tuple[object, ...]],
    run_id: int,
    comparison: Comparison,
    exchange_rows: int,
    internal_rows: int,
) -> int:
    """Insert every break of the run, mark the safe ones, close the run; return the safe count."""
    with conn.transaction():
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY reconciliation_breaks (run_id, kind, exec_id, cl_ord_id, details,"
                " cash_impact, position_impact) FROM STDIN"
            ) as copy,
        ):
            for row in comparison.breaks.iter_rows(named=True):
                details = {key: _json(row[key]) for key in _EVIDENCE if row[key] is not None}
                copy.write_row(
                    (
                        run_id,
                        row["kind"],
                        row["exec_id"],
                        row["cl_ord_id"],
                        json.dumps(details),
                        row["cash_impact"],
                        row["position_impact"],
                    )
                )
        safe = conn.execute(_MARK_SAFE, (run_id,)).rowcount
        conn.execute(
            "UPDATE reconciliation_runs SET status = 'SUCCEEDED', finished_at = now(),"
            " exchange_trade_count = %s, internal_fill_count = %s, matched_count = %s,"
            " break_count = %s WHERE id = %s",
            (exchange_rows, internal_rows, comparison.matched, comparison.breaks.height, run_id),
        )
    return safe


def fail_run(conn: psycopg.Connection[tuple[object, ...]], run_id: int, error: str) -> None:
    """Close a run as FAILED with the reason."""
    conn.rollback()
    conn.execute(
        "UPDATE reconciliation_runs SET status = 'FAILED', finished_at = now(), error = %s"
        " WHERE id = %s AND status = 'RUNNING'",
        (error, run_id),
    )
    conn.commit()


def set_report_path(conn: psycopg.Connection[tuple[object, ...]], run_id: int, path: str) -> None:
    """Remember where the run's summary was written."""
    conn.execute("UPDATE reconciliation_runs SET report_path = %s WHERE id = %s", (path, run_id))
    conn.commit()


def _json(value: object) -> object:
    # Decimals as strings: JSON numbers would go through float.
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, int | str) else str(value)
