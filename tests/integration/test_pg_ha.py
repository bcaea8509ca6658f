"""The PostgreSQL HA pair (Patroni and etcd): start, status, failover, restart, stop.

One pair for the module, started once on free ports in a state folder of its own. Each kill
waits for the pair to be whole again (a leader and a synchronous standby) before it ends, so
the next test starts from a pair.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio

from api.services.order_models import OrderRequest
from api.services.orders import place_order
from core.db import AsyncPool, make_async_pool
from core.settings import PROJECT_ROOT, Settings
from infra import migrate, patroni_node, procs
from tests.conftest import OWNER_FILE, free_port
from tests.integration.settle_support import setup_user

log = logging.getLogger(__name__)

KILL_WITHIN_S = 0.1
# The goal of the issue: orders accepted again within 30 s of the primary's loss.
ACCEPTING_AGAIN_S_MAX = 30.0
WHOLE_AGAIN_S_MAX = 90.0
PORT_PAIR_TRIES_MAX = 50


def _free_port_pair() -> int:
    """A port p such that p and p + 1 are both free (node i listens on base + i)."""
    for _ in range(PORT_PAIR_TRIES_MAX):
        base = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two adjacent free ports")


@pytest.fixture(scope="module")
def ha_settings() -> Iterator[Settings]:
    """A running pair (with a migrated database) for this module; stopped and removed after."""
    settings = Settings(
        mode="test",
        state_dir=PROJECT_ROOT / ".local" / "test" / f"pgha-{uuid.uuid4().hex[:8]}",
        pg_ha=True,
        pg_port=_free_port_pair(),
        pg_ha_rest_port=_free_port_pair(),
        etcd_client_port=free_port(),
        etcd_peer_port=free_port(),
        market_always_open=True,
    )
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
    try:
        started = time.monotonic()
        patroni_node.start(settings)
        log.info("pair up in %.1f s", time.monotonic() - started)
        migrate.apply_migrations(settings.pg_dsn)
        yield settings
    finally:
        patroni_node.stop(settings)
        home = patroni_node.home(settings)
        if home.is_symlink():
            shutil.rmtree(home.resolve(), ignore_errors=True)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


@pytest_asyncio.fixture
async def api_pool(ha_settings: Settings) -> AsyncIterator[AsyncPool]:
    """The pool the API builds, on the pair's multi-host connection string."""
    pool = make_async_pool(ha_settings, "test-api")
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


