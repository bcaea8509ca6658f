"""The settle agent in a real worker process against the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from core.contracts import DEAD_LETTERS, EXECUTION_REPORTS, TICKS, Side, Tick
from core.settings import Settings
from tests.integration.settle_support import (
    Exchange,
    fee,
    holding,
    order_row,
    place_order,
    setup_user,
    violations,
    wallet,
)
from tests.integration.worker_support import (
    allow_connections,
    committed_offset,
    produce,
    read_all,
    running_worker,
    wait_consumed,
    worker_topics,
)

pytestmark = pytest.mark.integration

POISON_COUNT = 100
# The settle agent alone, so the test proves it and nothing else.
AGENT_MODULE = "streams.settle"
OUTAGE_S = 8.0  # longer than a pool connection timeout, so retries happen


def poison(index: int) -> tuple[bytes | None, bytes]:
    """A malformed report: bad bytes, another contract, or a report of an unknown order."""
    if index % 3 == 0:
        return b"junk", b"\xff\xfe not json " + str(index).encode()
    if index % 3 == 1:
        tick = Tick(symbol="ACME", price=Decimal(1), size=1, ts_event_ns=1, seq=index)
        return tick.kafka_key(), TICKS.encode(tick)
    report = Exchange(uuid.uuid4(), "ACME", Side.BUY, 5).fill(5, "10.00")
    return report.kafka_key(), EXECUTION_REPORTS.encode(report)


async def test_worker_settles_reports_once_and_dead_letters_poison(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "10000")
        oid = await place_order(conn, settings, uid, Side.BUY, "ACME", 100, "50.00")
    ex = Exchange(oid, "ACME", Side.BUY, 100)
    script = [ex.ack(), ex.fill(30, "49.95"), ex.fill(20, "50.00"), ex.pending_cancel()]
    script.append(ex.cancel())
    good = [(r.kafka_key(), EXECUTION_REPORTS.encode(r)) for r in script]
    bad = [poison(i) for i in range(POISON_COUNT)]
    # Each good report lands between runs of poison.
    mixed = [*bad[:20], good[0], *bad[20:40], good[1], *bad[40:60], good[2], *bad[60:80]]
    mixed += [good[3], *bad[80:], good[4]]

    with (
        worker_topics(settings, new_topic) as made,
        running_worker(settings, db_dsn, made, tmp_path, AGENT_MODULE) as worker,
    ):
        topic = made.execution_reports
        produce(settings, topic, mixed)
        wait_consumed(settings, worker, topic, len(mixed))
        async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
            settled = (await wallet(conn, uid), await holding(conn, uid, "ACME"))
            order = await order_row(conn, oid)

        produce(settings, topic, good + good[::-1])  # every report replayed, twice
        wait_consumed(settings, worker, topic, len(mixed) + 2 * len(good))
        async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
            assert (await wallet(conn, uid), await holding(conn, uid, "ACME")) == settled
            assert await order_row(conn, oid) == order
            assert await violations(conn) == {}
        letters = [DEAD_LETTERS.decode(v) for v in read_all(settings, settings.dlq_topic(topic))]

    cost = Decimal("49.95") * 30 + Decimal("50.00") * 20
    fees = fee(Decimal("49.95") * 30, 3) + fee(Decimal("50.00") * 20, 3)
    assert settled == (
        (Decimal(10000) - cost - fees, Decimal(0)),
        (50, 0, Decimal("49.97"), Decimal(0)),
    )
    assert (order["status"], order["cum_qty"], order["reserved_amount"]) == ("CANCELED", 50, 0)
    assert len(letters) == POISON_COUNT
    assert Counter(x.error_type for x in letters) == {"ContractError": 67, "SettlementError": 33}
    assert {x.consumer for x in letters} == {"settle"}
    assert sorted(x.value or b"" for x in letters) == sorted(v for _, v in bad)


async def test_a_database_outage_delays_settlement_and_sends_nothing_to_the_dlq(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> None:
    settings = running_stack
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        uid = await setup_user(conn, "1000")
        oid = await place_order(conn, settings, uid, Side.BUY, "AXION", 10, "86.40")
    ex = Exchange(oid, "AXION", Side.BUY, 10)
    reports = [
        (r.kafka_key(), EXECUTION_REPORTS.encode(r)) for r in (ex.ack(), ex.fill(10, "86.40"))
    ]

    with worker_topics(settings, new_topic) as made:
        topic = made.execution_reports
        allow_connections(settings, db_dsn, False)
        try:
            with running_worker(settings, db_dsn, made, tmp_path, AGENT_MODULE) as worker:
                produce(settings, topic, reports)
                await asyncio.sleep(OUTAGE_S)
                assert read_all(settings, settings.dlq_topic(topic), wait_s=1) == []
                assert committed_offset(settings, worker.group_of(topic), topic) == 0
                allow_connections(settings, db_dsn, True)
                wait_consumed(settings, worker, topic, len(reports))
        finally:
            allow_connections(settings, db_dsn, True)
        assert read_all(settings, settings.dlq_topic(topic), wait_s=1) == []

    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        order = await order_row(conn, oid)
        assert (order["status"], order["cum_qty"], order["reserved_amount"]) == ("FILLED", 10, 0)
        assert await violations(conn) == {}
        assert "transient database error" in worker.log_tail(200_000)
