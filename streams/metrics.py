"""Per-agent metrics (Prometheus) and a liveness check, served by each worker's Faust web server.

Agents call ``observe(agent, n)`` after processing a batch and ``dead_lettered(agent)`` per
dead letter. ``/metrics`` exposes the counters; ``/livez`` fails when an agent has been silent
longer than ``streams_stall_s`` while its topic has lag: silent since its last batch, its
consumer's start (stuck from the start counts too) or the last check that found no lag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from faust.web import Request, Response, View
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from streams.app import app, settings

registry = CollectorRegistry()
events = Counter("stream_events", "Events processed", ["agent"], registry=registry)
dead_letters = Counter("stream_dead_letters", "Events sent to a DLQ", ["agent"], registry=registry)
last_event_ts = Gauge(
    "stream_last_event_timestamp_seconds",
    "When the agent last processed an event",
    ["agent"],
    registry=registry,
)
lag = Gauge("stream_consumer_lag", "Messages behind the log end", ["topic"], registry=registry)

_last_seen_s: dict[str, float] = {}
# The topic each agent consumes (add_lag_source); /livez judges an agent by that topic's lag.
_agent_topics: dict[str, str] = {}
# Consumers outside Faust's (streams/batch_consumer.py) report their lag per topic here.
_lag_sources: dict[str, Callable[[], int]] = {}


def add_lag_source(topic: str, lag_of: Callable[[], int], agents: Sequence[str] = ()) -> None:
    """Count ``lag_of()`` as the lag of ``topic``; ``agents`` consume it, watched from now on."""
    _lag_sources[topic] = lag_of
    now = time.time()
    for agent in agents:
        _agent_topics[agent] = topic
        _last_seen_s.setdefault(agent, now)


def observe(agent: str, count: int = 1) -> None:
    """Record that ``agent`` processed ``count`` events just now."""
    now = time.time()
    events.labels(agent).inc(count)
    last_event_ts.labels(agent).set(now)
    _last_seen_s[agent] = now


def dead_lettered(agent: str) -> None:
    """Record one dead letter of ``agent``."""
    dead_letters.labels(agent).inc()


def _consumer_lag_by_topic() -> dict[str, int]:
    totals: dict[str, int] = {}
    # Faust's own consumer runs only for Faust agents (streams/app.StreamsApp); ours consume in
    # batches and report below.
    if app.agents:
        consumer = app.consumer
        # Faust keeps the committed offsets privately; lag here is "not yet committed".
        committed: dict[object, int | None] = getattr(consumer, "_committed_offset", {})
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp) or 0
            position = committed.get(tp) or 0
            totals[tp.topic] = totals.get(tp.topic, 0) + max(0, highwater - position)
    for topic, lag_of in _lag_sources.items():
        totals[topic] = totals.get(topic, 0) + lag_of()
    return totals


def stalled_agents(now_s: float, lags: dict[str, int]) -> list[str]:
    """Agents silent for longer than the stall limit while their topic has lag to consume."""
    stalled = []
    for agent, seen in list(_last_seen_s.items()):
        if lags.get(_agent_topics.get(agent, ""), 0) <= 0:
            # Nothing to do is not silence: after a quiet hour the first tick must not find the
            # agent "silent for an hour" before its batch is through.
            _last_seen_s[agent] = max(seen, now_s)
        elif now_s - seen > settings.streams_stall_s:
            stalled.append(agent)
    return stalled


@app.page("/metrics")
class MetricsView(View):
    """Prometheus text of this worker's agents."""

    async def get(self, request: Request) -> Response:
        for topic, value in _consumer_lag_by_topic().items():
            lag.labels(topic).set(value)
        # aiohttp refuses a charset inside content_type; the whole value goes in as a header.
        return self.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/livez")
class LivenessView(View):
    """503 when an agent stopped consuming while its lag grows; 200 otherwise."""

    async def get(self, request: Request) -> Response:
        stalled = stalled_agents(time.time(), _consumer_lag_by_topic())
        body = {"status": "stalled" if stalled else "ok", "stalled": stalled}
        return self.json(body, status=503 if stalled else 200)
