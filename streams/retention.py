"""Retention: deletes done outbox rows and expired idempotency keys, in bounded batches.

The rules (what is done, how old, oldest first) live in SQL (sql/migrations/0039_retention.sql);
this module only calls them on a timer. It runs as a thread of every outbox relay process, and
like the relay one instance leads at a time through a session advisory lock of its own, so two
purgers never delete the same rows twice over. Purging is housekeeping: a failure is logged and
retried after the interval, and it never touches a row the relay still has to publish.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from core.db import try_advisory_lock
from core.settings import Settings

log = logging.getLogger(__name__)

# The advisory lock the purgers compete for (an arbitrary constant: "retain01").
ADVISORY_LOCK_KEY = 0x72657461696E3031
APPLICATION_NAME_PREFIX = "retention:"


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows one round deleted from each table."""

    outbox: int
    idempotency_keys: int

    def full(self, batch_max: int) -> bool:
        """True when either table gave a whole batch: more may be waiting."""
        return max(self.outbox, self.idempotency_keys) >= batch_max


def purge_once(conn: psycopg.Connection[Any], settings: Settings) -> Purged:
    """Delete one batch of each kind of done row; each statement commits on its own."""
    batch = settings.retention_batch_max
    outbox = conn.execute(
        "SELECT outbox_purge(%s, %s)", (timedelta(seconds=settings.outbox_retention_s), batch)
    ).fetchone()
    keys = conn.execute(
        "SELECT idempotency_keys_purge(%s, %s)",
        (timedelta(seconds=settings.idempotency_key_retention_s), batch),
    ).fetchone()
    return Purged(int(outbox[0]) if outbox else 0, int(keys[0]) if keys else 0)


def run(settings: Settings, stop: threading.Event) -> None:
    """Purge until ``stop`` is set: lead (or stand by), delete, sleep; survive any failure."""
    while not stop.is_set():
        try:
            _session(settings, stop)
        except psycopg.Error as exc:
            log.warning(
                "retention failed (%s); retrying in %.0fs", exc, settings.retention_interval_s
            )
            stop.wait(settings.retention_interval_s)


def _session(settings: Settings, stop: threading.Event) -> None:
    name = f"{APPLICATION_NAME_PREFIX}{os.getpid()}"
    with psycopg.connect(settings.pg_dsn, autocommit=True, application_name=name) as conn:
        while not try_advisory_lock(conn, ADVISORY_LOCK_KEY):
            if stop.wait(settings.retention_interval_s):
                return
        while not stop.is_set():
            purged = purge_once(conn, settings)
            if purged.outbox or purged.idempotency_keys:
                log.info(
                    "retention deleted %d outbox rows and %d idempotency keys",
                    purged.outbox,
                    purged.idempotency_keys,
                )
            if not purged.full(settings.retention_batch_max):
                stop.wait(settings.retention_interval_s)


def start(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Run the purger in a daemon thread until ``stop`` is set; return the thread."""
    thread = threading.Thread(target=run, args=(settings, stop), name="retention", daemon=True)
    thread.start()
    return thread
