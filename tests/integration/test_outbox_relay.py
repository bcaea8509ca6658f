"""The outbox relay on real PostgreSQL and Kafka: order, visibility, holds, leaders, outages."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from core.contracts import ORDER_COMMANDS, CancelOrder
from core.settings import Settings
from streams.outbox_relay import (
    ADVISORY_LOCK_KEY,
    RelayDeliveryError,
    make_producer,
    publish_batch,
    run,
)
from tests.conftest import free_port
from tests.integration.api.orders_support import read_topic, topic_is_quiet
from tests.integration.relay_support import running_relay

pytestmark = pytest.mark.integration

WAIT_S = 20.0


@pytest.fixture
def relay_settings(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str]
) -> Settings:
    """Settings for this test's database, with a topic of its own as the orders topic."""
    return running_stack.model_copy(
        update={
            "pg_database": conninfo_to_dict(db_dsn)["dbname"],
            "topic_orders": new_topic(1),
            "outbox_poll_interval_ms": 20,
            "outbox_batch_max": 50,
        }
    )


def insert_row(conn: psycopg.Connection[Any], topic: str, available_in_s: float = 0) -> str:
    """Add one CancelOrder to the outbox (any order command would do); return its order id."""
    record = CancelOrder(order_id=str(uuid.uuid4()), ts_ns=time.time_ns())
    conn.execute(
        "INSERT INTO outbox (topic, key, payload, headers, available_at)"
        " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))",
        (
            topic,
            record.kafka_key(),
            ORDER_COMMANDS.encode(record),
            Jsonb({"record": "cancel_order.v1"}),
            available_in_s,
        ),
    )
    return record.order_id


def unpublished(db_dsn: str) -> int:
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
    return int(row[0]) if row else -1


@contextmanager
def relay_conn(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        yield conn


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def keys(messages: list[Any]) -> list[str]:
    return [m.key().decode() for m in messages]


def test_rows_publish_in_transaction_order_keyed_by_order_id(
    relay_settings: Settings, db_dsn: str
) -> None:
    topic = relay_settings.topic_orders
    with psycopg.connect(db_dsn, autocommit=True) as writer:
        order_ids = [insert_row(writer, topic) for _ in range(5)]

    with relay_conn(relay_settings) as conn:
        producer = make_producer(relay_settings)
        assert publish_batch(conn, producer, relay_settings) == 5
        assert publish_batch(conn, producer, relay_settings) == 0

    messages = read_topic(relay_settings, topic, 5)
    assert keys(messages) == order_ids
    decoded = [ORDER_COMMANDS.decode(m.value()) for m in messages]
    assert [r.order_id for r in decoded] == order_ids
    assert [dict(m.headers() or []) for m in messages] == [{"record": b"cancel_order.v1"}] * 5
    assert unpublished(db_dsn) == 0


def test_a_row_of_an_open_transaction_holds_back_later_rows_until_it_commits(
    relay_settings: Settings, db_dsn: str
) -> None:
    topic = relay_settings.topic_orders
    with (
        psycopg.connect(db_dsn) as slow,
        psycopg.connect(db_dsn, autocommit=True) as fast,
        relay_conn(relay_settings) as conn,
    ):
        producer = make_producer(relay_settings)
        first = insert_row(slow, topic)  # transaction open, not committed
        second = insert_row(fast, topic)  # committed, but its transaction began later

        assert publish_batch(conn, producer, relay_settings) == 0
        slow.commit()
        assert publish_batch(conn, producer, relay_settings) == 2

    assert keys(read_topic(relay_settings, topic, 2)) == [first, second]


def test_a_held_row_waits_for_its_time_and_a_canceled_row_never_goes(
    relay_settings: Settings, db_dsn: str
) -> None:
    topic = relay_settings.topic_orders
    with psycopg.connect(db_dsn, autocommit=True) as writer, relay_conn(relay_settings) as conn:
        held = insert_row(writer, topic, available_in_s=3600)
        withdrawn = insert_row(writer, topic, available_in_s=3600)
        now = insert_row(writer, topic)
        producer = make_producer(relay_settings)

        assert publish_batch(conn, producer, relay_settings) == 1
        writer.execute(
            "UPDATE outbox SET canceled_at = now() WHERE key = %s", (withdrawn.encode(),)
        )
        writer.execute("UPDATE outbox SET available_at = now() WHERE canceled_at IS NULL")
        assert publish_batch(conn, producer, relay_settings) == 1

    assert keys(read_topic(relay_settings, topic, 2)) == [now, held]
    assert topic_is_quiet(relay_settings, topic, 2, wait_s=1.0)


def test_a_kafka_outage_loses_no_row_and_the_rows_go_once_kafka_answers(
    relay_settings: Settings, db_dsn: str
) -> None:
    topic = relay_settings.topic_orders
    down = relay_settings.model_copy(
        update={"kafka_port": free_port(), "outbox_delivery_timeout_ms": 1000}
    )
    with psycopg.connect(db_dsn, autocommit=True) as writer:
        order_ids = [insert_row(writer, topic) for _ in range(3)]

    with relay_conn(down) as conn:
        with pytest.raises(RelayDeliveryError):
            publish_batch(conn, make_producer(down), down)
        assert unpublished(db_dsn) == 3
        assert publish_batch(conn, make_producer(relay_settings), relay_settings) == 3

    assert keys(read_topic(relay_settings, topic, 3)) == order_ids


_LOCK_HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND (classid::bigint << 32 | objid::bigint) = %s"
)


