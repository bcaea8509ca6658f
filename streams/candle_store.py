"""The candles agent's database side: one transaction per batch, a few statements per batch.

Exactly-once effects: ``candles_applied_offsets`` holds, per (topic, partition), the last offset
whose tick is counted in ``candles`` and the partition's stream time. A batch locks its partitions'
rows, skips what they say was applied, upserts the candles and moves the rows forward in the same
transaction. A replayed tick (a restart, a rebalance, a second worker still holding the partition)
therefore counts once, and the row lock serializes two workers that briefly share a partition.

Each batch writes its 1 s candles and their 1 m and 1 d rollups in the same statement: the merge
is associative, so each tick, counted once into its 1 s candle, is counted once into its 1 m and
1 d candles too (a late tick's correction included).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.db import AsyncConn
from streams.candle_builder import STORED_WIDTHS, Candle, PartitionCursor, rollup

_ENSURE_CURSORS = """
INSERT INTO candles_applied_offsets (topic, partition, last_offset, stream_time_ns)
SELECT %s, p, -1, 0 FROM unnest(%s::int[]) AS p
ON CONFLICT (topic, partition) DO NOTHING
"""

_LOCK_CURSORS = """
SELECT partition, last_offset, stream_time_ns FROM candles_applied_offsets
WHERE topic = %s AND partition = ANY(%s::int[])
ORDER BY partition
FOR UPDATE
"""

_SAVE_CURSORS = """
UPDATE candles_applied_offsets AS o
SET last_offset = v.last_offset, stream_time_ns = v.stream_time_ns, updated_at = now()
FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS v (partition, last_offset, stream_time_ns)
WHERE o.topic = %s AND o.partition = v.partition
"""

# The same rule as candle_builder.merge: a row comparison on (ts, seq) picks open and close.
_UPSERT_CANDLES = """
INSERT INTO candles AS c (
    symbol, bucket_width, bucket_start, open, high, low, close, volume, trade_count,
    open_ts_ns, open_seq, close_ts_ns, close_seq
)
SELECT v.symbol, v.width, to_timestamp(v.bucket_s), v.open, v.high, v.low, v.close,
       v.volume, v.trade_count, v.open_ts_ns, v.open_seq, v.close_ts_ns, v.close_seq
FROM unnest(
    %s::text[], %s::interval[], %s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[],
    %s::numeric[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
    %s::bigint[]
) AS v (symbol, width, bucket_s, open, high, low, close, volume, trade_count,
        open_ts_ns, open_seq, close_ts_ns, close_seq)
ON CONFLICT (symbol, bucket_width, bucket_start) DO UPDATE SET
    open = CASE WHEN (EXCLUDED.open_ts_ns, EXCLUDED.open_seq) < (c.open_ts_ns, c.open_seq)
                THEN EXCLUDED.open ELSE c.open END,
    open_ts_ns = CASE WHEN (EXCLUDED.open_ts_ns, EXCLUDED.open_seq) < (c.open_ts_ns, c.open_seq)
                      THEN EXCLUDED.open_ts_ns ELSE c.open_ts_ns END,
    open_seq = CASE WHEN (EXCLUDED.open_ts_ns, EXCLUDED.open_seq) < (c.open_ts_ns, c.open_seq)
                    THEN EXCLUDED.open_seq ELSE c.open_seq END,
    close = CASE WHEN (EXCLUDED.close_ts_ns, EXCLUDED.close_seq) > (c.close_ts_ns, c.close_seq)
                 THEN EXCLUDED.close ELSE c.close END,
    close_ts_ns = CASE WHEN (EXCLUDED.close_ts_ns, EXCLUDED.close_seq)
                            > (c.close_ts_ns, c.close_seq)
                       THEN EXCLUDED.close_ts_ns ELSE c.close_ts_ns END,
    close_seq = CASE WHEN (EXCLUDED.close_ts_ns, EXCLUDED.close_seq) > (c.close_ts_ns, c.close_seq)
                     THEN EXCLUDED.close_seq ELSE c.close_seq END,
    high = greatest(c.high, EXCLUDED.high),
    low = least(c.low, EXCLUDED.low),
    volume = c.volume + EXCLUDED.volume,
    trade_count = c.trade_count + EXCLUDED.trade_count,
    updated_at = now()
"""


async def lock_cursors(
    conn: AsyncConn, topic: str, partitions: Sequence[int]
) -> dict[int, PartitionCursor]:
    """Lock and read the cursors of ``partitions`` (created at -1 if new), in partition order."""
    ordered = sorted(partitions)
    async with conn.cursor() as cur:
        await cur.execute(_ENSURE_CURSORS, (topic, ordered))
        await cur.execute(_LOCK_CURSORS, (topic, ordered))
        rows = await cur.fetchall()
    return {int(p): PartitionCursor(int(off), int(st)) for p, off, st in rows}


async def save_cursors(conn: AsyncConn, topic: str, cursors: dict[int, PartitionCursor]) -> None:
    """Store the cursors (rows locked by ``lock_cursors`` in this transaction)."""
    parts = sorted(cursors)
    await conn.execute(
        _SAVE_CURSORS,
        (
            parts,
            [cursors[p].last_offset for p in parts],
            [cursors[p].stream_time_ns for p in parts],
            topic,
        ),
    )


async def upsert_candles(conn: AsyncConn, candles: Sequence[Candle]) -> None:
    """Merge 1 s ``candles`` (unique by symbol and bucket) and their 1 m and 1 d rollups."""
    if not candles:
        return
    # Sorted like the primary key (symbol, width, bucket) so writers lock rows in one order.
    rows = sorted(
        (
            (c.symbol, width_s, c.bucket_s, c)
            for width_s in STORED_WIDTHS
            for c in (candles if width_s == 1 else rollup(candles, width_s))
        ),
        key=lambda r: r[:3],
    )
    await conn.execute(
        _UPSERT_CANDLES,
        (
            [symbol for symbol, _, _, _ in rows],
            [STORED_WIDTHS[width_s] for _, width_s, _, _ in rows],
            [bucket_s for _, _, bucket_s, _ in rows],
            [c.open for *_, c in rows],
            [c.high for *_, c in rows],
            [c.low for *_, c in rows],
            [c.close for *_, c in rows],
            [c.volume for *_, c in rows],
            [c.trade_count for *_, c in rows],
            [c.open_ts_ns for *_, c in rows],
            [c.open_seq for *_, c in rows],
            [c.close_ts_ns for *_, c in rows],
            [c.close_seq for *_, c in rows],
        ),
    )


async def existing_symbols(conn: AsyncConn, symbols: Sequence[str]) -> set[str]:
    """The symbols of ``symbols`` that are instruments."""
    cur = await conn.execute(
        "SELECT symbol FROM instruments WHERE symbol = ANY(%s::text[])", (list(symbols),)
    )
    return {str(row[0]) for row in await cur.fetchall()}
