"""Settings: environment variables in, frozen values out, no dev secrets in production."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pydantic
import pytest
from psycopg.conninfo import conninfo_to_dict

from core.settings import Settings
from infra.migrate import yoyo_url


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_KAFKA_PORT", "19092")
    monkeypatch.setenv("BROKER_TOPIC_TICKS", "md.ticks.v2")

    settings = Settings()

    assert settings.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert settings.topic_ticks == "md.ticks.v2"
    assert settings.dlq_topic(settings.topic_ticks) == "md.ticks.v2.dlq"


@pytest.mark.parametrize(
    ("nodes", "replicas", "in_sync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_kafka_keeps_three_copies_at_most_and_all_but_one_in_sync(
    nodes: int, replicas: int, in_sync: int
) -> None:
    settings = Settings(kafka_nodes=nodes)

    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (
        replicas,
        in_sync,
    )
    assert len(settings.kafka_bootstrap.split(",")) == nodes


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(pydantic.ValidationError):
        settings.pg_port = 1


def test_production_refuses_the_development_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROKER_MODE", "production")

    with pytest.raises(pydantic.ValidationError, match="BROKER_PG_PASSWORD must be set"):
        Settings()

    for name in (
        "PG_PASSWORD",
        "JWT_SECRET",
        "ENCRYPTION_SECRET",
        "GATEWAY_WEBHOOK_SECRET",
        "REDIS_PASSWORD",
    ):
        monkeypatch.setenv(f"BROKER_{name}", f"a-real-{name.lower()}")
    assert Settings().mode == "production"


def test_conflation_interval_outside_200_to_500_ms_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROKER_CONFLATION_MS", "50")

    with pytest.raises(pydantic.ValidationError, match="conflation_ms"):
        Settings()


def test_dsn_and_url_carry_the_password_for_the_driver() -> None:
    settings = Settings(pg_password=pydantic.SecretStr("p@ss word"), pg_port=5999, pg_ha=False)

    assert "password=p@ss word" not in repr(settings)
    assert "port=5999" in settings.pg_dsn
    assert settings.pg_dsn_for("other").endswith("connect_timeout=5") is True
    assert "dbname=other" in settings.pg_dsn_for("other")


def test_with_ha_every_connection_string_names_both_nodes_and_the_role_it_wants() -> None:
    settings = Settings(pg_ha=True, pg_port=6000)

    write = conninfo_to_dict(settings.pg_dsn)
    read = conninfo_to_dict(settings.pg_read_dsn)

    assert (write["host"], write["port"]) == ("127.0.0.1,127.0.0.1", "6000,6001")
    assert write["target_session_attrs"] == "read-write"
    assert read["target_session_attrs"] == "prefer-standby"
    assert read["port"] == "6000,6001"
    migrations = parse_qs(urlsplit(yoyo_url(settings.pg_dsn)).query)
    assert migrations == {
        "host": ["127.0.0.1,127.0.0.1"],
        "port": ["6000,6001"],
        "target_session_attrs": ["read-write"],
    }


def test_with_ha_on_hosts_of_their_own_each_node_listens_on_the_same_port() -> None:
    settings = Settings(pg_ha=True, pg_ha_hosts=("pg-1", "pg-2"), pg_port=5432)

    assert settings.pg_addresses == (("pg-1", 5432), ("pg-2", 5432))
    assert "host=pg-1,pg-2 port=5432,5432" in settings.pg_dsn


def test_without_ha_the_connection_string_is_one_host_and_reads_share_it() -> None:
    settings = Settings(pg_port=6000, pg_ha=False)

    assert settings.pg_read_dsn == settings.pg_dsn
    assert "target_session_attrs" not in settings.pg_dsn
    assert "," not in str(conninfo_to_dict(settings.pg_dsn)["host"])
