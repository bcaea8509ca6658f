"""The day's one-minute candles per symbol, rolled up from the 1 s candles the agent writes."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import psycopg

from pipelines.schema import MONEY, TIME

CANDLE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "minute": TIME,
    "open": MONEY,
    "high": MONEY,
    "low": MONEY,
    "close": MONEY,
}
MINUTE_S = 60

_QUERY = (
    "SELECT symbol, date_bin('1 minute', bucket_start, timestamptz '2000-01-01 00:00:00+00'),"
    " (array_agg(open ORDER BY bucket_start))[1], max(high), min(low),"
    " (array_agg(close ORDER BY bucket_start DESC))[1]"
    " FROM candles WHERE bucket_width = interval '1 second'"
    " AND bucket_start >= %s AND bucket_start < %s GROUP BY 1, 2 ORDER BY 1, 2"
)


def load_minute_candles(
    conn: psycopg.Connection[tuple[object, ...]], start: datetime, end: datetime
) -> pl.DataFrame:
    """One-minute candles of every symbol with a minute starting in [start, end)."""
    with conn.cursor() as cursor:
        cursor.execute(_QUERY, (start, end))
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=CANDLE_SCHEMA, orient="row")


def price_ranges(candles: pl.DataFrame) -> pl.DataFrame:
    """Per symbol, the day's low and high."""
    return candles.group_by("symbol").agg(
        pl.col("low").min().alias("day_low"), pl.col("high").max().alias("day_high")
    )


def minute_gaps(
    candles: pl.DataFrame, session_start: datetime, session_end: datetime
) -> pl.DataFrame:
    """Per symbol and candle within the session, the seconds since the previous candle.

    A symbol's first candle of the session is measured from the session start, so a late
    first candle is a gap too; more than 60 s means at least one minute without a candle.
    """
    start = pl.lit(session_start).cast(TIME)
    active = candles.filter(
        (pl.col("minute") >= start) & (pl.col("minute") < pl.lit(session_end).cast(TIME))
    ).sort("symbol", "minute")
    previous = pl.col("minute").shift(1).over("symbol")
    return active.select(
        "symbol",
        "minute",
        (pl.col("minute") - pl.coalesce(previous, start - pl.duration(seconds=MINUTE_S)))
        .dt.total_seconds()
        .alias("since_previous_s"),
    )
