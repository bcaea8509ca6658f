"""The settle agent: ``exch.execution-reports`` -> ledger, holdings and order status.

Kafka delivers at least once; the effects are exactly once because every report is settled in
one database transaction whose writes are idempotent (streams/settlement.py): a fill is keyed by
its exec id (unique in ``journal_txns`` and ``executions``), a status report only moves an order
forward. Offsets are committed after the batch is settled (``take_events`` acks afterwards), so
a crash replays at most the batches in flight, and replaying them changes nothing.

A batch is grouped by order id: the reports of one order are applied one after another in
offset order (Kafka keys reports by order id, so they share a partition), different orders in
parallel, up to ``settle_concurrency`` database connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

import faust
from faust.types import EventT, Message

from core.contracts import EXECUTION_REPORTS, ExecutionReport
from core.db import AsyncPool
from core.exceptions import ContractError
from streams.app import app, execution_reports_topic, settings
from streams.db_retry import open_pool, retry_transient, withhold_commit
from streams.dlq import send_to_dlq
from streams.metrics import dead_lettered, observe
from streams.settlement import Outcome, settle_report

log = logging.getLogger(__name__)

AGENT = "settle"


@app.agent(execution_reports_topic, name=AGENT)
async def settle(stream: faust.StreamT[bytes]) -> None:
    """Settle execution reports in batches; poison goes to the DLQ, the stream goes on."""
    pool = await open_pool(settings, AGENT)
    try:
        # take_events is on the Stream class, not on the StreamT interface the agent is given.
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.streams_batch_max, within=settings.streams_batch_within_ms / 1000
        ):
            try:
                await settle_batch(pool, events)
            except asyncio.CancelledError:
                withhold_commit(events)
                raise
            observe(AGENT, len(events))
    finally:
        await pool.close()


async def settle_batch(pool: AsyncPool, events: Sequence[EventT[bytes]]) -> None:
    """Decode a batch, dead-letter the bad reports, settle the rest (orders in parallel)."""
    by_order: dict[str, list[tuple[Message, ExecutionReport]]] = {}
    for event in events:
        message = event.message
        try:
            report = EXECUTION_REPORTS.decode(message.value, topic=message.topic)
        except ContractError as exc:
            await _dead_letter(message, exc)
            continue
        by_order.setdefault(report.order_id, []).append((message, report))
    slots = asyncio.Semaphore(settings.settle_concurrency)

    async def settle_order(items: list[tuple[Message, ExecutionReport]]) -> None:
        async with slots:
            for message, report in items:
                await _settle_one(pool, message, report)

    await asyncio.gather(*(settle_order(items) for items in by_order.values()))


async def _settle_one(pool: AsyncPool, message: Message, report: ExecutionReport) -> None:
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


async def _dead_letter(message: Message, error: BaseException) -> None:
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
