"""GET /v1/market/candles as CSV and Parquet: the same candles as JSON, the same refusals."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import polars as pl
import psycopg
import pytest

from tests.integration.api.conftest import MakeUser

# The same on TimescaleDB and on plain PostgreSQL.
pytestmark = [pytest.mark.integration, pytest.mark.both_backends]

T0 = datetime(2024, 9, 16, 14, 0, tzinfo=UTC)
MINUTES = 2_500  # more than one streamed chunk of CSV rows
WINDOW: dict[str, str | int] = {
    "symbol": "ACME",
    "interval": "1m",
    "start": T0.isoformat(),
    "end": (T0 + timedelta(minutes=MINUTES)).isoformat(),
    "limit": 5_000,
}


def _seed_candles(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO instruments (symbol) VALUES ('ACME') ON CONFLICT DO NOTHING")
        conn.cursor().executemany(
            "INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close,"
            " volume, trade_count)"
            " VALUES ('ACME', interval '1 minute', %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    T0 + timedelta(minutes=i),
                    Decimal("100.0000") + i,
                    Decimal("101.2500") + i,
                    Decimal("99.5000") + i,
                    Decimal("100.7500") + i,
                    10 + i,
                    1 + i % 7,
                )
                for i in range(MINUTES)
            ],
        )


def _json_rows(body: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            datetime.fromisoformat(c["ts"]).astimezone(UTC).isoformat(),
            str(Decimal(c["open"])),
            str(Decimal(c["high"])),
            str(Decimal(c["low"])),
            str(Decimal(c["close"])),
            str(c["volume"]),
            str(c["trades"]),
        )
        for c in body["candles"]
    ]


def _frame_rows(frame: pl.DataFrame) -> list[tuple[str, ...]]:
    return [
        (ts.astimezone(UTC).isoformat(), *(str(Decimal(v)) for v in prices), str(vol), str(n))
        for ts, *prices, vol, n in frame.iter_rows()
    ]


async def test_csv_and_parquet_hold_the_same_candles_as_json(
    client: httpx.AsyncClient, make_user: MakeUser, db_dsn: str
) -> None:
    _seed_candles(db_dsn)
    made = await make_user()
    as_json = await client.get("/v1/market/candles", params=WINDOW, headers=made.headers)
    as_csv = await client.get(
        "/v1/market/candles", params=WINDOW, headers={**made.headers, "Accept": "text/csv"}
    )
    as_parquet = await client.get(
        "/v1/market/candles", params={**WINDOW, "format": "parquet"}, headers=made.headers
    )

    assert as_json.status_code == as_csv.status_code == as_parquet.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert 'filename="ACME_1m.csv"' in as_csv.headers["content-disposition"]
    expected = _json_rows(as_json.json())
    assert len(expected) == MINUTES
    csv_frame = pl.read_csv(io.BytesIO(as_csv.content), infer_schema=False)
    assert csv_frame.columns == ["ts", "open", "high", "low", "close", "volume", "trades"]
    csv_rows = [
        (datetime.fromisoformat(r[0]).isoformat(), *(str(Decimal(v)) for v in r[1:5]), r[5], r[6])
        for r in csv_frame.iter_rows()
    ]
    assert csv_rows == expected
    parquet = pl.read_parquet(io.BytesIO(as_parquet.content))
    assert parquet.schema["open"] == pl.Decimal(18, 4)
    assert _frame_rows(parquet) == expected


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"start": "2024-09-17T00:00:00Z", "end": "2024-09-16T00:00:00Z"}, 422, "invalid_range"),
        ({"limit": 0}, 422, "invalid_limit"),
        ({"interval": "1s", "start": "2024-01-01T00:00:00Z"}, 422, "range_too_large"),
        ({"symbol": "NOSUCH"}, 404, "unknown_symbol"),
        ({"format": "xml"}, 422, "validation_failed"),
    ],
)
async def test_csv_and_parquet_refuse_what_json_refuses_in_the_error_envelope(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    db_dsn: str,
    fmt: str,
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    _seed_candles(db_dsn)
    made = await make_user()
    answer = await client.get(
        "/v1/market/candles",
        params={**WINDOW, "format": fmt, **params},
        headers=made.headers,
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code
