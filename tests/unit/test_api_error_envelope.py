"""The error envelope without services: validation sentences, the last-resort 500, the schema."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import errors
from api.main import create_app
from api.validation_summary import PROBLEMS_SHOWN_MAX, safe_text, summarize
from core.settings import Settings

DB_RETRY_AFTER_S = 7


class _Order(BaseModel):
    quantity: int
    price: float


def _app() -> FastAPI:
    """A small app with the envelope installed: one validated body and one route with a bug."""
    app = FastAPI()
    errors.install(app, db_retry_after_s=DB_RETRY_AFTER_S)

    @app.post("/orders")
    async def place(order: _Order) -> dict[str, int]:
        return {"quantity": order.quantity}

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    @app.get("/db-lost")
    async def db_lost() -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    @app.get("/db-read-only")
    async def db_read_only() -> None:
        raise psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only tx")

    return app


def test_a_non_finite_number_is_a_422_naming_the_field_and_not_echoed() -> None:
    client = TestClient(_app())

    response = client.post(
        "/orders",
        content=b'{"quantity": 1e400, "price": 1}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_failed"
    assert body["detail"] == "body field quantity: Input should be a finite number"
    assert body["fields"] == [
        {
            "location": "body",
            "field": "quantity",
            "reason": "Input should be a finite number",
            "type": "finite_number",
        }
    ]


def test_a_bug_answers_500_in_the_envelope_without_its_message() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)

    response = client.get("/bug")

    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "the server failed to answer; the error is logged",
    }


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (
            {"loc": ("body", "items", 0, "price"), "msg": "Field required", "type": "missing"},
            "body field items[0].price: Field required",
        ),
        (
            {"loc": ("query", "limit"), "msg": "Value error, too big", "type": "value_error"},
            "query parameter limit: too big",
        ),
        (
            {"loc": ("header", "x-idempotency-key"), "msg": "Field required", "type": "missing"},
            "header x-idempotency-key: Field required",
        ),
        (
            {"loc": ("body",), "msg": "Field required", "type": "missing"},
            "body: Field required",
        ),
    ],
)
def test_a_validation_error_reads_as_where_which_field_and_why(
    error: dict[str, Any], sentence: str
) -> None:
    assert summarize([error]).detail == sentence


def test_many_validation_errors_are_bounded_and_counted() -> None:
    many = [{"loc": ("body", f"f{i}"), "msg": "bad", "type": "t"} for i in range(25)]

    summary = summarize(many)

    assert len(summary.problems) == PROBLEMS_SHOWN_MAX
    assert summary.detail.endswith(f"and {25 - PROBLEMS_SHOWN_MAX} more")


def test_safe_text_cuts_long_text_and_escapes_a_lone_surrogate() -> None:
    assert safe_text("x" * 50, 10) == "x" * 10 + "..."
    escaped = safe_text("key \ud800", 100)
    assert escaped == "key \\ud800"
    assert json.dumps(escaped, ensure_ascii=False).encode("utf-8")


def test_the_schema_documents_the_envelope_not_fastapis_validation_body() -> None:
    schema = create_app(Settings(mode="test")).openapi()

    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorBody", (method, path, status)


@pytest.mark.parametrize("path", ["/db-lost", "/db-read-only"])
def test_a_database_cut_by_a_failover_is_a_503_with_retry_after_in_the_envelope(path: str) -> None:
    client = TestClient(_app(), raise_server_exceptions=False)

    response = client.get(path)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(DB_RETRY_AFTER_S)
    assert response.json()["error"] == "database_unavailable"
    assert set(response.json()) == {"error", "detail"}
