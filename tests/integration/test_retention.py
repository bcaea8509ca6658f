"""Retention on real PostgreSQL: which outbox rows and idempotency keys go, which stay, how many."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from core.settings import Settings
from streams import retention

pytestmark = pytest.mark.integration

AGE = timedelta(hours=1)
WAIT_S = 20.0

# (published, canceled, age in minutes, deleted): only done rows past the age go.
OUTBOX_CASES = [
    pytest.param(True, False, 120, True, id="published-and-old"),
    pytest.param(False, True, 120, True, id="withdrawn-and-old"),
    pytest.param(False, False, 120, False, id="pending-however-old"),
    pytest.param(True, False, 30, False, id="published-but-young"),
    pytest.param(False, True, 30, False, id="withdrawn-but-young"),
    pytest.param(False, False, 0, False, id="pending-and-new"),
]


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_dsn, autocommit=True) as connection:
        yield connection


def add_outbox_row(
    conn: psycopg.Connection[Any], *, published: bool, canceled: bool, age_min: float
) -> int:
    """An outbox row written ``age_min`` minutes ago, published or withdrawn as asked."""
    row = conn.execute(
        "INSERT INTO outbox (topic, key, payload, created_at, published_at, canceled_at)"
        " VALUES ('t', 'k', 'p', now() - make_interval(mins => %(age)s),"
        " CASE WHEN %(published)s THEN now() END, CASE WHEN %(canceled)s THEN now() END)"
        " RETURNING id",
        {"age": age_min, "published": published, "canceled": canceled},
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_user(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "INSERT INTO users (email, password_hash) VALUES (gen_random_uuid() || '@x.io', 'h')"
        " RETURNING id"
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_key(conn: psycopg.Connection[Any], user_id: int, key: str, age_min: float) -> None:
    conn.execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, response_status,"
        " response_body, created_at)"
        " VALUES (%s, %s, 'h', 201, '{}', now() - make_interval(mins => %s))",
        (user_id, key, age_min),
    )


def outbox_ids(conn: psycopg.Connection[Any]) -> set[int]:
    return {int(r[0]) for r in conn.execute("SELECT id FROM outbox").fetchall()}


def purge_outbox(conn: psycopg.Connection[Any], limit: int = 100) -> int:
    row = conn.execute("SELECT outbox_purge(%s, %s)", (AGE, limit)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(("published", "canceled", "age_min", "deleted"), OUTBOX_CASES)
def test_the_outbox_purge_deletes_only_done_rows_past_the_age(
    conn: psycopg.Connection[Any], published: bool, canceled: bool, age_min: int, deleted: bool
) -> None:
    # Older and younger neighbours on both sides, so the search for the cut-off has work to do.
    before = [add_outbox_row(conn, published=False, canceled=False, age_min=180) for _ in range(3)]
    row_id = add_outbox_row(conn, published=published, canceled=canceled, age_min=age_min)
    after = [add_outbox_row(conn, published=True, canceled=False, age_min=0) for _ in range(3)]
    assert purge_outbox(conn) == int(deleted)
    assert (row_id not in outbox_ids(conn)) is deleted
    assert outbox_ids(conn) >= set(before) | set(after)


def test_the_outbox_purge_deletes_the_oldest_done_rows_first_and_at_most_its_limit(
    conn: psycopg.Connection[Any],
) -> None:
    old = [add_outbox_row(conn, published=True, canceled=False, age_min=200 - i) for i in range(7)]
    young = add_outbox_row(conn, published=True, canceled=False, age_min=1)
    assert purge_outbox(conn, limit=3) == 3
    assert outbox_ids(conn) == set(old[3:]) | {young}
    assert purge_outbox(conn, limit=3) == 3
    assert purge_outbox(conn, limit=3) == 1
    assert purge_outbox(conn, limit=3) == 0
    assert outbox_ids(conn) == {young}


def test_the_outbox_purge_of_an_empty_or_all_young_outbox_deletes_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    assert purge_outbox(conn) == 0
    kept = {add_outbox_row(conn, published=True, canceled=False, age_min=5) for _ in range(4)}
    assert purge_outbox(conn) == 0
    assert outbox_ids(conn) == kept


def test_the_key_purge_deletes_keys_past_the_age_oldest_first_and_at_most_its_limit(
    conn: psycopg.Connection[Any],
) -> None:
    user = add_user(conn)
    for i, age_min in enumerate([300, 200, 100, 59, 1]):
        add_key(conn, user, f"k{i}", age_min)

    def purge(limit: int) -> int:
        row = conn.execute("SELECT idempotency_keys_purge(%s, %s)", (AGE, limit)).fetchone()
        assert row is not None
        return int(row[0])

    def keys() -> list[str]:
        return [str(r[0]) for r in conn.execute("SELECT key FROM idempotency_keys ORDER BY key")]

    assert purge(2) == 2
    assert keys() == ["k2", "k3", "k4"]
    assert purge(2) == 1
    assert keys() == ["k3", "k4"]
    assert purge(2) == 0


def test_a_key_purged_after_its_claim_makes_order_place_ask_for_a_retry(
    conn: psycopg.Connection[Any],
) -> None:
    # The race the purge can cause: a retry's claim finds the old key, the purge deletes it
    # before order_place reads it back. Simulated by a key the claim sees but the read does not:
    # the read runs in the same statement, so the key is deleted by a trigger on the claim.
    user = add_user(conn)
    add_key(conn, user, "retry-me", 5)
    conn.execute(
        "CREATE FUNCTION purge_on_claim() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN DELETE FROM idempotency_keys WHERE key = 'retry-me'; RETURN NULL; END $$;"
        " CREATE TRIGGER purge_on_claim AFTER INSERT ON idempotency_keys"
        " FOR EACH STATEMENT EXECUTE FUNCTION purge_on_claim()"
    )
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(
            "SELECT * FROM order_place(%s, 'retry-me', 'h', gen_random_uuid(), NULL, 'ACME',"
            " 'BUY', 'LIMIT', 'DAY', 1, 100, NULL, NULL, false, NULL, 0, 0, 1000000, 1000,"
            " 'USD', 't', 'k', 'p', '{}')",
            (user,),
        )
    assert caught.value.sqlstate == "BR409"
    assert caught.value.diag.message_hint == "idempotency_race"


def retention_settings(running_stack: Settings, db_dsn: str) -> Settings:
    return running_stack.model_copy(
        update={
            "pg_database": conninfo_to_dict(db_dsn)["dbname"],
            "outbox_retention_s": 3600,
            "idempotency_key_retention_s": 3600,
            "retention_batch_max": 2,
            # Longer than the wait below: catching up must not sleep between full batches.
            "retention_interval_s": 600.0,
        }
    )


def wait_until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "retention did not catch up in time"
        time.sleep(0.05)


def test_the_purger_catches_up_in_full_batches_and_one_leads_at_a_time(
    running_stack: Settings, db_dsn: str, conn: psycopg.Connection[Any]
) -> None:
    settings = retention_settings(running_stack, db_dsn)
    user = add_user(conn)
    for i in range(7):
        add_outbox_row(conn, published=True, canceled=False, age_min=120)
        add_key(conn, user, f"old{i}", 120)
    pending = add_outbox_row(conn, published=False, canceled=False, age_min=120)
    add_key(conn, user, "young", 5)
    stop = threading.Event()
    threads = [retention.start(settings, stop) for _ in range(2)]
    try:
        wait_until(
            lambda: (
                outbox_ids(conn) == {pending}
                and [r[0] for r in conn.execute("SELECT key FROM idempotency_keys")] == ["young"]
            )
        )
        leaders = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND (l.classid::bigint << 32 | l.objid::bigint) = %s",
            (retention.ADVISORY_LOCK_KEY,),
        ).fetchone()
        assert leaders == (1,)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
