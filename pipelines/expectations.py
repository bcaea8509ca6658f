"""Great Expectations suites for the trade report and the day's candles, on an in-memory context.

Each check validates a few expectations against a pandas copy of a Polars frame and returns
whether all passed and, for each failed expectation, which rows broke it (by the report's line
number, or by symbol and minute for candles), so a failed asset check names the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import great_expectations as gx
import pandas as pd
import polars as pl
from great_expectations.data_context.data_context.ephemeral_data_context import (
    EphemeralDataContext,
)
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.core.expect_column_pair_values_a_to_be_greater_than_b import (
    ExpectColumnPairValuesAToBeGreaterThanB,
)
from great_expectations.expectations.core.expect_column_values_to_be_between import (
    ExpectColumnValuesToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_in_set import (
    ExpectColumnValuesToBeInSet,
)
from great_expectations.expectations.core.expect_column_values_to_be_unique import (
    ExpectColumnValuesToBeUnique,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
    ExpectColumnValuesToNotBeNull,
)
from great_expectations.expectations.core.expect_table_columns_to_match_ordered_list import (
    ExpectTableColumnsToMatchOrderedList,
)
from great_expectations.expectations.core.expect_table_row_count_to_equal import (
    ExpectTableRowCountToEqual,
)

from pipelines.candles import MINUTE_S
from pipelines.schema import REPORT_SCHEMA, SIDES

ROWS_SHOWN_MAX = 20


@dataclass(frozen=True, slots=True)
class Failure:
    """One expectation that failed: what it expected, how many rows broke it, and some of them."""

    expectation: str
    unexpected_count: int
    rows: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The result of one suite."""

    passed: bool
    failures: list[Failure]
    evaluated: int


@lru_cache(maxsize=1)
def _context() -> EphemeralDataContext:
    # In memory only: nothing written to disk, no usage statistics sent, no progress bars.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    assert isinstance(context, EphemeralDataContext)
    return context


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """A pandas copy of ``frame`` (decimals stay Decimal objects, never float)."""
    return pd.DataFrame({name: frame[name].to_list() for name in frame.columns})


def validate(
    frame: pl.DataFrame, expectations: Sequence[Any], index_columns: Sequence[str]
) -> CheckOutcome:
    """Validate ``expectations`` on ``frame``; failures list rows by ``index_columns``."""
    context = _context()
    source = context.data_sources.add_pandas(f"recon-{uuid.uuid4().hex}")
    try:
        batch = (
            source.add_dataframe_asset("frame")
            .add_batch_definition_whole_dataframe("whole")
            .get_batch(batch_parameters={"dataframe": to_pandas(frame)})
        )
        result_format = {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": list(index_columns),
        }
        failures = []
        for expectation in expectations:
            result = batch.validate(expectation, result_format=result_format)
            if not result.success:
                failures.append(_failure(expectation, result.result, result.exception_info))
    finally:
        context.data_sources.delete(source.name)
    return CheckOutcome(not failures, failures, len(expectations))


def _failure(expectation: Any, result: dict[str, Any], error: object) -> Failure:
    rows = [
        {key: str(value) for key, value in row.items()}
        for row in (result.get("unexpected_index_list") or [])[:ROWS_SHOWN_MAX]
    ]
    if not rows and result.get("observed_value") is not None:
        rows = [{"observed": str(result["observed_value"])}]
    if isinstance(error, dict) and error.get("raised_exception"):
        rows.append({"error": str(error.get("exception_message"))})
    described = f"{expectation.expectation_type}({_arguments(expectation)})"
    return Failure(described, int(result.get("unexpected_count") or 0), rows)


def _arguments(expectation: Any) -> str:
    fields = dict(expectation.configuration.kwargs)
    skipped = ("result_format", "catch_exceptions", "batch_id")
    kept = {k: v for k, v in fields.items() if k not in skipped and v is not None}
    return ", ".join(
        f"{k}={v}" for k, v in kept.items() if v not in (False, "all_values_are_missing")
    )


def report_schema(rows: pl.DataFrame, rejected: pl.DataFrame) -> CheckOutcome:
    """The report has the contract's columns in order, known sides, and no unparseable row."""
    outcome = validate(
        rows,
        [
            ExpectTableColumnsToMatchOrderedList(column_list=list(REPORT_SCHEMA)),
            ExpectColumnValuesToBeInSet(column="side", value_set=list(SIDES)),
        ],
        ["line"],
    )
    unparseable = validate(
        rejected.select("line", "reason"), [ExpectTableRowCountToEqual(value=0)], ["line"]
    )
    if unparseable.passed:
        return outcome
    shown = [
        {"line": str(line), "reason": str(reason)}
        for line, reason in rejected.select("line", "reason").head(ROWS_SHOWN_MAX).iter_rows()
    ]
    set_aside = Failure("rows set aside as unparseable", rejected.height, shown)
    return CheckOutcome(False, [*outcome.failures, set_aside], outcome.evaluated + 1)


def report_keys(rows: pl.DataFrame) -> CheckOutcome:
    """Every row has an exec id and a ClOrdID, and exec ids are unique."""
    return validate(
        rows.select("line", "exec_id", "cl_ord_id"),
        [
            ExpectColumnValuesToNotBeNull(column="exec_id"),
            ExpectColumnValuesToNotBeNull(column="cl_ord_id"),
            ExpectColumnValuesToBeUnique(column="exec_id"),
        ],
        ["line"],
    )


def report_positive(rows: pl.DataFrame) -> CheckOutcome:
    """Every quantity and price is above zero."""
    return validate(
        rows.select("line", "exec_id", "qty", "price"),
        [
            ExpectColumnValuesToBeBetween(column="qty", min_value=0, strict_min=True),
            ExpectColumnValuesToBeBetween(column="price", min_value=0, strict_min=True),
        ],
        ["line", "exec_id"],
    )


def report_within_candles(rows: pl.DataFrame, ranges: pl.DataFrame) -> CheckOutcome:
    """Every price lies within its symbol's low and high of the day (symbols with candles)."""
    joined = rows.select("line", "exec_id", "symbol", "price").join(ranges, on="symbol", how="left")
    return validate(
        joined,
        [
            ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="price",
                column_B="day_low",
                ignore_row_if="either_value_is_missing",
                or_equal=True,
            ),
            ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="day_high",
                column_B="price",
                ignore_row_if="either_value_is_missing",
                or_equal=True,
            ),
        ],
        ["line", "exec_id"],
    )


def candles_consistent(candles: pl.DataFrame) -> CheckOutcome:
    """high >= max(open, close) and low <= min(open, close) on every candle."""
    frame = candles.select(
        "symbol",
        pl.col("minute").cast(pl.String),
        "high",
        "low",
        pl.max_horizontal("open", "close").alias("open_close_max"),
        pl.min_horizontal("open", "close").alias("open_close_min"),
    )
    return validate(
        frame,
        [
            ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="high", column_B="open_close_max", or_equal=True
            ),
            ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="open_close_min", column_B="low", or_equal=True
            ),
        ],
        ["symbol", "minute"],
    )


def candles_without_gaps(gaps: pl.DataFrame) -> CheckOutcome:
    """Within the session no symbol goes a whole minute without a candle."""
    return validate(
        gaps.with_columns(pl.col("minute").cast(pl.String)),
        [ExpectColumnValuesToBeBetween(column="since_previous_s", max_value=MINUTE_S)],
        ["symbol", "minute"],
    )
