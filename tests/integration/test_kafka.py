"""The project's Kafka broker: topics exist as declared, messages round-trip."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from core.contracts import TICKS, Tick
from core.exceptions import ContractError
from core.settings import Settings
from infra import topics

pytestmark = pytest.mark.integration

POLL_DEADLINE_S = 30.0


def _consume(settings: Settings, topic: str, count: int) -> list[tuple[bytes | None, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[tuple[bytes | None, bytes]] = []
    try:
        for _ in range(int(POLL_DEADLINE_S)):
            for msg in consumer.consume(num_messages=count, timeout=1.0):
                assert msg.error() is None, msg.error()
                value = msg.value()
                assert value is not None
                received.append((msg.key(), value))
            if len(received) >= count:
                break
    finally:
        consumer.close()
    return received


def test_produced_messages_are_consumed_back_in_partition_order(
    running_stack: Settings, new_topic: Callable[[int], str]
) -> None:
    topic = new_topic(3)
    producer = Producer({"bootstrap.servers": running_stack.kafka_bootstrap, "acks": "all"})
    sent = [(f"SYM{i % 3}".encode(), f"message-{i}".encode()) for i in range(300)]
    for key, value in sent:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    received = _consume(running_stack, topic, len(sent))

    assert sorted(received) == sorted(sent)
    for symbol in {key for key, _ in sent}:
        # One key lands on one partition, so its messages keep their order.
        assert [v for k, v in received if k == symbol] == [v for k, v in sent if k == symbol]


def test_every_declared_topic_exists_with_its_partitions(running_stack: Settings) -> None:
    metadata = AdminClient({"bootstrap.servers": running_stack.kafka_bootstrap}).list_topics(
        timeout=10
    )
    specs = topics.topic_specs(running_stack)

    assert {s.name for s in specs} <= set(metadata.topics)
    for spec in specs:
        assert len(metadata.topics[spec.name].partitions) == spec.partitions, spec.name
    assert running_stack.dlq_topic(running_stack.topic_ticks) in metadata.topics


def test_conflated_topic_is_compacted(running_stack: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": running_stack.kafka_bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, running_stack.topic_conflated)

    configs = admin.describe_configs([resource])[resource].result(timeout=10)

    assert configs["cleanup.policy"].value == "compact"


def test_ensuring_topics_twice_creates_nothing_the_second_time(running_stack: Settings) -> None:
    assert topics.ensure_topics(running_stack) == []


def test_a_contract_travels_through_a_real_topic_and_garbage_raises_the_contract_error(
    running_stack: Settings, new_topic: Callable[[int], str]
) -> None:
    topic = new_topic(1)
    tick = Tick(symbol="INFY", price=Decimal("1520.0500"), size=25, ts_event_ns=1, seq=7)
    producer = Producer({"bootstrap.servers": running_stack.kafka_bootstrap})
    producer.produce(topic, key=tick.kafka_key(), value=TICKS.encode(tick))
    producer.produce(topic, key=b"INFY", value=b'{"type": "tick.v1", "symbol": "INFY"}')
    assert producer.flush(30) == 0

    (key, good), (_, bad) = _consume(running_stack, topic, 2)

    assert key == b"INFY"
    assert TICKS.decode(good) == tick
    with pytest.raises(ContractError, match="tick"):
        TICKS.decode(bad, topic=topic)
