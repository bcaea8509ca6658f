"""The one Faust app of the platform and the topics its agents read and write.

Faust apps are process-wide singletons: the app is built here once from the settings, and each
agent module (streams/settle.py, candles.py, conflate.py, stops.py) registers on it. The agents
consume in batches below Faust's per-event streams (streams/batch_consumer.py says why); Faust
runs the worker, its tasks and timers, the web page, and produces (dead letters, md.conflated).
Values travel as raw bytes; agents decode them with core.contracts codecs, so a bad payload
becomes a dead letter instead of a crashed stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import ProducerT
from mode import ServiceT

from core.gc_tuning import tune_gc
from core.settings import Settings, get_settings


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's Kafka producer with acks=all and idempotence, outside transactions too."""

    def _settings_extra(self) -> dict[str, Any]:
        # Faust turns idempotence on only inside its transactions; a retried send of a dead
        # letter or a conflated price must not be written twice either.
        return {"acks": "all", "enable_idempotence": True}


class StreamsApp(faust.App):
    """Faust's App, starting Faust's own consumer only when a Faust agent needs it."""

    def __init__(self, app_id: str, *, gc_gen0_threshold: int = 0, **options: Any) -> None:
        super().__init__(app_id, **options)
        self.gc_gen0_threshold = gc_gen0_threshold

    def _new_producer(self) -> ProducerT:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        """The services started with the app (called once, at start, after agents registered)."""
        # The tick agents consume below Faust (streams/batch_consumer.py). A worker with no
        # Faust agent would make Faust's consumer subscribe to nothing, which aiokafka refuses.
        self.boot_strategy.enable_kafka_consumer = bool(self.agents)
        return super().on_init_dependencies()

    async def on_first_start(self) -> None:
        """Once per process, when every agent module is imported: tune the collector."""
        await super().on_first_start()
        tune_gc(self.gc_gen0_threshold)


def create_app(settings: Settings) -> faust.App:
    """A Faust app bound to the project's Kafka; state lives in PostgreSQL, not in Faust tables."""
    return StreamsApp(
        settings.streams_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.streams_data_dir or settings.state_dir / "streams"),
        web_host=settings.streams_web_host,
        web_port=settings.streams_web_port,
        consumer_auto_offset_reset="earliest",
        # Our topics are created by infra/topics.py with their partition counts and configs.
        topic_allow_declare=False,
        topic_disable_leader=True,
        producer_acks=-1,
        broker_commit_interval=settings.streams_commit_interval_ms / 1000,
        gc_gen0_threshold=settings.streams_gc_gen0_threshold,
    )


settings = get_settings()
app = create_app(settings)


def raw_topic(name: str) -> faust.TopicT:
    """A topic of raw bytes (key and value): decoding is the agent's job."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
    )


conflated_topic = raw_topic(settings.topic_conflated)
