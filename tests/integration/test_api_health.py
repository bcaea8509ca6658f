"""The API process reports its own health and whether its dependencies answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.settings import Settings

pytestmark = pytest.mark.integration


def test_readyz_says_ok_when_postgres_and_kafka_answer(running_stack: Settings) -> None:
    with TestClient(create_app(running_stack)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"postgres": "ok", "kafka": "ok"}


def test_readyz_answers_503_with_reasons_when_postgres_is_away(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"pg_port": 1, "kafka_port": 1, "pg_connect_timeout_s": 1})
    with TestClient(create_app(nowhere)) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["postgres"].startswith("error")
    assert response.json()["kafka"].startswith("error")


def test_readyz_stays_200_without_kafka_since_orders_need_only_postgres(
    running_stack: Settings,
) -> None:
    no_kafka = running_stack.model_copy(update={"kafka_port": 1})
    with TestClient(create_app(no_kafka)) as client:
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["postgres"] == "ok"
    assert response.json()["kafka"].startswith("error")


def test_metrics_count_requests_by_route_template(running_stack: Settings) -> None:
    with TestClient(create_app(running_stack)) as client:
        client.get("/healthz")
        client.get("/v1/orders/00000000-0000-0000-0000-000000000000")
        body = client.get("/metrics").text

    assert 'api_requests_total{method="GET",route="/healthz",status="200"} 1.0' in body
    # Ids never become label values: the route template does.
    assert 'route="/v1/orders/{order_id}",status="401"' in body
    assert "00000000-0000" not in body
