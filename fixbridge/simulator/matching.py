"""The exchange's matching engine: pure logic, no FIX and no Kafka, safe to call from any thread.

There is no counterparty book: orders trade against the simulated price. A MARKET order sweeps at
the current price in executions of at most ``partial_fill_qty_max`` shares; a LIMIT order that
crosses takes at most ``partial_fill_qty_max`` shares per price update (its rest waits for the
next update while still crossed), and fills at the current price, never worse than its limit.
IOC cancels what did not fill at once; DAY orders expire at ``expire_day_orders``; GTC rests.
Every answer is a list of ``Report`` values the FIX layer turns into ExecutionReports.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core.contracts.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce
from core.money import is_on_tick, money_context, to_money
from fixbridge.simulator.universe import Instrument

_SUPPORTED_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
_SUPPORTED_TIFS = frozenset({TimeInForce.DAY, TimeInForce.IOC, TimeInForce.GTC})
_FINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
ZERO = Decimal(0)

# Reject texts, shared with the tests and the bridge's logs.
TEXT_UNKNOWN_SYMBOL = "unknown symbol"
TEXT_BAD_QTY = "quantity must be a positive whole number of lots"
TEXT_UNSUPPORTED_TYPE = "unsupported order type"
TEXT_UNSUPPORTED_TIF = "unsupported time in force"
TEXT_PRICE_MISSING = "a limit order needs a positive price"
TEXT_PRICE_OFF_TICK = "price not on tick size"
TEXT_DUPLICATE = "duplicate ClOrdID"
TEXT_UNKNOWN_ORDER = "unknown order"
TEXT_ORDER_FINAL = "order already final"
TEXT_BOOK_FULL = "too many resting orders"
TEXT_NO_PRICE = "no market price for symbol"
TEXT_IOC_REST = "IOC: unfilled quantity canceled"
TEXT_DAY_END = "end of day"


@dataclass(frozen=True, slots=True)
class NewOrderRequest:
    """A NewOrderSingle as the engine sees it; a ``None`` type or TIF is an unknown FIX value."""

    cl_ord_id: str
    symbol: str
    side: Side
    order_type: OrderType | None
    qty: int
    price: Decimal | None
    time_in_force: TimeInForce | None


@dataclass(frozen=True, slots=True)
class Report:
    """One ExecutionReport: what happened to an order, with its full state after it."""

    exec_id: str
    order_id: str  # the exchange's id; "NONE" when the order was never known
    cl_ord_id: str
    orig_cl_ord_id: str | None
    symbol: str
    side: Side
    order_type: OrderType | None
    order_qty: int
    price: Decimal | None
    exec_type: ExecType
    ord_status: OrderStatus
    last_qty: int
    last_px: Decimal | None
    cum_qty: int
    leaves_qty: int
    avg_px: Decimal
    ts_transact_ns: int
    text: str | None = None


@dataclass(frozen=True, slots=True)
class CancelReject:
    """An OrderCancelReject: the cancel could not be done, and the order's status."""

    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    ord_status: OrderStatus
    text: str
    unknown_order: bool  # CxlRejReason 1 (unknown order) rather than 0 (too late)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution, as it goes into the end-of-day trade report."""

    exec_id: str
    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    price: Decimal
    ts_exec_ns: int


@dataclass(slots=True)
class _Order:
    order_id: str
    request: NewOrderRequest
    status: OrderStatus = OrderStatus.NEW
    cum_qty: int = 0
    notional: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)

    @property
    def leaves_qty(self) -> int:
        return 0 if self.status in _FINAL else self.request.qty - self.cum_qty

    @property
    def avg_px(self) -> Decimal:
        if self.cum_qty == 0:
            return ZERO
        with money_context():
            return to_money(self.notional / self.cum_qty)


