"""The reconciliation's load and comparison written in pandas: the reference of bench/recon.py.

The same steps as pipelines/trade_report.py and pipelines/compare.py: every field read as text,
cast with the same rules (rows that do not parse set aside with the reason), an outer join on
(exec id, ClOrdID), the same break kinds and impacts. pandas has no fixed-point decimal column,
so money is held as int64 ten-thousandths, which is exact (never float) and fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.schema import KEYS, REPORT_COLUMNS
from pipelines.trade_report import FIRST_DATA_LINE, PRICE_PATTERN, TIME_FORMAT

SCALE = 10_000
_PANDAS_TIME_FORMAT = TIME_FORMAT.replace("%.f", ".%f")
# The pipeline's pattern without its anchors and with a non-capturing group, as fullmatch wants.
_PRICE_FULL = PRICE_PATTERN.strip("^$").replace("(", "(?:")


def load(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed rows, rejected rows with reason) of a trade report."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    raw.insert(0, "line", np.arange(FIRST_DATA_LINE, FIRST_DATA_LINE + len(raw)))
    qty = pd.to_numeric(raw["qty"].str.strip(), errors="coerce", downcast=None)
    price_ok = raw["price"].str.fullmatch(_PRICE_FULL, na=False)
    text = raw["price"].str.strip().where(price_ok)
    negative = text.str.startswith("-", na=False)
    parts = text.str.lstrip("-").str.split(".", n=1, expand=True).reindex(columns=[0, 1])
    whole = pd.to_numeric(parts[0], errors="coerce")
    fraction = pd.to_numeric(parts[1].fillna("").str.ljust(4, "0"), errors="coerce")
    ticks = (whole * SCALE + fraction) * np.where(negative, -1, 1)
    exec_time = pd.to_datetime(
        raw["exec_time"], format=_PANDAS_TIME_FORMAT, utc=True, errors="coerce"
    )
    reason = pd.Series(pd.NA, index=raw.index, dtype="object")
    reason = reason.mask(exec_time.isna(), "exec_time is not ISO 8601 UTC")
    reason = reason.mask(ticks.isna() & raw["price"].notna(), "price is not a decimal")
    reason = reason.mask(qty.isna() & raw["qty"].notna(), "qty is not a whole number")
    reason = reason.mask(raw["exec_time"].isna(), "missing fields")
    good = reason.isna()
    rows = raw.loc[good, ["line", *REPORT_COLUMNS[:4]]].assign(
        qty=qty[good].astype("int64"),
        price=ticks[good].astype("int64"),
        exec_time=exec_time[good],
    )
    return rows, raw.loc[~good].assign(reason=reason[~good])


def _cash(frame: pd.DataFrame, side: str, qty: pd.Series, price: pd.Series) -> pd.Series:
    cash = (qty * price).fillna(0)
    return cash.where(frame[side] == "SELL", -cash)


def compare(report: pd.DataFrame, internal: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """(matched pairs, breaks with kind, keys and impacts), as pipelines.compare does it."""
    ex = report[[*KEYS, "symbol", "side", "qty", "price", "line"]].rename(
        columns={c: f"ex_{c}" for c in ("symbol", "side", "qty", "price", "line")}
    )
    inn = internal[[*KEYS, "symbol", "side", "qty", "price", "user_id"]].rename(
        columns={c: f"in_{c}" for c in ("symbol", "side", "qty", "price", "user_id")}
    )
    joined = ex.merge(inn, on=list(KEYS), how="outer")
    has_ex, has_in = joined["ex_line"].notna(), joined["in_qty"].notna()
    both = has_ex & has_in
    same_symbol = joined["ex_symbol"] == joined["in_symbol"]
    same_side = joined["ex_side"] == joined["in_side"]
    same_qty = joined["ex_qty"] == joined["in_qty"]
    same_price = joined["ex_price"] == joined["in_price"]
    matched = both & same_symbol & same_side & same_qty & same_price
    whole = _cash(joined, "ex_side", joined["ex_qty"], joined["ex_price"]) - _cash(
        joined, "in_side", joined["in_qty"], joined["in_price"]
    )
    ex_sign = np.where(joined["ex_side"] == "SELL", -1, 1)
    in_sign = np.where(joined["in_side"] == "SELL", -1, 1)
    position = (joined["ex_qty"].fillna(0) * ex_sign) - (joined["in_qty"].fillna(0) * in_sign)
    joined = joined.assign(cash_impact=whole, position_impact=position)
    instrument_ok = same_symbol & same_side
    parts = [
        joined[~has_in].assign(kind="MISSING_INTERNAL"),
        joined[~has_ex].assign(kind="MISSING_EXTERNAL"),
        joined[both & ~same_symbol].assign(kind="SYMBOL_MISMATCH"),
        joined[both & same_symbol & ~same_side].assign(kind="SIDE_MISMATCH"),
    ]
    qty_rows = joined[both & instrument_ok & ~same_qty]
    parts.append(
        qty_rows.assign(
            kind="QTY_MISMATCH",
            cash_impact=_cash(
                qty_rows, "ex_side", qty_rows["ex_qty"] - qty_rows["in_qty"], qty_rows["in_price"]
            ),
        )
    )
    price_rows = joined[both & instrument_ok & ~same_price]
    parts.append(
        price_rows.assign(
            kind="PRICE_MISMATCH",
            cash_impact=_cash(
                price_rows,
                "ex_side",
                price_rows["ex_qty"],
                price_rows["ex_price"] - price_rows["in_price"],
            ),
            position_impact=0,
        )
    )
    breaks = pd.concat(parts, ignore_index=True)
    return int(matched.sum()), breaks
