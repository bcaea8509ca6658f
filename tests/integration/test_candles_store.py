"""The candles' database side on real PostgreSQL: batched merges, cursors, SQL rollups."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from polars.testing import assert_frame_equal

from core.contracts import TICKS, Tick
from core.db import AsyncConn
from streams.candle_builder import CandleBuilder, PartitionCursor, Reject, apply_partition
from streams.candle_store import existing_symbols, lock_cursors, save_cursors, upsert_candles
from streams.tick_input import decode_values
from tests.integration.tick_agents_support import (
    NS_PER_S,
    SYMBOLS,
    T0_NS,
    WIDTHS_S,
    database_candles,
    database_candles_at_once,
    expected_candles,
    generate_stream,
    seed_symbols,
)

# The same answers on TimescaleDB and on plain PostgreSQL.
pytestmark = [pytest.mark.integration, pytest.mark.both_backends]

TOPIC = "md.ticks"
GRACE_NS = 2 * NS_PER_S


async def apply(conn: AsyncConn, messages: list[tuple[int, int, bytes]]) -> list[Reject]:
    """What the agent does with one batch of (partition, offset, value), minus Kafka."""
    batch = decode_values(TOPIC, [(p, o, None, v) for p, o, v in messages])
    known = await existing_symbols(conn, sorted(batch.symbols))
    cursors = await lock_cursors(conn, TOPIC, list(batch.by_partition))
    builder = CandleBuilder()
    rejects: list[Reject] = []
    for partition, items in batch.by_partition.items():
        cursors[partition] = apply_partition(
            partition, items, cursors[partition], GRACE_NS, known, builder, rejects
        )
    await upsert_candles(conn, builder.candles())
    await save_cursors(conn, TOPIC, cursors)
    await conn.commit()
    return rejects


def tick(symbol: str, price: str, ts_ns: int, seq: int, size: int = 1) -> bytes:
    return TICKS.encode(
        Tick(symbol=symbol, price=Decimal(price), size=size, ts_event_ns=ts_ns, seq=seq)
    )


async def test_batches_merge_into_one_candle_in_any_order(db_dsn: str) -> None:
    seed_symbols(db_dsn)
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        # Two batches of one bucket; the second holds the real open (earlier ts) and the high.
        await apply(conn, [(0, 0, tick("ACME", "100", T0_NS + 500, 2, 3))])
        await apply(
            conn,
            [
                (0, 1, tick("ACME", "99", T0_NS + 100, 1, 4)),
                (0, 2, tick("ACME", "105", T0_NS + 700, 3)),
            ],
        )
        rows = await (
            await conn.execute(
                "SELECT bucket_width, open, high, low, close, volume, trade_count, open_seq,"
                " close_seq FROM candles WHERE symbol = 'ACME' ORDER BY bucket_width"
            )
        ).fetchall()
    # The stored 1 m and 1 d candles of that bucket merge the same way.
    assert rows == [
        (width, Decimal(99), Decimal(105), Decimal(99), Decimal(105), 8, 3, 1, 3)
        for width in (timedelta(seconds=1), timedelta(minutes=1), timedelta(days=1))
    ]


async def test_a_replayed_batch_is_not_counted_twice(db_dsn: str) -> None:
    seed_symbols(db_dsn)
    batch = [(p, o, tick("ACME", "100", T0_NS + o, o)) for p in (0, 1) for o in range(5)]
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await apply(conn, batch)
        await apply(conn, [*batch[3:], (1, 5, tick("ACME", "101", T0_NS + 5, 5))])
        counts = await (
            await conn.execute(
                "SELECT sum(trade_count) FROM candles GROUP BY bucket_width ORDER BY bucket_width"
            )
        ).fetchall()
        cursors = await lock_cursors(conn, TOPIC, [0, 1, 2])
    assert counts == [(11,), (11,), (11,)]  # 1 s, 1 m, 1 d
    assert cursors == {
        0: PartitionCursor(4, T0_NS + 4),
        1: PartitionCursor(5, T0_NS + 5),
        2: PartitionCursor(-1, 0),
    }


async def test_rollups_match_polars_at_every_width(db_dsn: str) -> None:
    seed_symbols(db_dsn)
    stream = generate_stream(20_000, seed=3, late_beyond_grace=10)
    rng = random.Random(3)
    partition_of = {s.encode(): rng.randrange(3) for s in SYMBOLS}
    offsets = [0, 0, 0]
    numbered = []
    for key, value in stream.messages:
        p = partition_of[key] if key is not None else 0
        numbered.append((p, offsets[p], value))
        offsets[p] += 1
    rejects: list[Reject] = []
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        for start in range(0, len(numbered), 1_500):
            rejects += await apply(conn, numbered[start : start + 1_500])
    assert len(rejects) == len(stream.late)
    for width, width_s in WIDTHS_S.items():
        assert_frame_equal(
            database_candles(db_dsn, width), expected_candles(stream.counted, width_s)
        )
        # Every symbol in one call: the same candles, by symbol then bucket start.
        assert_frame_equal(
            database_candles_at_once(db_dsn, width), expected_candles(stream.counted, width_s)
        )
    # Recomputing the stored rollups from the 1 s rows (migration 0017's backfill) changes nothing.
    with psycopg.connect(db_dsn) as sync:
        sync.execute("SELECT candles_rebuild_rollups('2000-01-01', '2100-01-01')")
    for width, width_s in WIDTHS_S.items():
        assert_frame_equal(
            database_candles(db_dsn, width), expected_candles(stream.counted, width_s)
        )


def test_the_range_is_half_open_on_bucket_starts(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO instruments (symbol) VALUES ('ACME')")
        conn.execute(
            "INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close,"
            " volume, trade_count) SELECT 'ACME', '1 second', t, 10, 10, 10, 10, 1, 1"
            " FROM generate_series(timestamptz '2024-09-16 10:00:00+00',"
            " '2024-09-16 10:14:59+00', interval '1 second') AS t"
        )
        conn.execute("SELECT candles_rebuild_rollups('2024-09-16', '2024-09-17')")
        rows = conn.execute(
            "SELECT bucket_start, trade_count FROM candles_between('ACME', '5 minutes',"
            " '2024-09-16 10:00:01+00', '2024-09-16 10:10:00+00')"
        ).fetchall()
        assert [(r[0].minute, r[1]) for r in rows] == [
            (5, 300)
        ]  # 10:00 starts before, 10:10 is the end
        rows = conn.execute(
            "SELECT count(*) FROM candles_between('ACME', '1 second', '2024-09-16 10:00:00+00',"
            " '2024-09-16 10:00:10+00')"
        ).fetchall()
        assert rows == [(10,)]


def test_an_unknown_width_is_refused(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn, pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT * FROM candles_between('ACME', '2 minutes', now(), now())")