class MatchingEngine:
    """Orders by ClOrdID, resting limit orders by symbol, and the day's fills; one lock for all."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        price_of: Callable[[str], Decimal | None],
        *,
        partial_fill_qty_max: int,
        resting_orders_max: int = 100_000,
        id_prefix: str | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if partial_fill_qty_max < 1 or resting_orders_max < 1:
            raise ValueError("partial_fill_qty_max and resting_orders_max must be >= 1")
        self._instruments = {i.symbol: i for i in instruments}
        self._price_of = price_of
        self._chunk_qty_max = partial_fill_qty_max
        self._resting_max = resting_orders_max
        self._clock_ns = clock_ns
        # Exec ids are the settlement's idempotency key: a restarted exchange must not reuse one,
        # so each engine's ids start with its birth time.
        prefix = id_prefix if id_prefix is not None else format(time.time_ns(), "x")
        self._exec_seq = itertools.count(1)
        self._order_seq = itertools.count(1)
        self._prefix = prefix
        self._orders: dict[str, _Order] = {}
        self._resting: dict[str, dict[str, _Order]] = {}  # symbol -> cl_ord_id -> order
        self._day_fills: list[Fill] = []
        self._lock = threading.RLock()

    # Public API: each method takes the lock once and returns the reports to send.

    def new_order(self, request: NewOrderRequest) -> list[Report]:
        """Accept, fill, rest or reject a new order."""
        with self._lock:
            if request.cl_ord_id in self._orders:
                # Do not touch the order already known under this id.
                return [self._reject_unrecorded(request, TEXT_DUPLICATE)]
            order = _Order(f"O{self._prefix}-{next(self._order_seq)}", request)
            self._orders[request.cl_ord_id] = order
            reason = self._reject_reason(request)
            if reason is not None:
                order.status = OrderStatus.REJECTED
                return [self._report(order, ExecType.REJECTED, text=reason)]
            reports = [self._report(order, ExecType.NEW)]
            reports += self._execute(order)
            if order.status not in _FINAL:
                if request.time_in_force is TimeInForce.IOC:
                    order.status = OrderStatus.CANCELED
                    reports.append(self._report(order, ExecType.CANCELED, text=TEXT_IOC_REST))
                else:
                    self._resting.setdefault(request.symbol, {})[request.cl_ord_id] = order
            return reports

    def cancel(self, cl_ord_id: str, orig_cl_ord_id: str) -> Report | CancelReject:
        """Cancel the rest of order ``orig_cl_ord_id``; the cancel request is ``cl_ord_id``."""
        with self._lock:
            order = self._orders.get(orig_cl_ord_id)
            if order is None:
                return CancelReject(
                    cl_ord_id,
                    orig_cl_ord_id,
                    "NONE",
                    OrderStatus.REJECTED,
                    TEXT_UNKNOWN_ORDER,
                    True,
                )
            if order.status in _FINAL:
                return CancelReject(
                    cl_ord_id, orig_cl_ord_id, order.order_id, order.status, TEXT_ORDER_FINAL, False
                )
            self._unrest(order)
            order.status = OrderStatus.CANCELED
            return self._report(
                order, ExecType.CANCELED, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id
            )

    def status(self, cl_ord_id: str, symbol: str = "", side: Side = Side.BUY) -> Report:
        """The order's true state as an ORDER_STATUS report; REJECTED "unknown order" if none."""
        with self._lock:
            order = self._orders.get(cl_ord_id)
            if order is None:
                unknown = NewOrderRequest(cl_ord_id, symbol, side, None, 0, None, None)
                return self._report(
                    _Order("NONE", unknown, OrderStatus.REJECTED),
                    ExecType.ORDER_STATUS,
                    text=TEXT_UNKNOWN_ORDER,
                )
            return self._report(order, ExecType.ORDER_STATUS)

    def on_prices(self, prices: Mapping[str, Decimal]) -> list[Report]:
        """Fill resting limit orders that the new prices cross."""
        with self._lock:
            reports: list[Report] = []
            for symbol in self._resting.keys() & prices.keys():
                book = self._resting[symbol]
                for order in list(book.values()):
                    reports += self._execute(order, prices[symbol])
                    if order.status in _FINAL:
                        del book[order.request.cl_ord_id]
                if not book:
                    del self._resting[symbol]
            return reports

    def expire_day_orders(self) -> list[Report]:
        """End of day: every resting DAY order expires."""
        with self._lock:
            reports: list[Report] = []
            for symbol, book in list(self._resting.items()):
                for cl_ord_id, order in list(book.items()):
                    if order.request.time_in_force is TimeInForce.DAY:
                        order.status = OrderStatus.EXPIRED
                        del book[cl_ord_id]
                        reports.append(self._report(order, ExecType.EXPIRED, text=TEXT_DAY_END))
                if not book:
                    del self._resting[symbol]
            return reports

    def drain_fills(self) -> list[Fill]:
        """Hand over every fill since the last call (for the trade report) and forget them."""
        with self._lock:
            fills, self._day_fills = self._day_fills, []
            return fills

    def resting_count(self) -> int:
        """How many orders are resting in the book."""
        with self._lock:
            return sum(len(book) for book in self._resting.values())

    # Internals: called with the lock held.

    def _reject_reason(self, request: NewOrderRequest) -> str | None:
        instrument = self._instruments.get(request.symbol)
        if instrument is None:
            return TEXT_UNKNOWN_SYMBOL
        if request.order_type not in _SUPPORTED_TYPES:
            return TEXT_UNSUPPORTED_TYPE
        if request.time_in_force not in _SUPPORTED_TIFS:
            return TEXT_UNSUPPORTED_TIF
        if request.qty <= 0 or request.qty % instrument.lot_size:
            return TEXT_BAD_QTY
        if request.order_type is OrderType.LIMIT:
            if request.price is None or not request.price.is_finite() or request.price <= 0:
                return TEXT_PRICE_MISSING
            if not is_on_tick(request.price, instrument.tick_size):
                return f"{TEXT_PRICE_OFF_TICK} {instrument.tick_size}"
        if self._price_of(request.symbol) is None:
            return TEXT_NO_PRICE
        resting = sum(len(book) for book in self._resting.values())
        if request.order_type is OrderType.LIMIT and resting >= self._resting_max:
            return TEXT_BOOK_FULL
        return None

    def _execute(self, order: _Order, price: Decimal | None = None) -> list[Report]:
        request = order.request
        px = self._price_of(request.symbol) if price is None else price
        if px is None or not _crosses(request, px):
            return []
        leaves = request.qty - order.cum_qty
        # A market order sweeps now; a limit order takes what one price level offers.
        budget = leaves if request.order_type is OrderType.MARKET else self._chunk_qty_max
        reports: list[Report] = []
        while budget > 0 and leaves > 0:
            qty = min(leaves, budget, self._chunk_qty_max)
            reports.append(self._fill(order, qty, px))
            budget -= qty
            leaves -= qty
        return reports

    def _fill(self, order: _Order, qty: int, px: Decimal) -> Report:
        order.cum_qty += qty
        order.notional += px * qty
        done = order.cum_qty == order.request.qty
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        exec_type = ExecType.FILL if done else ExecType.PARTIAL_FILL
        report = self._report(order, exec_type, last_qty=qty, last_px=px)
        fill = Fill(
            report.exec_id,
            order.request.cl_ord_id,
            order.request.symbol,
            order.request.side,
            qty,
            px,
            report.ts_transact_ns,
        )
        order.fills.append(fill)
        self._day_fills.append(fill)
        return report

    def _unrest(self, order: _Order) -> None:
        book = self._resting.get(order.request.symbol)
        if book is not None:
            book.pop(order.request.cl_ord_id, None)
            if not book:
                del self._resting[order.request.symbol]

    def _reject_unrecorded(self, request: NewOrderRequest, text: str) -> Report:
        ghost = _Order("NONE", request, OrderStatus.REJECTED)
        return self._report(ghost, ExecType.REJECTED, text=text)

    def _report(
        self,
        order: _Order,
        exec_type: ExecType,
        *,
        last_qty: int = 0,
        last_px: Decimal | None = None,
        text: str | None = None,
        cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None,
    ) -> Report:
        request = order.request
        return Report(
            exec_id=f"E{self._prefix}-{next(self._exec_seq)}",
            order_id=order.order_id,
            cl_ord_id=request.cl_ord_id if cl_ord_id is None else cl_ord_id,
            orig_cl_ord_id=orig_cl_ord_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            order_qty=request.qty,
            price=request.price,
            exec_type=exec_type,
            ord_status=order.status,
            last_qty=last_qty,
            last_px=last_px,
            cum_qty=order.cum_qty,
            leaves_qty=order.leaves_qty,
            avg_px=order.avg_px,
            ts_transact_ns=self._clock_ns(),
            text=text,
        )


def _crosses(request: NewOrderRequest, px: Decimal) -> bool:
    """Tell whether an order can trade at ``px``: always for MARKET, at or better for LIMIT."""
    if request.order_type is OrderType.MARKET:
        return True
    if request.price is None:
        return False
    return px <= request.price if request.side is Side.BUY else px >= request.price