def lock_holders(db_dsn: str) -> list[int]:
    """The backend pids holding the relay's advisory lock in this test's database."""
    with psycopg.connect(db_dsn) as conn:
        return [int(r[0]) for r in conn.execute(_LOCK_HOLDERS, (ADVISORY_LOCK_KEY,)).fetchall()]


def test_two_relays_at_once_publish_every_row_exactly_once(
    relay_settings: Settings, db_dsn: str
) -> None:
    topic = relay_settings.topic_orders
    rows, per_transaction = 300, 30
    order_ids: list[str] = []
    with (
        running_relay(relay_settings),
        running_relay(relay_settings),
        psycopg.connect(db_dsn, autocommit=True) as writer,
    ):
        for _ in range(rows // per_transaction):
            with writer.transaction():
                order_ids += [insert_row(writer, topic) for _ in range(per_transaction)]
            time.sleep(0.01)
        wait_until(lambda: unpublished(db_dsn) == 0)
        holders = lock_holders(db_dsn)

    assert len(holders) == 1
    assert keys(read_topic(relay_settings, topic, rows)) == order_ids
    assert topic_is_quiet(relay_settings, topic, rows, wait_s=1.0)


def test_a_standby_relay_takes_over_when_the_leader_stops(
    relay_settings: Settings, db_dsn: str
) -> None:
    topic = relay_settings.topic_orders
    leader_stop, standby_stop = threading.Event(), threading.Event()
    leader = threading.Thread(target=run, args=(relay_settings, leader_stop), daemon=True)
    standby = threading.Thread(target=run, args=(relay_settings, standby_stop), daemon=True)
    try:
        leader.start()
        wait_until(lambda: len(lock_holders(db_dsn)) == 1)
        [leader_pid] = lock_holders(db_dsn)
        standby.start()
        with psycopg.connect(db_dsn, autocommit=True) as writer:
            before = insert_row(writer, topic)
            wait_until(lambda: unpublished(db_dsn) == 0)
            leader_stop.set()
            leader.join(timeout=10)
            after = insert_row(writer, topic)
            wait_until(lambda: unpublished(db_dsn) == 0)
        [standby_pid] = lock_holders(db_dsn)
        assert standby_pid != leader_pid
    finally:
        leader_stop.set()
        standby_stop.set()
        leader.join(timeout=10)
        standby.join(timeout=10)

    assert not leader.is_alive() and not standby.is_alive()
    assert keys(read_topic(relay_settings, topic, 2)) == [before, after]
