"""Compare the exchange's fills with the broker's, row by row on (exec id, ClOrdID).

A pair that agrees on symbol, side, quantity and price is matched; anything else is a break.
A wrong symbol or side is one break with the whole difference; otherwise a wrong quantity and a
wrong price are one break each, whose impacts add up to the whole difference.

Impacts are what bringing the broker's books to the exchange's view would change, from the
customer's side, before fees: a BUY of q at p is cash -q*p and position +q; a SELL the opposite.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipelines.schema import BREAK_SCHEMA, KEYS, MONEY, BreakKind


@dataclass(frozen=True, slots=True)
class Comparison:
    """How many pairs matched, and every break (``BREAK_SCHEMA``)."""

    matched: int
    breaks: pl.DataFrame


def _sign(prefix: str) -> pl.Expr:
    return pl.when(pl.col(f"{prefix}side") == "SELL").then(-1).otherwise(1)


def _position(prefix: str) -> pl.Expr:
    """Signed shares of one side of the pair (0 when that side has no fill)."""
    return (_sign(prefix) * pl.col(f"{prefix}qty")).fill_null(0)


def _cash(prefix: str, qty: pl.Expr, price: pl.Expr) -> pl.Expr:
    """Signed cash of ``qty`` at ``price`` with the side of ``prefix`` (0 when absent)."""
    cash = (price * qty.cast(MONEY)).cast(MONEY)
    return (pl.when(pl.col(f"{prefix}side") == "SELL").then(cash).otherwise(-cash)).fill_null(0)


def compare(
    report: pl.DataFrame | pl.LazyFrame, internal: pl.DataFrame | pl.LazyFrame
) -> Comparison:
    """Classify every fill of either side as matched or as one or more breaks."""
    ex = report.lazy().select(
        *KEYS,
        *(
            pl.col(c).alias(f"ex_{c}")
            for c in ("symbol", "side", "qty", "price", "line", "exec_time")
        ),
    )
    internal_cols = ("symbol", "side", "qty", "price", "user_id")
    inn = internal.lazy().select(*KEYS, *(pl.col(c).alias(f"in_{c}") for c in internal_cols))
    joined = ex.join(inn, on=list(KEYS), how="full", coalesce=True, nulls_equal=False)
    both = pl.col("ex_line").is_not_null() & pl.col("in_qty").is_not_null()
    wrong_instrument = (pl.col("ex_symbol") != pl.col("in_symbol")) | (
        pl.col("ex_side") != pl.col("in_side")
    )
    whole = (
        _cash("ex_", pl.col("ex_qty"), pl.col("ex_price"))
        - _cash("in_", pl.col("in_qty"), pl.col("in_price"))
    ).cast(MONEY)
    whole_position = _position("ex_") - _position("in_")
    flagged = joined.with_columns(
        _matched=both
        & ~wrong_instrument
        & (pl.col("ex_qty") == pl.col("in_qty"))
        & (pl.col("ex_price") == pl.col("in_price"))
    ).collect()
    matched = int(flagged["_matched"].sum())
    # Breaks are few: every kind below is picked from this small frame, not the whole day.
    rest = flagged.filter(~pl.col("_matched")).lazy()

    parts = [
        rest.filter(pl.col("in_qty").is_null()).with_columns(
            kind=pl.lit(BreakKind.MISSING_INTERNAL.value),
            cash_impact=whole,
            position_impact=whole_position,
        ),
        rest.filter(pl.col("ex_line").is_null()).with_columns(
            kind=pl.lit(BreakKind.MISSING_EXTERNAL.value),
            cash_impact=whole,
            position_impact=whole_position,
        ),
        rest.filter(both & (pl.col("ex_symbol") != pl.col("in_symbol"))).with_columns(
            kind=pl.lit(BreakKind.SYMBOL_MISMATCH.value),
            cash_impact=whole,
            position_impact=whole_position,
        ),
        rest.filter(
            both
            & (pl.col("ex_symbol") == pl.col("in_symbol"))
            & (pl.col("ex_side") != pl.col("in_side"))
        ).with_columns(
            kind=pl.lit(BreakKind.SIDE_MISMATCH.value),
            cash_impact=whole,
            position_impact=whole_position,
        ),
        rest.filter(both & ~wrong_instrument & (pl.col("ex_qty") != pl.col("in_qty"))).with_columns(
            kind=pl.lit(BreakKind.QTY_MISMATCH.value),
            # The quantity difference at the broker's price; the price break holds the rest.
            cash_impact=_cash("ex_", pl.col("ex_qty") - pl.col("in_qty"), pl.col("in_price")),
            position_impact=whole_position,
        ),
        rest.filter(
            both & ~wrong_instrument & (pl.col("ex_price") != pl.col("in_price"))
        ).with_columns(
            kind=pl.lit(BreakKind.PRICE_MISMATCH.value),
            cash_impact=_cash("ex_", pl.col("ex_qty"), pl.col("ex_price") - pl.col("in_price")),
            position_impact=pl.lit(0, pl.Int64),
        ),
    ]
    breaks = pl.concat(
        [part.select(list(BREAK_SCHEMA)).cast(BREAK_SCHEMA) for part in parts]  # type: ignore[arg-type]
    ).collect()
    return Comparison(matched=matched, breaks=breaks)
