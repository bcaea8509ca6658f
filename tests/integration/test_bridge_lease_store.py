"""The lease row and the fenced order records, against the real PostgreSQL (0023, 0024)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from core.contracts import ORDER_COMMANDS, NewOrder
from fixbridge.bridge.exceptions import LeaseLostError
from fixbridge.bridge.lease import LeaseTerms, PgLeaseStore
from fixbridge.bridge.ports import ResendClaim
from fixbridge.bridge.store import SentOrders
from tests.bridge_records import unknown_order_answer
from tests.integration.test_bridge_harness import insert_order, seed_user_and_instrument

pytestmark = pytest.mark.integration

TTL_MS = 400
SESSION = "BROKER"


@pytest.fixture
def stores(db_dsn: str) -> Iterator[tuple[PgLeaseStore, PgLeaseStore]]:
    """Two processes' lease stores on the same database."""
    first, second = PgLeaseStore(db_dsn, ttl_ms=TTL_MS), PgLeaseStore(db_dsn, ttl_ms=TTL_MS)
    yield first, second
    first.close()
    second.close()


def _sent_orders(dsn: str, terms: LeaseTerms) -> SentOrders:
    store = SentOrders(dsn, connect_timeout_s=5, lease=terms)
    store.open(10)
    return store


def _command(order: NewOrder) -> str:
    return ORDER_COMMANDS.encode(order).decode()


def _kept(claim: ResendClaim) -> NewOrder:
    """The command a claim returned, as a record (jsonb keeps its content, not its spelling)."""
    assert claim.command is not None
    order = ORDER_COMMANDS.decode(claim.command)
    assert isinstance(order, NewOrder)
    return order


def _expire() -> None:
    time.sleep(TTL_MS / 1000 + 0.1)


def test_the_lease_is_held_by_one_renewed_by_it_only_and_taken_over_after_expiry(
    stores: tuple[PgLeaseStore, PgLeaseStore],
) -> None:
    a, b = stores
    assert a.take(SESSION, "a") == 1
    assert b.take(SESSION, "b") is None  # held: a standby gets nothing
    a_terms = LeaseTerms(SESSION, "a", 1)
    assert a.renew(a_terms)
    assert not b.renew(LeaseTerms(SESSION, "b", 1))  # not the holder
    _expire()
    assert not a.renew(a_terms)  # expired by the database clock: too late to renew
    assert b.take(SESSION, "b") == 2  # every takeover is a new epoch
    assert not a.renew(a_terms)
    b.release(LeaseTerms(SESSION, "b", 2))
    assert a.take(SESSION, "a") == 3  # a released lease is free at once


def test_orders_are_recorded_as_sent_only_under_the_current_unexpired_epoch(
    db_dsn: str, stores: tuple[PgLeaseStore, PgLeaseStore]
) -> None:
    user_id = seed_user_and_instrument(db_dsn)
    first, second, third = (insert_order(db_dsn, user_id, quantity=1) for _ in range(3))
    a, b = stores
    assert a.take(SESSION, "a") == 1
    old = _sent_orders(db_dsn, LeaseTerms(SESSION, "a", 1))
    try:
        assert old.record_sent(first.order_id, _command(first))
        assert not old.record_sent(first.order_id, _command(first))  # once only
        assert old.order_ref(first.order_id).order_id == first.order_id
        _expire()
        # Expired, nobody took over yet: the database clock alone refuses the old leader.
        with pytest.raises(LeaseLostError):
            old.record_sent(second.order_id, _command(second))
        assert b.take(SESSION, "b") == 2
        with pytest.raises(LeaseLostError):
            old.record_sent(third.order_id, _command(third))
        with pytest.raises(LeaseLostError):
            old.order_ref(first.order_id)
    finally:
        old.close()
    new = _sent_orders(db_dsn, LeaseTerms(SESSION, "b", 2))
    try:
        assert new.record_sent(second.order_id, _command(second))
        # The old leader's record still counts.
        assert not new.record_sent(first.order_id, _command(first))
    finally:
        new.close()
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT order_id::text, lease_epoch FROM sent_orders").fetchall()
    assert sorted(rows) == sorted([(first.order_id, 1), (second.order_id, 2)])


def test_a_never_answered_order_is_resent_once_per_leader_and_an_answered_one_never(
    db_dsn: str, stores: tuple[PgLeaseStore, PgLeaseStore]
) -> None:
    user_id = seed_user_and_instrument(db_dsn)
    silent, answered = (insert_order(db_dsn, user_id, quantity=1) for _ in range(2))
    a, b = stores
    assert a.take(SESSION, "a") == 1
    old = _sent_orders(db_dsn, LeaseTerms(SESSION, "a", 1))
    try:
        old.record_sent(silent.order_id, _command(silent))
        old.record_sent(answered.order_id, _command(answered))
        # Any report at all: the exchange answered about it.
        old.record_report(unknown_order_answer(answered.order_id))
        first, again = old.claim_resend(silent.order_id), old.claim_resend(silent.order_id)
        assert first.never_answered and _kept(first) == silent
        assert again == ResendClaim(True, None)  # the same leader sends it once
        assert old.claim_resend(answered.order_id) == ResendClaim(False, None)
        _expire()
        with pytest.raises(LeaseLostError):
            old.claim_resend(silent.order_id)
    finally:
        old.close()
    assert b.take(SESSION, "b") == 2
    new = _sent_orders(db_dsn, LeaseTerms(SESSION, "b", 2))
    try:
        # The first resend may have died with its leader: the next leader may send it once.
        assert _kept(new.claim_resend(silent.order_id)) == silent
        assert new.claim_resend(silent.order_id) == ResendClaim(True, None)
    finally:
        new.close()
