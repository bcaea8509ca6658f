"""The leader lease's decisions (take, renew, deadline, loss) with a fake store and a fake clock."""

from __future__ import annotations

import threading
from typing import NoReturn

import psycopg
import pytest

from fixbridge.bridge.lease import LeaderLease, LeaseTerms

TTL_MS = 3_000
RENEW_MS = 500


class Clock:
    """A monotonic clock the test moves by hand; a store call may take time on it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLeaseStore:
    """The lease row in memory: who holds which epoch; each call may advance the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.holder: str | None = None
        self.epoch = 0
        self.call_s = 0.0  # how long each call takes on the clock
        self.fail: Exception | None = None
        self.free = True
        self.released: list[LeaseTerms] = []

    def _call(self) -> None:
        self.clock.now += self.call_s
        if self.fail is not None:
            raise self.fail

    def take(self, session_id: str, holder: str) -> int | None:
        self._call()
        if not self.free:
            return None
        self.free = False
        self.holder, self.epoch = holder, self.epoch + 1
        return self.epoch

    def renew(self, terms: LeaseTerms) -> bool:
        self._call()
        return (terms.holder, terms.epoch) == (self.holder, self.epoch)

    def release(self, terms: LeaseTerms) -> None:
        self.released.append(terms)

    def steal(self) -> None:
        """Another process took over with a newer epoch."""
        self.holder, self.epoch = "other", self.epoch + 1


class LostError(Exception):
    """What the fake ``on_lost`` raises instead of ending the process."""


def _raise_lost(reason: str) -> NoReturn:
    raise LostError(reason)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> FakeLeaseStore:
    return FakeLeaseStore(clock)


def _lease(store: FakeLeaseStore, clock: Clock) -> LeaderLease:
    return LeaderLease(
        store, "BROKER", "me", ttl_ms=TTL_MS, renew_ms=RENEW_MS, on_lost=_raise_lost, clock=clock
    )


def test_a_standby_takes_only_a_free_lease_and_then_holds_its_epoch(
    store: FakeLeaseStore, clock: Clock
) -> None:
    store.free = False
    lease = _lease(store, clock)
    assert not lease.try_take()
    with pytest.raises(RuntimeError):
        _ = lease.terms
    store.free = True
    assert lease.try_take()
    assert lease.terms == LeaseTerms("BROKER", "me", 1)


def test_the_deadline_counts_from_before_the_takeover_statement(
    store: FakeLeaseStore, clock: Clock
) -> None:
    store.call_s = 0.4  # PostgreSQL wrote its expiry up to 0.4 s after the request left
    lease = _lease(store, clock)
    assert lease.try_take()
    assert lease.remaining_s() == pytest.approx(TTL_MS / 1000 - 0.4)


def test_a_renewal_moves_the_deadline_to_its_start_plus_the_ttl(
    store: FakeLeaseStore, clock: Clock
) -> None:
    lease = _lease(store, clock)
    assert lease.try_take()
    clock.now += 2.0
    store.call_s = 0.3
    lease.renew_once()
    assert lease.remaining_s() == pytest.approx(TTL_MS / 1000 - 0.3)


def test_checks_pass_within_the_lease_and_fail_from_its_deadline_on(
    store: FakeLeaseStore, clock: Clock
) -> None:
    lease = _lease(store, clock)
    assert lease.try_take()
    clock.now += TTL_MS / 1000 - 0.001
    lease.check()
    clock.now += 0.001
    with pytest.raises(LostError, match="deadline passed"):
        lease.check()


def test_a_refused_renewal_is_lost_at_once_and_every_later_check_fails(
    store: FakeLeaseStore, clock: Clock
) -> None:
    lease = _lease(store, clock)
    assert lease.try_take()
    store.steal()
    with pytest.raises(LostError, match="refused"):
        lease.renew_once()
    # Still well within the local deadline, yet nothing may be sent any more.
    assert lease.remaining_s() > 1.0
    with pytest.raises(LostError, match="was lost"):
        lease.check()


def test_a_failed_renewal_is_retried_while_the_lease_lasts_then_lost(
    store: FakeLeaseStore, clock: Clock
) -> None:
    lease = _lease(store, clock)
    assert lease.try_take()
    store.fail = psycopg.OperationalError("server closed the connection")
    for _ in range(5):  # 2.5 s of failed renewals: the lease is still ours
        clock.now += RENEW_MS / 1000
        lease.renew_once()
        lease.check()
    clock.now += RENEW_MS / 1000
    with pytest.raises(LostError, match="before the lease expired"):
        lease.renew_once()


def test_a_renewal_that_completes_after_the_deadline_counts_as_lost(
    store: FakeLeaseStore, clock: Clock
) -> None:
    lease = _lease(store, clock)
    assert lease.try_take()
    store.call_s = TTL_MS / 1000 + 0.1  # e.g. the process was paused during the statement
    with pytest.raises(LostError, match="after the lease expired"):
        lease.renew_once()


def test_a_released_lease_is_handed_back_with_its_terms(
    store: FakeLeaseStore, clock: Clock
) -> None:
    lease = _lease(store, clock)
    assert lease.try_take()
    lease.release()
    assert store.released == [LeaseTerms("BROKER", "me", 1)]


def test_waiting_to_lead_ends_without_the_lease_when_stopped(
    store: FakeLeaseStore, clock: Clock
) -> None:
    store.free = False
    stop = threading.Event()
    stop.set()
    assert not _lease(store, clock).wait_to_lead(stop)
    assert store.epoch == 0
