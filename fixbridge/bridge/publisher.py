"""Kafka producer of the bridge: execution reports and dead letters, each acknowledged."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from core.contracts import DEAD_LETTERS, EXECUTION_REPORTS, DeadLetter, ExecutionReport
from core.settings import Settings
from fixbridge.bridge.exceptions import PublishError

log = logging.getLogger(__name__)


class _Acks:
    """Collects delivery errors of the messages produced since the last flush."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def report(self, error: KafkaError | None, message: Message) -> None:
        """Record a failed delivery (a confluent-kafka delivery callback)."""
        if error is not None:
            self.errors.append(f"{message.topic()}: {error}")


class KafkaPublisher:
    """Publishes reports keyed by order id and dead letters keyed as their source.

    One per thread: ``flush`` reports the delivery errors of everything this instance produced.
    """

    def __init__(self, settings: Settings) -> None:
        self._reports_topic = settings.topic_execution_reports
        self._timeout_s = settings.bridge_publish_timeout_s
        # Idempotent and acks=all: a retried produce never duplicates a report in the log.
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                "client.id": "fixbridge",
            }
        )
        self._acks = _Acks()

    def publish(self, report: ExecutionReport) -> None:
        """Publish one report and wait for Kafka's acknowledgement; raise ``PublishError``."""
        self._producer.produce(
            self._reports_topic,
            key=report.kafka_key(),
            value=EXECUTION_REPORTS.encode(report),
            on_delivery=self._acks.report,
        )
        self.flush()

    def dead_letter(self, topic: str, letter: DeadLetter) -> None:
        """Produce a dead letter to ``topic``; ``flush`` waits for it."""
        self._producer.produce(
            topic,
            key=letter.kafka_key(),
            value=DEAD_LETTERS.encode(letter),
            on_delivery=self._acks.report,
        )

    def flush(self) -> None:
        """Wait until Kafka acknowledged everything produced; raise ``PublishError`` if not."""
        remaining = self._producer.flush(self._timeout_s)
        errors, self._acks.errors = self._acks.errors, []
        if remaining or errors:
            raise PublishError(
                f"{remaining} messages unacknowledged after {self._timeout_s}s; errors: {errors}"
            )