async def _trader(settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(settings.pg_dsn) as conn:
        return await setup_user(conn, "1000000.00")


def _order() -> OrderRequest:
    return OrderRequest.model_validate(
        {"symbol": "ACME", "side": "BUY", "quantity": 1, "type": "LIMIT", "price": "100.00"}
    )


def _node_dsn(settings: Settings, node: int) -> str:
    """A connection string to one node alone (not following the primary)."""
    return settings.model_copy(update={"pg_ha": False, "pg_port": settings.pg_ports[node]}).pg_dsn


def _stored_order_ids(settings: Settings, node: int, user_id: int) -> set[str]:
    with psycopg.connect(_node_dsn(settings, node)) as conn:
        rows = conn.execute("SELECT id::text FROM orders WHERE user_id = %s", (user_id,))
        return {str(row[0]) for row in rows.fetchall()}


def _wait_for(check: Any, timeout_s: float, what: str) -> float:
    """Poll check() until true; the seconds it took."""
    started = time.monotonic()
    procs.wait_until(check, timeout_s, what)
    return time.monotonic() - started


def _wait_whole(settings: Settings, standby: int) -> float:
    """Wait until ``standby`` is the synchronous standby again; the seconds it took."""
    return _wait_for(
        lambda: patroni_node.sync_standby(settings) == standby,
        WHOLE_AGAIN_S_MAX,
        f"node{standby} to rejoin as the synchronous standby",
    )


def _kill_node(settings: Settings, node: int) -> None:
    # Patroni first: alive, it would restart the postmaster it sees die.
    assert patroni_node.kill_patroni(settings, node) is not None
    assert patroni_node.kill_postmaster(settings, node) is not None


def test_status_shows_a_leader_and_a_synchronous_standby_with_their_lag(
    ha_settings: Settings,
) -> None:
    members = {m.name: m for m in patroni_node.members(ha_settings)}
    lines = patroni_node.status(ha_settings)

    assert sorted(m.role for m in members.values()) == ["leader", "sync_standby"]
    assert all(m.state in ("running", "streaming") for m in members.values())
    standby = next(m for m in members.values() if m.role == "sync_standby")
    assert standby.lag_mb is not None
    assert lines[0].startswith("etcd: ready")
    assert all(": ready, " in line for line in lines[1:]), lines
    assert any("sync_standby" in line and "lag" in line for line in lines[1:]), lines


async def test_an_order_committed_just_before_the_primary_dies_is_on_the_promoted_node(
    ha_settings: Settings, api_pool: AsyncPool
) -> None:
    user_id = await _trader(ha_settings)
    old = patroni_node.leader(ha_settings)
    assert old is not None
    new = 1 - old

    placed = await place_order(api_pool, ha_settings, user_id, uuid.uuid4().hex, _order())
    committed = time.monotonic()
    _kill_node(ha_settings, old)
    killed_after_s = time.monotonic() - committed
    promoted_s = _wait_for(
        lambda: patroni_node.leader(ha_settings) == new, ACCEPTING_AGAIN_S_MAX, "a promotion"
    )

    assert placed.status_code == 201, placed.body
    assert killed_after_s < KILL_WITHIN_S
    assert placed.body["id"] in _stored_order_ids(ha_settings, new, user_id)
    patroni_node.start_node(ha_settings, old)
    rejoined_s = _wait_whole(ha_settings, old)
    print(  # noqa: T201 - the figures the docs quote
        f"\nkilled {killed_after_s * 1000:.0f} ms after the commit; node{new} promoted"
        f" {promoted_s:.1f} s after the kill; node{old} rejoined in {rejoined_s:.1f} s"
    )


async def test_the_api_pool_follows_the_new_primary_and_orders_placed_meanwhile_go_through(
    ha_settings: Settings, api_pool: AsyncPool
) -> None:
    user_id = await _trader(ha_settings)
    await place_order(api_pool, ha_settings, user_id, uuid.uuid4().hex, _order())
    old = patroni_node.leader(ha_settings)
    assert old is not None
    new = 1 - old

    _kill_node(ha_settings, old)
    killed = time.monotonic()
    # The dying primary's backend may still commit it (its standby acknowledges the WAL), or
    # the pool's retries carry it to the promoted node: either way it is accepted and kept.
    during = await place_order(api_pool, ha_settings, user_id, uuid.uuid4().hex, _order())
    _wait_for(lambda: patroni_node.leader(ha_settings) == new, ACCEPTING_AGAIN_S_MAX, "promotion")
    after = await place_order(api_pool, ha_settings, user_id, uuid.uuid4().hex, _order())
    accepted_s = time.monotonic() - killed
    async with api_pool.connection() as conn:
        served_by = conn.info.port

    assert (during.status_code, after.status_code) == (201, 201), (during.body, after.body)
    assert served_by == ha_settings.pg_ports[new]
    stored = _stored_order_ids(ha_settings, new, user_id)
    assert {during.body["id"], after.body["id"]} <= stored
    patroni_node.start_node(ha_settings, old)
    _wait_whole(ha_settings, old)
    print(f"\nthe same pool placed an order on the new primary {accepted_s:.1f} s after the kill")  # noqa: T201


def test_patroni_restarts_a_killed_postmaster_and_the_node_keeps_the_lead(
    ha_settings: Settings,
) -> None:
    node = patroni_node.leader(ha_settings)
    assert node is not None
    killed_pid = patroni_node.kill_postmaster(ha_settings, node)
    killed = time.monotonic()

    def writable() -> bool:
        try:
            with psycopg.connect(ha_settings.pg_dsn, connect_timeout=1) as conn:
                conn.execute("CREATE TEMP TABLE t (x int)")
            return True
        except psycopg.OperationalError:
            return False

    _wait_for(writable, ACCEPTING_AGAIN_S_MAX, "writes again")
    without_writes_s = time.monotonic() - killed

    assert patroni_node.postmaster_pid(ha_settings, node) not in (None, killed_pid)
    assert patroni_node.leader(ha_settings) == node
    _wait_whole(ha_settings, 1 - node)
    print(f"\npostmaster restarted by Patroni: {without_writes_s:.1f} s without writes")  # noqa: T201


def test_stop_ends_etcd_both_patronis_and_both_servers(ha_settings: Settings) -> None:
    postmasters = [patroni_node.postmaster_pid(ha_settings, n) for n in range(2)]

    patroni_node.stop(ha_settings)

    assert all(pid is not None for pid in postmasters)
    assert [patroni_node.patroni_pid(ha_settings, n) for n in range(2)] == [None, None]
    assert [patroni_node.postmaster_pid(ha_settings, n) for n in range(2)] == [None, None]
    assert patroni_node.status(ha_settings)[0] == "etcd: stopped"
    assert not any(procs.port_open(ha_settings.pg_host, port) for port in ha_settings.pg_ports)
