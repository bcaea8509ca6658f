"""Execution reports on ``exch.execution-reports``, from fixbridge; Kafka key = order id."""

from __future__ import annotations

from core.contracts._wire import (
    DecimalStr,
    Record,
    check,
    check_int,
    check_money,
    check_price,
    check_symbol,
    check_text,
    check_uuid,
)
from core.contracts.enums import (
    EXCHANGE_ORDER_STATUSES,
    FILL_EXEC_TYPES,
    TERMINAL_ORDER_STATUSES,
    ExecType,
    OrderStatus,
    Side,
)

TEXT_LEN_MAX = 1024
# Exec types that leave the order in exactly one status.
_STATUS_OF_EXEC_TYPE = {
    ExecType.FILL: OrderStatus.FILLED,
    ExecType.CANCELED: OrderStatus.CANCELED,
    ExecType.REJECTED: OrderStatus.REJECTED,
    ExecType.EXPIRED: OrderStatus.EXPIRED,
}


class ExecutionReport(Record, frozen=True, kw_only=True, tag="execution_report.v1"):
    """What the exchange did to an order; ``exec_id`` is the idempotency key of settlement.

    A fill carries ``last_qty`` > 0 and ``last_px``; any other report has ``last_qty`` 0 and no
    ``last_px``. ``avg_px`` must already be rounded to 4 places (``core.money.to_money``).
    """

    exec_id: str  # FIX ExecID, unique per exchange
    order_id: str  # FIX ClOrdID
    exec_type: ExecType
    order_status: OrderStatus
    symbol: str
    side: Side
    last_qty: int  # shares filled by this report
    last_px: DecimalStr | None = None  # price of this fill
    cum_qty: int  # shares filled so far
    leaves_qty: int  # shares still working
    avg_px: DecimalStr  # average fill price so far; 0 before the first fill
    text: str | None = None  # reject or cancel reason from the exchange
    ts_transact_ns: int  # FIX TransactTime

    def __post_init__(self) -> None:
        check_text(self.exec_id, "exec_id")
        check_uuid(self.order_id, "order_id")
        check_symbol(self.symbol)
        check(type(self.side) is Side, f"side must be a Side, got {self.side!r}")
        check_int(self.ts_transact_ns, "ts_transact_ns", 1)
        if self.text is not None:
            check_text(self.text, "text", TEXT_LEN_MAX)
        self._check_status()
        self._check_quantities()

    def _check_status(self) -> None:
        check(
            type(self.exec_type) is ExecType, f"exec_type must be an ExecType: {self.exec_type!r}"
        )
        check(
            type(self.order_status) is OrderStatus,
            f"order_status must be an OrderStatus, got {self.order_status!r}",
        )
        check(
            self.order_status in EXCHANGE_ORDER_STATUSES,
            f"{self.order_status} is an OMS state; the exchange never reports it",
        )
        implied = _STATUS_OF_EXEC_TYPE.get(self.exec_type)
        check(
            implied is None or implied is self.order_status,
            f"exec_type {self.exec_type} needs order_status {implied}, got {self.order_status}",
        )

    def _check_quantities(self) -> None:
        check_int(self.last_qty, "last_qty", 0)
        check_int(self.cum_qty, "cum_qty", 0)
        check_int(self.leaves_qty, "leaves_qty", 0)
        check_money(self.avg_px, "avg_px")
        if self.exec_type in FILL_EXEC_TYPES:
            check(self.last_qty > 0, f"a {self.exec_type} report needs last_qty > 0")
            if self.last_px is None:
                raise ValueError(f"a {self.exec_type} report needs last_px")
            check_price(self.last_px, "last_px")
        else:
            check(self.last_qty == 0, f"a {self.exec_type} report has last_qty 0")
            check(self.last_px is None, f"a {self.exec_type} report has no last_px")
        check(self.cum_qty >= self.last_qty, "cum_qty must be >= last_qty")
        check(
            (self.cum_qty == 0) == (self.avg_px == 0),
            "avg_px must be > 0 once anything is filled, and 0 before",
        )
        check(
            self.order_status not in TERMINAL_ORDER_STATUSES or self.leaves_qty == 0,
            f"an order {self.order_status} has leaves_qty 0",
        )

    def kafka_key(self) -> bytes:
        """The Kafka key of this record: the order id."""
        return self.order_id.encode()
