"""Crash recovery: ask the exchange about unfinished orders, and send the ones it never got.

On every new leader's first logon the bridge sends an OrderStatusRequest for each sent order
without a final report. The answers are ordinary ExecutionReports (ExecType ORDER_STATUS) and
are published like any other, so settlement catches up with whatever happened meanwhile.

An order is recorded in ``sent_orders`` before it is sent, so a leader that dies between the two
leaves an order the exchange never held: its answer is "unknown order" (OrderID NONE). If no
report ever came for that order, it is sent now as a NewOrderSingle, from the command kept with
the record, instead of being rejected for the bridge's crash. The FIX session delivers in order
(a message the old leader stored is resent before the status request), so "unknown" means the
exchange never saw the ClOrdID; an order the exchange answered before and later lost (a
simulator restart) keeps the exchange's answer, REJECTED "unknown order".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from core.contracts import ORDER_COMMANDS, ExecutionReport, NewOrder
from core.exceptions import ContractError
from fixbridge.bridge.parsing import new_order_single, order_status_request
from fixbridge.bridge.ports import OrderStore, Sender

log = logging.getLogger(__name__)


def request_unfinished_statuses(store: OrderStore, sender: Sender, page_max: int) -> int:
    """Send an OrderStatusRequest for every sent order without a final report; return how many."""
    requested = 0
    after: str | None = None
    while True:
        page = store.unfinished(after, page_max)
        for order in page:
            sender.send(order_status_request(order))
        if page:
            store.mark_status_requested([order.order_id for order in page])
            requested += len(page)
            after = page[-1].order_id
        # A page shorter than the limit is the last; the loop ends because order ids only grow.
        if len(page) < page_max:
            break
    log.info("recovery: asked the exchange for the status of %d unfinished orders", requested)
    return requested


class UnknownOrderAnswers:
    """Handles "unknown order" status answers: resend a never-sent order, else forward."""

    def __init__(
        self,
        store: OrderStore,
        sender: Sender,
        forward: Callable[[ExecutionReport], None],
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._sender = sender
        self._forward = forward
        self._clock_ns = clock_ns

    def __call__(self, report: ExecutionReport) -> None:
        """Send the order again if the exchange never held it; otherwise forward the answer."""
        claim = self._store.claim_resend(report.order_id)
        if not claim.never_answered:
            self._forward(report)
            return
        if claim.command is None:
            # This leader already sent it again; the answer to that is on its way.
            log.info("order %s: unknown to the exchange, already sent again", report.order_id)
            return
        try:
            order = ORDER_COMMANDS.decode(claim.command)
        except ContractError:
            log.exception("order %s: its kept command cannot be read", report.order_id)
            self._forward(report)
            return
        if not isinstance(order, NewOrder):  # pragma: no cover - only NewOrders are kept
            self._forward(report)
            return
        log.warning(
            "order %s never reached the exchange (a leader died before sending it): sending it now",
            order.order_id,
        )
        self._sender.send(new_order_single(order, self._clock_ns()))
