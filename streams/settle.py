"""The settle agent: ``exch.execution-reports`` -> ledger, holdings and order status.

It consumes in batches below Faust (streams/batch_consumer.py). Kafka delivers at least once; the
effects are exactly once because every report's writes are idempotent (streams/settlement.py): a
fill is keyed by its exec id (unique in ``journal_txns`` and ``executions``), a status report
only moves an order forward. Offsets are committed after the batch is settled, so a crash
replays at most the batches in flight, and replaying them changes nothing.

A batch is split into ``settle_concurrency`` lanes by user (one query finds the users of the
batch's orders), so two lanes never wait on each other's wallet and holding rows. A lane is
settled in ONE database transaction with a handful of round trips, whatever its size
(streams/settlement_batch.py: lock, apply in memory, one ``settle_apply`` call): its reports one
after another, each order's in offset order (Kafka keys reports by order id, so they share a
partition). A report of an order that does not exist goes to the DLQ before any lane. If any
report of a lane cannot be settled (a contradiction, a constraint it breaks), the lane's
transaction rolls back and its reports are settled one transaction each (streams/settlement.py),
so only the bad report goes to the DLQ. All or nothing per transaction, idempotent per report:
still exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import ClassVar

from aiokafka import ConsumerRecord

from core.contracts import EXECUTION_REPORTS, ExecutionReport
from core.db import AsyncPool
from core.exceptions import ContractError
from streams.app import app, settings
from streams.batch_consumer import BatchConsumer, Records, run_or_crash
from streams.db_retry import open_pool, retry_transient
from streams.dlq import send_to_dlq
from streams.metrics import add_lag_source, dead_lettered, observe
from streams.settlement import Outcome, settle_report, unknown_order
from streams.settlement_batch import settle_reports

log = logging.getLogger(__name__)

AGENT = "settle"

Item = tuple[ConsumerRecord[bytes, bytes], ExecutionReport]


class _State:
    pool: AsyncPool | None = None
    # The last task of each lane: a lane of the next batch starts once the same lane of the
    # batch before has finished, so one user's reports are applied in offset order although
    # batches overlap (settle_batches_in_flight).
    lane_tails: ClassVar[dict[int, asyncio.Future[None]]] = {}


@app.task  # type: ignore[untyped-decorator]
async def consume_reports() -> None:
    """Settle execution reports in batches until the worker stops."""
    _State.pool = await open_pool(settings, AGENT)
    consumer = BatchConsumer(
        settings,
        settings.topic_execution_reports,
        handle,
        in_flight=settings.settle_batches_in_flight,
    )
    add_lag_source(settings.topic_execution_reports, consumer.lag, [AGENT])
    try:
        await run_or_crash(consumer, app.crash, AGENT)
    finally:
        pool, _State.pool = _State.pool, None
        await pool.close()


async def handle(records: Records) -> None:
    """Settle one fetched batch."""
    if _State.pool is None:
        raise RuntimeError("the settle agent got a batch before it started")
    messages = [r for batch in records.values() for r in batch]
    await settle_batch(_State.pool, messages)
    observe(AGENT, len(messages))


async def settle_batch(pool: AsyncPool, messages: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
    """Decode a batch, dead-letter the bad reports, settle the rest in lanes by user."""
    by_order: dict[str, list[Item]] = {}
    for message in messages:
        try:
            report = EXECUTION_REPORTS.decode(message.value, topic=message.topic)
        except ContractError as exc:
            await _dead_letter(message, exc)
            continue
        by_order.setdefault(report.order_id, []).append((message, report))
    if not by_order:
        return
    users = await retry_transient(
        lambda: _order_users(pool, list(by_order)),
        what=f"{AGENT} users",
        backoff_ms_max=settings.streams_db_retry_backoff_ms_max,
    )
    lanes: list[list[Item]] = [[] for _ in range(settings.settle_concurrency)]
    for order_id, items in by_order.items():
        owner = users.get(str(uuid.UUID(order_id)))  # as PostgreSQL spells it
        if owner is None:
            # No such order (orders are committed before they reach the exchange): what the
            # per-report path would say, without failing a whole lane first.
            for message, report in items:
                await _dead_letter(message, unknown_order(report))
            continue
        lanes[hash(owner) % len(lanes)].extend(items)
    tails = _State.lane_tails
    mine: list[asyncio.Future[None]] = []
    for index, lane in enumerate(lanes):
        if lane:
            task = asyncio.ensure_future(_settle_lane_after(tails.get(index), pool, lane))
            tails[index] = task
            mine.append(task)
    await asyncio.gather(*mine)


async def _settle_lane_after(
    before: asyncio.Future[None] | None, pool: AsyncPool, items: list[Item]
) -> None:
    """Settle a lane once the same lane of the batch before is over, however it ended."""
    if before is not None and not before.done():
        await asyncio.wait([before])
    await _settle_lane(pool, items)


async def _order_users(pool: AsyncPool, order_ids: list[str]) -> dict[str, int]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT id, user_id FROM orders WHERE id = ANY(%s)",
            ([uuid.UUID(o) for o in order_ids],),
        )
        return {str(oid): int(uid) for oid, uid in await cursor.fetchall()}


async def _settle_lane(pool: AsyncPool, items: list[Item]) -> None:
    async def together() -> None:
        async with pool.connection() as conn, conn.transaction():
            await settle_reports(conn, [report for _, report in items], settings)

    try:
        await retry_transient(
            together,
            what=f"{AGENT} lane of {len(items)}",
            backoff_ms_max=settings.streams_db_retry_backoff_ms_max,
        )
        return
    except Exception:
        # A report's own problem (transient errors are retried above): find it one by one.
        log.debug("%s: a lane of %d failed; settling one by one", AGENT, len(items), exc_info=True)
    for message, report in items:
        await _settle_one(pool, message, report)


async def _settle_one(
    pool: AsyncPool, message: ConsumerRecord[bytes, bytes], report: ExecutionReport
) -> None:
    async def attempt() -> Outcome:
        async with pool.connection() as conn:
            return await settle_report(conn, report, settings)

    try:
        outcome = await retry_transient(
            attempt,
            what=f"{AGENT} {report.exec_id}",
            backoff_ms_max=settings.streams_db_retry_backoff_ms_max,
        )
    except Exception as exc:
        # Transient errors never get here (retried above); what does is the report's own
        # problem (unknown order, contradiction, a constraint it breaks): the DLQ keeps it.
        log.debug("%s: %s", AGENT, exc, exc_info=True)
        await _dead_letter(message, exc)
        return
    log.debug("%s: %s %s", AGENT, report.exec_id, outcome)


async def _dead_letter(message: ConsumerRecord[bytes, bytes], error: BaseException) -> None:
    await send_to_dlq(
        agent=AGENT,
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        error=error,
    )
    dead_lettered(AGENT)
