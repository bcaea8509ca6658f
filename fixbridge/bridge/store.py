"""The bridge's record of sent orders in PostgreSQL (``sent_orders``, sql/migrations/0004).

The reads and writes that precede a message to the exchange (recording a NewOrderSingle, looking
up an order to cancel or ask about) are fenced: the same statement checks, with a shared lock on
the lease row, that this process's lease epoch is still the current one and unexpired by the
database clock (sql/migrations/0023, ``lease``). A leader that was paused and lost the lease
gets ``LeaseLostError`` instead of a row, and sends nothing.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import ConnectionPool

from core.contracts import ExecutionReport, Side
from core.contracts.enums import TERMINAL_ORDER_STATUSES
from fixbridge.bridge.exceptions import LeaseLostError, UnknownOrderError
from fixbridge.bridge.lease import LeaseTerms
from fixbridge.bridge.parsing import OrderRef
from fixbridge.bridge.ports import ResendClaim

log = logging.getLogger(__name__)

# Two threads use the store: the order consumer and QuickFIX's session thread.
POOL_SIZE_MAX = 4

# FOR SHARE: a takeover (an UPDATE of the row) waits for the statement, or the statement sees
# the new epoch; a fenced write can never commit beside a newer leader's.
_LEASE_HELD = (
    "SELECT epoch FROM bridge_lease WHERE session_id = %(session)s AND holder = %(holder)s"
    " AND epoch = %(epoch)s AND expires_at > clock_timestamp() FOR SHARE"
)
# Built from constants (every value a bound parameter), hence the S608 exemptions.
_INSERT_SENT = (
    f"WITH lease AS ({_LEASE_HELD}),"  # noqa: S608
    " sent AS (INSERT INTO sent_orders (order_id, lease_epoch, new_order)"
    " SELECT %(order_id)s::uuid, epoch, %(command)s::jsonb FROM lease"
    " ON CONFLICT (order_id) DO NOTHING RETURNING order_id)"
    " SELECT EXISTS (SELECT FROM lease), EXISTS (SELECT FROM sent)"
)
_SELECT_ORDER = (
    f"WITH lease AS ({_LEASE_HELD})"  # noqa: S608
    " SELECT EXISTS (SELECT FROM lease), o.id::text, o.symbol, o.side, o.quantity"
    " FROM (VALUES (1)) AS one LEFT JOIN orders o ON o.id = %(order_id)s::uuid"
)
# An order is sent again only if the exchange never answered anything about it and the command
# was kept; resent_epoch lets each leader send it once.
_CLAIM_RESEND = (
    f"WITH lease AS ({_LEASE_HELD}),"  # noqa: S608
    " never_answered AS (SELECT FROM sent_orders WHERE order_id = %(order_id)s::uuid"
    " AND last_report_at IS NULL AND new_order IS NOT NULL),"
    " claimed AS (UPDATE sent_orders s SET resent_epoch = lease.epoch FROM lease"
    " WHERE s.order_id = %(order_id)s::uuid AND s.last_report_at IS NULL"
    " AND s.new_order IS NOT NULL AND s.resent_epoch IS DISTINCT FROM lease.epoch"
    " RETURNING s.new_order::text)"
    " SELECT EXISTS (SELECT FROM lease), EXISTS (SELECT FROM never_answered),"
    " (SELECT new_order FROM claimed)"
)
_SELECT_UNFINISHED = (
    "SELECT o.id::text, o.symbol, o.side, o.quantity FROM sent_orders s"
    " JOIN orders o ON o.id = s.order_id"
    " WHERE s.final_at IS NULL AND s.order_id > %s ORDER BY s.order_id LIMIT %s"
)
_MARK_STATUS_REQUESTED = (
    "UPDATE sent_orders SET status_requested_at = now() WHERE order_id = ANY(%s::uuid[])"
)
# A final report fixes final_at once; a late non-final report (a resent partial fill arriving
# after the status answer) must not move last_status back from a final status.
_RECORD_REPORT = (
    "UPDATE sent_orders SET last_report_at = now(),"
    " last_status = CASE WHEN final_at IS NULL OR %(final)s THEN %(status)s ELSE last_status END,"
    " final_at = CASE WHEN %(final)s THEN coalesce(final_at, now()) ELSE final_at END"
    " WHERE order_id = %(order_id)s"
)
# The smallest UUID: where paging through sent orders starts.
_UUID_MIN = "00000000-0000-0000-0000-000000000000"


class SentOrders:
    """Reads and writes ``sent_orders`` and reads ``orders``, each call its own transaction."""

    def __init__(self, dsn: str, *, connect_timeout_s: float, lease: LeaseTerms) -> None:
        self._lease = lease
        self._pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=POOL_SIZE_MAX,
            timeout=connect_timeout_s,
            # One statement per transaction: a process paused mid-transaction must not keep
            # its share lock on the lease row and block the takeover.
            kwargs={"autocommit": True},
            name="fixbridge",
            open=False,
        )

    def open(self, timeout_s: float) -> None:
        """Connect; raise if PostgreSQL cannot be reached within ``timeout_s``."""
        self._pool.open(wait=True, timeout=timeout_s)

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()

    def record_sent(self, order_id: str, command: str) -> bool:
        """Record ``order_id`` as sent, keeping its ``command`` (JSON); False if it already was.

        Raises ``LeaseLostError`` (nothing recorded) unless this process still holds the lease.
        """
        params = self._lease.params() | {"order_id": order_id, "command": command}
        try:
            with self._pool.connection() as conn:
                row = conn.execute(_INSERT_SENT, params).fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise UnknownOrderError(f"order {order_id} is not in the orders table") from None
        leading, inserted = row or (False, False)  # a SELECT of two EXISTS: always one row
        if not leading:
            raise LeaseLostError(f"epoch {self._lease.epoch} is no longer the lease's")
        return bool(inserted)

    def order_ref(self, order_id: str) -> OrderRef:
        """The symbol, side and quantity of an order; raise ``UnknownOrderError`` if none.

        Raises ``LeaseLostError`` unless this process still holds the lease: what is looked up
        here is sent next (a cancel, a status request).
        """
        with self._pool.connection() as conn:
            row = conn.execute(_SELECT_ORDER, self._lease.params() | {"order_id": order_id})
            leading, *order = row.fetchone() or (False,)
        if not leading:
            raise LeaseLostError(f"epoch {self._lease.epoch} is no longer the lease's")
        if order[0] is None:
            raise UnknownOrderError(f"order {order_id} is not in the orders table")
        return _order_ref(tuple(order))

    def claim_resend(self, order_id: str) -> ResendClaim:
        """Whether the exchange never answered about the order, and its command if we resend it.

        The command comes back once per leader (the first caller of this epoch); raises
        ``LeaseLostError`` unless this process still holds the lease.
        """
        with self._pool.connection() as conn:
            row = conn.execute(_CLAIM_RESEND, self._lease.params() | {"order_id": order_id})
            leading, never_answered, command = row.fetchone() or (False, False, None)
        if not leading:
            raise LeaseLostError(f"epoch {self._lease.epoch} is no longer the lease's")
        return ResendClaim(bool(never_answered), None if command is None else str(command))

    def unfinished(self, after: str | None, limit: int) -> list[OrderRef]:
        """Sent orders without a final report, by order id, after ``after`` (None: first)."""
        with self._pool.connection() as conn:
            rows = conn.execute(_SELECT_UNFINISHED, (after or _UUID_MIN, limit)).fetchall()
        return [_order_ref(row) for row in rows]

    def mark_status_requested(self, order_ids: list[str]) -> None:
        """Stamp ``status_requested_at`` on these orders."""
        with self._pool.connection() as conn:
            conn.execute(_MARK_STATUS_REQUESTED, (order_ids,))

    def record_report(self, report: ExecutionReport) -> None:
        """Keep the last status of an order; stamp ``final_at`` on its first final report."""
        params = {
            "order_id": report.order_id,
            "status": str(report.order_status),
            "final": report.order_status in TERMINAL_ORDER_STATUSES,
        }
        with self._pool.connection() as conn:
            conn.execute(_RECORD_REPORT, params)


def _order_ref(row: tuple[object, ...]) -> OrderRef:
    order_id, symbol, side, quantity = row
    return OrderRef(str(order_id), str(symbol), Side(str(side)), int(str(quantity)))
