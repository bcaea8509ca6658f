"""Column names, dtypes and break kinds shared by the reconciliation functions."""

from __future__ import annotations

from enum import StrEnum

import polars as pl

# Money and prices: NUMERIC(18,4) in PostgreSQL, a fixed-point decimal here (never float).
MONEY = pl.Decimal(18, 4)
TIME = pl.Datetime("us", "UTC")

# The trade report as the exchange simulator writes it (fixbridge/simulator/trade_report.py).
REPORT_COLUMNS = ("exec_id", "cl_ord_id", "symbol", "side", "qty", "price", "exec_time")
# One row of a fill, on either side of the comparison; ``line`` is the report's CSV line number.
FILL_SCHEMA: dict[str, pl.DataType] = {
    "exec_id": pl.String(),
    "cl_ord_id": pl.String(),
    "symbol": pl.String(),
    "side": pl.String(),
    "qty": pl.Int64(),
    "price": MONEY,
    "exec_time": TIME,
}
REPORT_SCHEMA: dict[str, pl.DataType] = {"line": pl.Int64(), **FILL_SCHEMA}
REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    **{name: pl.String() for name in REPORT_COLUMNS},
    "reason": pl.String(),
}
INTERNAL_SCHEMA: dict[str, pl.DataType] = {**FILL_SCHEMA, "user_id": pl.Int64()}
KEYS = ("exec_id", "cl_ord_id")
SIDES = ("BUY", "SELL")


class BreakKind(StrEnum):
    """The kinds of break, as ``reconciliation_breaks.kind`` spells them."""

    MISSING_INTERNAL = "MISSING_INTERNAL"  # the exchange filled it; the broker has no fill
    MISSING_EXTERNAL = "MISSING_EXTERNAL"  # the broker has a fill the exchange does not report
    QTY_MISMATCH = "QTY_MISMATCH"
    PRICE_MISMATCH = "PRICE_MISMATCH"
    SIDE_MISMATCH = "SIDE_MISMATCH"
    SYMBOL_MISMATCH = "SYMBOL_MISMATCH"


# Both sides of a break: ``ex_*`` as the exchange reports it, ``in_*`` as the broker booked it.
BREAK_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "exec_id": pl.String(),
    "cl_ord_id": pl.String(),
    "ex_symbol": pl.String(),
    "ex_side": pl.String(),
    "ex_qty": pl.Int64(),
    "ex_price": MONEY,
    "ex_line": pl.Int64(),
    "ex_exec_time": TIME,
    "in_symbol": pl.String(),
    "in_side": pl.String(),
    "in_qty": pl.Int64(),
    "in_price": MONEY,
    "in_user_id": pl.Int64(),
    "cash_impact": MONEY,
    "position_impact": pl.Int64(),
}
