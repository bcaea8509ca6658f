"""The bridge's leader lease in PostgreSQL: which process may hold the FIX session, fenced.

Several bridge processes run (``bridge_processes``). Each starts as a standby that holds nothing
(no QuickFIX initiator, no Kafka consumer) and polls the ``bridge_lease`` row of its FIX session
(keyed by SenderCompID, sql/migrations/0023) every ``bridge_lease_renew_ms``. It takes the lease
only once the row has expired by the database clock, in one UPDATE that increments the epoch
(the fencing token) and returns it.

The leader renews every renew interval with ``WHERE holder = me AND epoch = my epoch``. Its local
deadline is the monotonic time taken *before* the last successful takeover or renewal plus the
ttl, so it never lies past the expiry PostgreSQL wrote. Every message to the exchange is checked
against that deadline first (``LeaderLease.check``, called by the QuickFIX callbacks and before
each send), and every order record that precedes a NewOrderSingle or a cancel is conditional on
the epoch and an unexpired lease in the same statement (``store.SentOrders``).

The leader exits at once with ``EXIT_LEASE_LOST``, sending nothing more (not even a Logout), when
a renewal is refused (a newer epoch took over, or the lease had expired), when no renewal could
complete before the deadline (PostgreSQL unreachable or slow: a failed attempt is retried at the
renew interval while the deadline allows), or when it finds its deadline passed (it was paused,
e.g. SIGSTOP). The supervisor starts it again, as a standby. A standby takes over at most about
ttl + renew interval after the leader's last renewal (3.5 s with the defaults).

A session advisory lock (the outbox relay's way) would not do: a paused leader keeps its
PostgreSQL session, and with it the lock, for as long as it is paused.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, Protocol

import psycopg

log = logging.getLogger(__name__)

# The exit status of a leader that lost its lease (distinct from 1, a failure, and 75, Kafka).
EXIT_LEASE_LOST = 76

_ENSURE_ROW = (
    "INSERT INTO bridge_lease (session_id) VALUES (%(session)s) ON CONFLICT (session_id) DO NOTHING"
)
# Two standbys racing: the second re-checks expires_at on the row the first wrote, and fails.
_TAKE = (
    "UPDATE bridge_lease SET holder = %(holder)s, epoch = epoch + 1,"
    " acquired_at = clock_timestamp(), expires_at = clock_timestamp() + %(ttl)s"
    " WHERE session_id = %(session)s AND expires_at <= clock_timestamp() RETURNING epoch"
)
_RENEW = (
    "UPDATE bridge_lease SET expires_at = clock_timestamp() + %(ttl)s"
    " WHERE session_id = %(session)s AND holder = %(holder)s AND epoch = %(epoch)s"
    " AND expires_at > clock_timestamp() RETURNING epoch"
)
_RELEASE = (
    "UPDATE bridge_lease SET expires_at = clock_timestamp()"
    " WHERE session_id = %(session)s AND holder = %(holder)s AND epoch = %(epoch)s"
    " AND expires_at > clock_timestamp()"
)


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """What a leader holds: its FIX session, its holder id and the epoch it took over with."""

    session_id: str
    holder: str
    epoch: int

    def params(self) -> dict[str, Any]:
        """The terms as the named parameters of the lease statements."""
        return {"session": self.session_id, "holder": self.holder, "epoch": self.epoch}


class LeaseStore(Protocol):
    """The lease row (``PgLeaseStore``; a fake in the unit tests)."""

    def take(self, session_id: str, holder: str) -> int | None: ...
    def renew(self, terms: LeaseTerms) -> bool: ...
    def release(self, terms: LeaseTerms) -> None: ...


def holder_id() -> str:
    """This process's name in the lease row: host, pid, and a nonce against pid reuse."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def exit_lease_lost(reason: str) -> NoReturn:
    """End the process at once with EXIT_LEASE_LOST, without unwinding QuickFIX's threads."""
    log.critical("lease lost, exiting with %d without sending more: %s", EXIT_LEASE_LOST, reason)
    logging.shutdown()
    # os._exit, not an exception: unwinding would stop the QuickFIX initiator, which logs out,
    # that is, sends a message on a session another process now holds.
    os._exit(EXIT_LEASE_LOST)


