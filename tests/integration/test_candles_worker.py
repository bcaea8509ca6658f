"""The candles agent in real worker processes against the real Kafka and PostgreSQL.

Each test produces a generated tick stream (with slightly late ticks, far too late ticks and
poison) to topics of its own, runs workers of a fresh consumer group, and compares every candle
at every width with the answer Polars computes from the generated ticks.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from polars.testing import assert_frame_equal

from core.settings import Settings
from tests.integration.tick_agents_support import (
    WIDTHS_S,
    TickStream,
    WorkerTopics,
    database_candles,
    end_offsets,
    expected_candles,
    generate_stream,
    produce,
    read_dead_letters,
    running_workers,
    seed_symbols,
    ticks_group_of,
    wait_all_applied,
    wait_until,
    worker_topics,
)
from tests.integration.worker_support import (
    Worker,
    allow_connections,
    committed_offset,
    read_all,
    running_worker,
)
from tests.integration.worker_support import worker_topics as outage_topics

pytestmark = pytest.mark.integration

PARTITIONS = 4
RETRIED_BATCH = re.compile(r"candles: batch of \d+ ticks: transient database error")
OUTAGE_WAIT_S = 60.0  # the pool gives up on a connection after pg_connect_timeout_s (5 s)
COORDINATOR_ATTEMPTS_MAX = 20
RETRIABLE = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}


def assert_candles_match(dsn: str, stream: TickStream) -> None:
    for width, width_s in WIDTHS_S.items():
        assert_frame_equal(database_candles(dsn, width), expected_candles(stream.counted, width_s))


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """The offsets the consumer group committed, per partition (-1001: none)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        for _ in range(COORDINATOR_ATTEMPTS_MAX):
            try:
                return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
            except KafkaException as exc:  # the group's coordinator moves while it forms
                if exc.args[0].code() not in RETRIABLE:
                    raise
                time.sleep(0.5)
        raise AssertionError(f"no committed offsets for {group}")
    finally:
        consumer.close()


def group_assignment(settings: Settings, group: str, topic: str) -> list[set[int]]:
    """The partitions of ``topic`` each member of ``group`` holds."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except KafkaException as exc:  # the group's coordinator moves while it forms
        if exc.args[0].code() not in RETRIABLE:
            raise
        return []
    return [
        {tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic}
        for m in description.members
    ]


@pytest.fixture
def names(running_stack: Settings, new_topic: Callable[[int], str]) -> Iterator[WorkerTopics]:
    with worker_topics(running_stack, new_topic, PARTITIONS) as topics:
        yield topics


@pytest.mark.both_backends
def test_one_worker_builds_every_candle_and_dead_letters_the_rest(
    running_stack: Settings, db_dsn: str, names: WorkerTopics, tmp_path: Path
) -> None:
    seed_symbols(db_dsn)
    stream = generate_stream(30_000, seed=11, poison=100, late_beyond_grace=20)
    produce(running_stack, names.ticks, stream.messages)
    with running_workers(running_stack, db_dsn, names, tmp_path):
        wait_all_applied(running_stack, db_dsn, names.ticks)
        letters = read_dead_letters(
            running_stack,
            names.dlq,
            lambda ls: sum(1 for x in ls if x.consumer == "candles") >= 120,
            quiet_s=2.0,
        )
    assert_candles_match(db_dsn, stream)
    mine = [x for x in letters if x.consumer == "candles"]
    assert Counter(x.error_type for x in mine) == Counter(
        {
            "ContractError": 100 - stream.poison_unknown,
            "UnknownSymbolError": stream.poison_unknown,
            "LateTickError": 20,
        }
    )
    assert len({(x.partition, x.offset) for x in mine}) == 120
    assert all(x.source_topic == names.ticks for x in mine)
    # One letter per bad tick: the tick agents share one decode, and candles owns the letters.
    assert len(letters) == 120


def test_two_workers_share_the_partitions_and_build_the_same_candles(
    running_stack: Settings, db_dsn: str, names: WorkerTopics, tmp_path: Path
) -> None:
    seed_symbols(db_dsn)
    stream = generate_stream(30_000, seed=12, poison=100, late_beyond_grace=20)
    with running_workers(running_stack, db_dsn, names, tmp_path, count=2) as workers:
        group = workers.ticks_group
        wait_until(
            lambda: (
                sorted(len(a) for a in group_assignment(running_stack, group, names.ticks))
                == [PARTITIONS // 2, PARTITIONS // 2]
            ),
            "two workers sharing the partitions",
        )
        produce(running_stack, names.ticks, stream.messages)
        wait_all_applied(running_stack, db_dsn, names.ticks)
    assert_candles_match(db_dsn, stream)


def test_a_replay_from_the_start_counts_nothing_twice(
    running_stack: Settings, db_dsn: str, names: WorkerTopics, tmp_path: Path
) -> None:
    seed_symbols(db_dsn)
    stream = generate_stream(10_000, seed=13, poison=100, late_beyond_grace=20)
    produce(running_stack, names.ticks, stream.messages)
    with running_workers(running_stack, db_dsn, names, tmp_path) as workers:
        wait_all_applied(running_stack, db_dsn, names.ticks)
        workers.stop_all()
        # A fresh consumer group reads every offset again.
        replay = workers.start(app_id=workers.app_id + "-replay")
        ends = end_offsets(running_stack, names.ticks)
        replay_group = ticks_group_of(workers.app_id + "-replay", names.ticks)
        wait_until(
            lambda: committed_offsets(running_stack, replay_group, names.ticks) == ends,
            "the replaying group to commit every offset",
        )
        workers.stop(replay)
    assert_candles_match(db_dsn, stream)
    letters = read_dead_letters(
        running_stack,
        names.dlq,
        lambda ls: sum(1 for x in ls if x.consumer == "candles") >= 120,
        quiet_s=3.0,
    )
    assert sum(1 for x in letters if x.consumer == "candles") == 120  # none sent twice


def livez(worker: Worker) -> tuple[int, list[str]]:
    """The worker's /livez status code and the agents it names stalled."""
    answer = httpx.get(f"http://127.0.0.1:{worker.web_port}/livez", timeout=5)
    return answer.status_code, answer.json()["stalled"]


def test_a_database_outage_stalls_the_candles_agent_visibly_and_loses_no_tick(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> None:
    settings = running_stack
    seed_symbols(db_dsn)
    stream = generate_stream(5_000, seed=14)
    # The candles agent alone: in a full worker the agent before it in the batch stalls first.
    with outage_topics(settings, new_topic) as made:
        produce(settings, made.ticks, stream.messages)
        allow_connections(settings, db_dsn, False)
        try:
            with running_worker(
                settings, db_dsn, made, tmp_path, "streams.candles", BROKER_STREAMS_STALL_S="2"
            ) as worker:
                wait_until(
                    lambda: RETRIED_BATCH.search(worker.log_tail(1_000_000)) is not None,
                    "the candles agent to retry a batch",
                    timeout_s=OUTAGE_WAIT_S,
                )
                group = worker.group_of(made.ticks)
                assert committed_offset(settings, group, made.ticks) == 0
                wait_until(
                    lambda: livez(worker) == (503, ["candles"]),
                    "/livez to report the candles agent stalled",
                )
                allow_connections(settings, db_dsn, True)
                wait_all_applied(settings, db_dsn, made.ticks)
                wait_until(lambda: livez(worker) == (200, []), "/livez to be ok again")
        finally:
            allow_connections(settings, db_dsn, True)
        assert_candles_match(db_dsn, stream)
        assert read_all(settings, settings.dlq_topic(made.ticks), wait_s=1) == []
