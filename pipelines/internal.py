"""Load the broker's own fills of one trading day from PostgreSQL into a Polars frame."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import polars as pl
import psycopg

from pipelines.schema import INTERNAL_SCHEMA
from pipelines.trading_day import day_bounds

# Settled fills only: an execution recorded but not settled is not on the books yet, so the
# exchange's fill is still "missing internally" and may be healed.
_QUERY = (
    "SELECT x.exec_id, x.order_id::text AS cl_ord_id, x.symbol, x.side, x.last_qty AS qty,"
    " x.last_px AS price, x.executed_at AS exec_time, o.user_id"
    " FROM executions x JOIN orders o ON o.id = x.order_id"
    " WHERE x.executed_at >= %s AND x.executed_at < %s AND x.settled_at IS NOT NULL"
)


def load_internal_executions(
    conn: psycopg.Connection[tuple[object, ...]], day: date, tz: ZoneInfo
) -> pl.DataFrame:
    """Every settled execution whose exchange time falls on ``day`` (exchange time zone)."""
    start, end = day_bounds(day, tz)
    with conn.cursor() as cursor:
        cursor.execute(_QUERY, (start, end))
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=INTERNAL_SCHEMA, orient="row")
