"""Heal the breaks a machine may heal: fills the exchange made that the broker never settled.

A heal publishes the missing execution report to ``exch.execution-reports``, the topic fixbridge
publishes to, so the settle agent settles it with the same code as any fill (never a direct
balance update). Each heal is recorded: the break is marked healed and an audit row written.
Healing twice changes nothing: a healed break is skipped, and the settle agent settles an exec
id at most once even if a report is published again (e.g. after a crash between the publish and
the audit row). Every other kind of break is left for a person.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg

from core.contracts import EXECUTION_REPORTS, ExecType, ExecutionReport, OrderStatus, Side
from core.money import notional
from core.settings import Settings
from core.timestamps import ns_of
from fixbridge.bridge.exceptions import PublishError
from fixbridge.bridge.publisher import KafkaPublisher
from pipelines.exceptions import ReconciliationError
from streams.settlement_rules import average_price

Publish = Callable[[ExecutionReport], None]

_SAFE_BREAKS = (
    "SELECT b.id, b.exec_id, b.cl_ord_id, b.details FROM reconciliation_breaks b"
    " WHERE b.run_id = %s AND b.kind = 'MISSING_INTERNAL' AND b.is_safe_to_heal"
    " AND b.healed_at IS NULL ORDER BY b.details->>'ex_exec_time', b.id"
)


class HealPublishError(ReconciliationError):
    """Kafka did not acknowledge a heal report."""


@dataclass(frozen=True, slots=True)
class HealSummary:
    """What one heal pass did."""

    healed: int
    refused: int


@dataclass(slots=True)
class OrderFills:
    """What the broker has filled of an order, advanced by each heal report built for it."""

    quantity: int
    cum_qty: int
    filled_notional: Decimal


def heal_run(
    conn: psycopg.Connection[tuple[object, ...]], run_id: int, publish: Publish, actor: str
) -> HealSummary:
    """Publish the report of every safe, unhealed break of ``run_id``; audit each one."""
    healed = refused = 0
    progress: dict[str, OrderFills] = {}
    with conn.transaction():
        breaks = conn.execute(_SAFE_BREAKS, (run_id,)).fetchall()
    for break_id, exec_id, cl_ord_id, details in breaks:
        assert isinstance(details, dict)
        number, order_id = int(str(break_id)), str(cl_ord_id)
        try:
            with conn.transaction():
                if not _claim(conn, number):
                    continue  # healed by another pass meanwhile
                reason = _refusal(conn, str(exec_id))
                if reason is not None:
                    _audit(conn, number, actor, "REFUSED", {"reason": reason})
                    refused += 1
                    continue
                order = progress.get(order_id) or _order_progress(conn, order_id)
                report = build_report(str(exec_id), order_id, details, order)
                publish(report)
                progress[order_id] = order
                conn.execute(
                    "UPDATE reconciliation_breaks SET healed_at = now(), healed_by = %s"
                    " WHERE id = %s",
                    (actor, number),
                )
                published = EXECUTION_REPORTS.encode(report).decode()
                _audit(conn, number, actor, "HEALED", {"published": published})
                healed += 1
        except HealPublishError as exc:
            with conn.transaction():
                _audit(conn, number, actor, "FAILED", {"error": str(exc)})
            raise
    return HealSummary(healed, refused)


def build_report(
    exec_id: str, cl_ord_id: str, details: dict[str, object], order: OrderFills
) -> ExecutionReport:
    """The exchange's fill as an ExecutionReport, counted on top of the order's settled fills.

    ``order`` is advanced by this fill, so the next missing fill of the same order follows it.
    """
    qty = int(str(details["ex_qty"]))
    price = Decimal(str(details["ex_price"]))
    order.cum_qty += qty
    order.filled_notional += notional(qty, price)
    done = order.cum_qty >= order.quantity
    return ExecutionReport(
        exec_id=exec_id,
        order_id=cl_ord_id,
        exec_type=ExecType.FILL if done else ExecType.PARTIAL_FILL,
        order_status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
        symbol=str(details["ex_symbol"]),
        side=Side(str(details["ex_side"])),
        last_qty=qty,
        last_px=price,
        cum_qty=order.cum_qty,
        leaves_qty=max(order.quantity - order.cum_qty, 0),
        avg_px=average_price(order.filled_notional, order.cum_qty),
        ts_transact_ns=ns_of(datetime.fromisoformat(str(details["ex_exec_time"]))),
    )


def _claim(conn: psycopg.Connection[tuple[object, ...]], break_id: int) -> bool:
    """Lock the break for this transaction; False if it was healed since it was listed."""
    row = conn.execute(
        "SELECT 1 FROM reconciliation_breaks WHERE id = %s AND healed_at IS NULL FOR UPDATE",
        (break_id,),
    ).fetchone()
    return row is not None


def _refusal(conn: psycopg.Connection[tuple[object, ...]], exec_id: str) -> str | None:
    row = conn.execute(
        "SELECT 1 FROM executions WHERE exec_id = %s AND settled_at IS NOT NULL", (exec_id,)
    ).fetchone()
    return None if row is None else "settled since the run: nothing to heal"


def _order_progress(conn: psycopg.Connection[tuple[object, ...]], cl_ord_id: str) -> OrderFills:
    row = conn.execute(
        "SELECT quantity, cum_qty, filled_notional FROM orders WHERE id = %s",
        (uuid.UUID(cl_ord_id),),
    ).fetchone()
    if row is None:  # the run found it; orders are never deleted
        raise ReconciliationError(f"order {cl_ord_id} vanished")
    return OrderFills(int(str(row[0])), int(str(row[1])), Decimal(str(row[2])))


def _audit(
    conn: psycopg.Connection[tuple[object, ...]],
    break_id: int,
    actor: str,
    outcome: str,
    details: dict[str, object],
) -> None:
    conn.execute(
        "INSERT INTO reconciliation_heal_audit (break_id, actor, action, outcome, details)"
        " VALUES (%s, %s, 'PUBLISH_EXECUTION_REPORT', %s, %s)",
        (break_id, actor, outcome, json.dumps(details)),
    )


def kafka_publish(settings: Settings) -> Publish:
    """A publisher to the execution-reports topic that waits for Kafka's acknowledgement."""
    # fixbridge's own publisher (idempotent, acks=all): a retry never duplicates a report.
    publisher = KafkaPublisher(settings)

    def publish(report: ExecutionReport) -> None:
        try:
            publisher.publish(report)
        except PublishError as exc:
            raise HealPublishError(f"heal of {report.exec_id} not acknowledged: {exc}") from exc

    return publish