class PgLeaseStore:
    """The ``bridge_lease`` row on a connection of its own (autocommit, bounded statements)."""

    def __init__(self, dsn: str, *, ttl_ms: int) -> None:
        self._dsn = dsn
        self._ttl = timedelta(milliseconds=ttl_ms)
        # A statement may not outlive a lease: a blocked renewal must fail, not hang.
        self._options = f"-c statement_timeout={ttl_ms}"
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _execute(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True, options=self._options)
        try:
            cursor = self._conn.execute(query, params)
            return cursor.fetchone() if cursor.description is not None else None
        except psycopg.Error:
            # A broken connection is replaced at the next call.
            self.close()
            raise

    def take(self, session_id: str, holder: str) -> int | None:
        """Take the lease if it has expired; return the new epoch, or None if it is held."""
        params = {"session": session_id, "holder": holder, "ttl": self._ttl}
        self._execute(_ENSURE_ROW, params)
        row = self._execute(_TAKE, params)
        return None if row is None else int(row[0])

    def renew(self, terms: LeaseTerms) -> bool:
        """Extend the lease by the ttl; False if it is no longer ours (or had expired)."""
        return self._execute(_RENEW, terms.params() | {"ttl": self._ttl}) is not None

    def release(self, terms: LeaseTerms) -> None:
        """Expire the lease now if it is still ours, so a standby takes over at once."""
        self._execute(_RELEASE, terms.params())

    def close(self) -> None:
        """Close the connection (the next call opens another)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class LeaderLease:
    """Takes the lease, keeps it (renewer and watchdog threads), and guards every send."""

    def __init__(
        self,
        store: LeaseStore,
        session_id: str,
        holder: str,
        *,
        ttl_ms: int,
        renew_ms: int,
        on_lost: Callable[[str], NoReturn] = exit_lease_lost,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._session_id = session_id
        self._holder = holder
        self._ttl_s = ttl_ms / 1000
        self._renew_s = renew_ms / 1000
        self._on_lost = on_lost
        self._clock = clock
        self._terms: LeaseTerms | None = None
        self._deadline = float("-inf")  # monotonic; nothing may be sent from this instant on
        self._revoked = False
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def terms(self) -> LeaseTerms:
        """The terms of the lease this process holds; raise if it is not leading."""
        if self._terms is None:
            raise RuntimeError("this bridge does not hold the lease")
        return self._terms

    def remaining_s(self) -> float:
        """Seconds until the local deadline (negative once passed)."""
        return self._deadline - self._clock()

    def try_take(self) -> bool:
        """One attempt to take the lease; True if this process now leads."""
        started = self._clock()
        epoch = self._store.take(self._session_id, self._holder)
        if epoch is None:
            return False
        self._terms = LeaseTerms(self._session_id, self._holder, epoch)
        self._deadline = started + self._ttl_s
        log.info(
            "took the lease of FIX session %s: epoch %d, holder %s",
            self._session_id,
            epoch,
            self._holder,
        )
        return True

    def wait_to_lead(self, stop: threading.Event) -> bool:
        """Poll every renew interval until the lease is ours (True) or ``stop`` is set (False)."""
        log.info(
            "standby for FIX session %s as %s: polling the lease every %.0f ms",
            self._session_id,
            self._holder,
            self._renew_s * 1000,
        )
        failing = False
        while not stop.is_set():
            try:
                if self.try_take():
                    return True
                failing = False
            except psycopg.Error as exc:
                # A standby holds nothing, so it only waits for PostgreSQL to come back.
                if not failing:
                    log.warning("standby cannot read the lease (%s); still trying", exc)
                failing = True
            stop.wait(self._renew_s)
        return False

    def renew_once(self) -> None:
        """Renew once; call ``on_lost`` if the lease is gone or could not be kept in time."""
        terms = self.terms
        started = self._clock()
        try:
            renewed = self._store.renew(terms)
        except psycopg.Error as exc:
            if self._clock() >= self._deadline:
                self.lost(f"no renewal could complete before the lease expired ({exc})")
            # Still within the lease: the next attempt comes at the renew interval.
            log.warning("lease renewal failed (%s); %.2fs left", exc, self.remaining_s())
            return
        if not renewed:
            self.lost(f"renewal of epoch {terms.epoch} refused: taken over or expired")
        if self._clock() >= self._deadline:
            # PostgreSQL extended it, but too late: something may already have taken over.
            self.lost(f"renewal of epoch {terms.epoch} completed after the lease expired")
        self._deadline = started + self._ttl_s

    def check(self) -> None:
        """Call ``on_lost`` unless the lease is still ours by the local deadline."""
        if self._revoked:
            self._on_lost("the lease was lost")
        if self._clock() >= self._deadline:
            self.lost(f"the lease deadline passed {-self.remaining_s():.3f}s ago")

    def lost(self, reason: str) -> NoReturn:
        """Stop every send at once (``check`` fails from now on), then ``on_lost``."""
        self._revoked = True
        self._on_lost(reason)

    def start_keeping(self) -> None:
        """Start the renewer (every renew interval) and the watchdog (at the deadline)."""
        for name, target in (("lease-renew", self._renew_loop), ("lease-watch", self._watch)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def _renew_loop(self) -> None:
        while not self._halt.wait(self._renew_s):
            self.renew_once()

    def _watch(self) -> None:
        # The renewer may be stuck in a statement; this thread alone ends a silent expiry.
        while not self._halt.wait(max(self.remaining_s(), 0.0)):
            self.check()

    def release(self) -> None:
        """Stop renewing and expire the lease in PostgreSQL, so a standby takes over at once."""
        self._halt.set()
        for thread in self._threads:
            thread.join(self._ttl_s)
        if self._terms is None or self._revoked:
            return
        try:
            self._store.release(self._terms)
            log.info("released the lease of FIX session %s", self._session_id)
        except psycopg.Error as exc:
            log.warning("could not release the lease (%s); it expires on its own", exc)
