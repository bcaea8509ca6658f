"""GET /v1/market/candles equals candles Polars computes from the same ticks.

The ticks go through real Kafka to a real candles worker (1 s, 1 m and 1 d candles in PostgreSQL);
the API rolls them up (migrations 0017 and 0015). Polars computes every width from the raw ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from core.contracts import Tick
from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.tick_agents_support import (
    NS_PER_S,
    SYMBOLS,
    T0_NS,
    WorkerTopics,
    expected_candles,
    generate_stream,
    ohlcv,
    produce,
    running_workers,
    seed_symbols,
    ticks_frame,
    wait_all_applied,
    worker_topics,
)

# The same answers on TimescaleDB and on plain PostgreSQL.
pytestmark = [pytest.mark.integration, pytest.mark.both_backends]

FIXED_S = {"1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86_400}
CALENDAR = {"1w": "1w", "1mo": "1mo"}
T0 = datetime.fromtimestamp(T0_NS // NS_PER_S, UTC)


@pytest.fixture
def names(running_stack: Settings, new_topic: Callable[[int], str]) -> Iterator[WorkerTopics]:
    with worker_topics(running_stack, new_topic, 2) as made:
        yield made


def calendar_candles(ticks: list[Tick], every: str) -> pl.DataFrame:
    """Weekly (Monday) or monthly candles of ``ticks``, in UTC, by Polars."""
    frame = ticks_frame(ticks)
    bucket = pl.from_epoch("ts", time_unit="ns").dt.replace_time_zone("UTC").dt.truncate(every)
    return ohlcv(frame.with_columns(bucket_s=bucket.dt.epoch("s")))


def api_rows(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The API's candles as (bucket_s, open_e4, high_e4, low_e4, close_e4, volume, trades)."""
    return [
        (
            int(datetime.fromisoformat(c["ts"]).timestamp()),
            *(int(Decimal(c[k]) * 10_000) for k in ("open", "high", "low", "close")),
            int(c["volume"]),
            c["trades"],
        )
        for c in body["candles"]
    ]


def polars_rows(frame: pl.DataFrame, symbol: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in frame.filter(pl.col("symbol") == symbol)
        .select("bucket_s", "open", "high", "low", "close", "volume", "trade_count")
        .iter_rows()
    ]


async def test_candles_api_equals_polars_from_the_same_ticks(
    running_stack: Settings,
    db_dsn: str,
    names: WorkerTopics,
    tmp_path: Path,
    client: httpx.AsyncClient,
    make_user: MakeUser,
) -> None:
    seed_symbols(db_dsn)
    stream = generate_stream(6_000, seed=61)
    produce(running_stack, names.ticks, stream.messages)
    with running_workers(running_stack, db_dsn, names, tmp_path):
        wait_all_applied(running_stack, db_dsn, names.ticks)
    made = await make_user()
    wide = {"start": "2024-08-01T00:00:00Z", "end": "2024-11-01T00:00:00Z"}
    # A candle is returned when its bucket starts in [start, end): the window holds whole ones.
    window = {
        "start": (T0 - timedelta(hours=1)).isoformat(),
        "end": (T0 + timedelta(hours=3)).isoformat(),
    }
    for interval, width_s in FIXED_S.items():
        expected = expected_candles(stream.counted, width_s)
        for symbol in SYMBOLS[:3]:
            answer = await client.get(
                "/v1/market/candles",
                params={
                    "symbol": symbol,
                    "interval": interval,
                    "limit": 5000,
                    **(wide if interval == "1d" else window),
                },
                headers=made.headers,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["interval"] == interval
            assert api_rows(answer.json()) == polars_rows(expected, symbol), (interval, symbol)
    for interval, every in CALENDAR.items():
        expected = calendar_candles(stream.counted, every)
        answer = await client.get(
            "/v1/market/candles",
            params={"symbol": SYMBOLS[0], "interval": interval, **wide},
            headers=made.headers,
        )
        assert answer.status_code == 200, answer.text
        assert api_rows(answer.json()) == polars_rows(expected, SYMBOLS[0]), interval


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        (
            {"interval": "1m", "start": "2024-09-17T00:00:00Z", "end": "2024-09-16T00:00:00Z"},
            422,
            "invalid_range",
        ),
        ({"interval": "1m", "limit": 0}, 422, "invalid_limit"),
        # No room before year 1 for the default range: a refusal, not an overflow.
        ({"interval": "1d", "end": "0001-01-02T00:00:00Z"}, 422, "invalid_range"),
        ({"interval": "1m", "limit": 1_000_000}, 422, "invalid_limit"),
        (
            {"interval": "1s", "start": "2024-01-01T00:00:00Z", "end": "2024-09-01T00:00:00Z"},
            422,
            "range_too_large",
        ),
        (
            {"interval": "1d", "start": "1990-01-01T00:00:00Z", "end": "2024-09-01T00:00:00Z"},
            422,
            "range_too_large",
        ),
        ({"interval": "2m"}, 422, None),
        ({"interval": "1m", "symbol": "NOSUCH"}, 404, "unknown_symbol"),
    ],
)
async def test_bad_ranges_limits_and_symbols_are_refused_with_a_reason(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    db_dsn: str,
    params: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    seed_symbols(db_dsn)
    made = await make_user()
    answer = await client.get(
        "/v1/market/candles", params={"symbol": "ACME", **params}, headers=made.headers
    )
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["error"] == code
