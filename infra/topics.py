"""The Kafka topics of ARCHITECTURE.md section 3, created with explicit partitions and configs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from core.contracts.orders import ORDER_UPDATES_TOPIC
from core.settings import Settings

log = logging.getLogger(__name__)

ADMIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TopicSpec:
    """A topic the project owns: its name, partition count and broker-side configs."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the platform, dead-letter topics included."""
    sources = [
        TopicSpec(
            settings.topic_ticks,
            settings.partitions_ticks,
            {"retention.ms": str(settings.retention_ticks_ms)},
        ),
        # Compacted: a new consumer reads the latest price per symbol, not the history.
        TopicSpec(
            settings.topic_conflated,
            settings.partitions_conflated,
            {
                "cleanup.policy": "compact",
                "min.cleanable.dirty.ratio": "0.1",
                "segment.ms": "600000",
            },
        ),
        TopicSpec(settings.topic_orders, settings.partitions_orders),
        TopicSpec(settings.topic_execution_reports, settings.partitions_execution_reports),
        TopicSpec(ORDER_UPDATES_TOPIC, settings.partitions_order_updates),
    ]
    dlqs = [TopicSpec(settings.dlq_topic(s.name), settings.partitions_dlq) for s in sources]
    return sources + dlqs


def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create missing topics and grow any with too few partitions; return the names created."""
    specs = topic_specs(settings) if specs is None else specs
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    s.partitions,
                    settings.kafka_replication_factor,
                    config={
                        "min.insync.replicas": str(settings.kafka_min_insync_replicas),
                        **s.config,
                    },
                )
                for s in missing
            ],
            operation_timeout=ADMIN_TIMEOUT_S,
            request_timeout=ADMIN_TIMEOUT_S,
        )
        for name, future in futures.items():
            future.result()
            log.info("created topic %s", name)
    too_small = [
        s for s in specs if s.name in existing and len(existing[s.name].partitions) < s.partitions
    ]
    if too_small:
        futures = admin.create_partitions(
            [NewPartitions(s.name, s.partitions) for s in too_small],
            request_timeout=ADMIN_TIMEOUT_S,
        )
        for name, future in futures.items():
            future.result()
            log.info("grew topic %s", name)
    return [s.name for s in missing]
