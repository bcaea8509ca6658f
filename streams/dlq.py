"""Dead letters: a message an agent cannot process goes to ``<topic>.dlq`` with the error."""

from __future__ import annotations

import logging
import time

from core.contracts import DEAD_LETTERS, dead_letter
from streams.app import app, raw_topic, settings

log = logging.getLogger(__name__)


async def send_to_dlq(
    *,
    agent: str,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: BaseException,
) -> None:
    """Publish the raw message and the reason it failed; the stream goes on."""
    letter = dead_letter(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value or b"",
        error=error,
        consumer=agent,
        ts_failed_ns=time.time_ns(),
    )
    log.warning("%s: dead letter from %s[%d]@%d: %s", agent, source_topic, partition, offset, error)
    await raw_topic(settings.dlq_topic(source_topic)).send(
        key=key, value=DEAD_LETTERS.encode(letter)
    )


__all__ = ["app", "send_to_dlq"]
