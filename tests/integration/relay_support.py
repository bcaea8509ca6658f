"""The outbox relay run in a thread of the test, for tests that need the outbox published."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.settings import Settings
from streams.outbox_relay import run

RELAY_STOP_TIMEOUT_S = 10.0


@contextmanager
def running_relay(settings: Settings) -> Iterator[threading.Thread]:
    """Relay the outbox of ``settings``' database until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(settings, stop), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=RELAY_STOP_TIMEOUT_S)
