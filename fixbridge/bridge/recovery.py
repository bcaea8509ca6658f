"""Crash recovery on start: ask the exchange for every sent order without a final report.

The answers are ordinary ExecutionReports (ExecType ORDER_STATUS) and are published like any
other, so settlement catches up with whatever happened while the bridge was down. An order the
bridge recorded but died before sending comes back as REJECTED "unknown order": the exchange
never held it, and it is never sent again.
"""

from __future__ import annotations

import logging

from fixbridge.bridge.parsing import order_status_request
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
