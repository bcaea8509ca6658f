"""Each ceiling measured tiny against the real stack: structure and positive figures, no timing."""

from __future__ import annotations

import psycopg
import pytest

from bench import kafka_ceiling, pg_ceiling
from bench.host import host_info
from bench.report import HostInfo
from core.settings import Settings

pytestmark = pytest.mark.integration

TINY_PGBENCH = pg_ceiling.PgbenchLoad(clients=2, threads=2, duration_s=2)


@pytest.fixture(scope="module")
def host(running_stack: Settings) -> HostInfo:
    return host_info(running_stack)


def _bench_database_exists(settings: Settings) -> bool:
    with psycopg.connect(settings.pg_dsn_for("postgres")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (pg_ceiling.BENCH_DATABASE,)
        ).fetchone()
    return row is not None and row[0] == 1


def test_host_info_names_cores_cpu_and_versions(host: HostInfo) -> None:
    assert host.nproc >= 1
    assert host.cpu_model
    assert host.versions["postgresql"][0].isdigit()
    assert host.versions["pgbench"][0].isdigit()
    assert host.versions["librdkafka"][0].isdigit()


def test_pgbench_builtin_ceiling(running_stack: Settings, host: HostInfo) -> None:
    ceiling = pg_ceiling.measure_tpcb(running_stack, host, TINY_PGBENCH, scale=1)

    assert ceiling.name == "pgbench.tpcb"
    assert ceiling.unit == "tps"
    assert ceiling.value > 0
    assert ceiling.details["transactions"] > 0
    assert ceiling.details["latency_ms_avg"] > 0
    assert ceiling.conditions["scale"] == 1
    assert ceiling.conditions["clients"] == 2
    assert ceiling.conditions["duration_s"] == 2
    assert not _bench_database_exists(running_stack)


def test_pgbench_custom_script_ceiling_keeps_the_ledger_balanced(
    running_stack: Settings, host: HostInfo
) -> None:
    # measure_transfer raises if the balances' total moved or the entries do not sum to zero.
    ceiling = pg_ceiling.measure_transfer(running_stack, host, TINY_PGBENCH, wallets=100)

    assert ceiling.name == "pgbench.transfer"
    assert ceiling.value > 0
    assert ceiling.details["transactions"] > 0
    assert ceiling.details["failed"] == 0
    assert ceiling.conditions["wallets"] == 100
    assert not _bench_database_exists(running_stack)


def test_kafka_ceiling_reads_exactly_the_messages_written(
    running_stack: Settings, host: HostInfo
) -> None:
    load = kafka_ceiling.KafkaLoad(messages=20_000, partitions=4, deadline_s=120.0)

    ceiling = kafka_ceiling.measure(running_stack, host, load)

    assert ceiling.name == "kafka.consume"
    assert ceiling.unit == "msgs/s"
    assert ceiling.value > 0
    assert ceiling.details["messages_read"] == 20_000
    assert ceiling.details["bytes_read"] == 20_000 * 100
    assert ceiling.details["producer_msgs_per_s"] > 0
    assert ceiling.conditions["partitions"] == 4
