"""Shared fixtures: the real PostgreSQL, Kafka and Redis, started once per test session.

Each test session gets a stack of its own (free ports, a fresh state folder removed at the end),
so it runs beside a developer's ``make up`` and beside another test session.
Each test gets its own database (cloned from a migrated template) or its own topics.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql

from core.settings import PROJECT_ROOT, Settings
from infra import migrate, postgres, procs, stack, supervise, topics

TEMPLATE_DB = "broker_template"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--chaos-long``: the chaos suite's long form (5 minutes of load, every kill twice)."""
    parser.addoption(
        "--chaos-long",
        action="store_true",
        help="run the chaos suite's long form: at least 5 minutes of load, every kill twice",
    )


# Whole-system tests that time the system or kill parts of it: after the chaos suite, on a
# system long past its start-up (the SSE latency test missed its bound in the first minutes).
_AFTER_CHAOS = ("tests/e2e/test_front.py", "tests/e2e/test_supervision.py")


def _tier(item: pytest.Item) -> int:
    """Where a test runs: unit and integration tests, then the whole system's start-up tests,
    the chaos suite, the timed and killing tests, and last the test that ends the system."""
    if item.get_closest_marker("ends_system"):
        return 4
    if item.get_closest_marker("chaos"):
        return 2
    if item.get_closest_marker("e2e"):
        return 3 if item.nodeid.startswith(_AFTER_CHAOS) else 1
    return 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the whole-system tiers after the rest, so their processes load no other test.

    The shared ``topology`` fixture (the run command) then starts after every unit and
    integration test; the kills come after the tests that need a calm system.
    """
    items.sort(key=_tier)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of this session's test stack (BROKER_* variables apply to anything not set here).

    One Kafka node and one PostgreSQL server: these tests prove logic against real servers;
    the three-node cluster, the PostgreSQL pair and their failures are proven by the
    whole-system tiers (tests/topology.py), test_local_infra and test_pg_ha.
    """
    return Settings(
        mode="test",
        state_dir=PROJECT_ROOT / ".local" / "test" / uuid.uuid4().hex[:8],
        pg_port=free_port(),
        pg_ha=False,
        kafka_nodes=1,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
    )


OWNER_FILE = "owner.pid"
# Server folders that may live outside the state folder (a symlink to /var/tmp, when a parent
# folder is closed to the postgres OS user): removed where they really are.
SERVER_FOLDERS = ("postgres", "pgha")


def remove_state(state_dir: Path) -> None:
    """Remove a stopped stack's state folder and the server folders it links to."""
    for name in SERVER_FOLDERS:
        folder = state_dir / name
        if folder.is_symlink():
            shutil.rmtree(folder.resolve(), ignore_errors=True)
    shutil.rmtree(state_dir, ignore_errors=True)


def _sweep_orphan_stacks(test_root: Path) -> None:
    """Stop the stacks of test sessions that died without cleaning up (killed, timed out)."""
    for state_dir in test_root.glob("*"):
        owner = procs.read_pid(state_dir / OWNER_FILE)
        if owner is None or procs.is_running(owner, ""):
            continue
        orphan = Settings(mode="test", state_dir=state_dir)
        supervise.stop(orphan)
        # Its PostgreSQL was one server or a pair: stopping what is not there is harmless.
        for ha in (False, True):
            stack.stop(orphan.model_copy(update={"pg_ha": ha}))
        plain = state_dir / "plain"
        if plain.exists():
            postgres.stop(Settings(mode="test", state_dir=plain, pg_ha=False))
            remove_state(plain)
        remove_state(state_dir)


@pytest.fixture(scope="session")
def running_stack(settings: Settings) -> Iterator[Settings]:
    """Start the stack (Redis, PostgreSQL, Kafka) once; stop it and remove its data after."""
    _sweep_orphan_stacks(settings.state_dir.parent)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (settings.state_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
    try:
        stack.start(settings)
        yield settings
    finally:
        stack.stop(settings)
        remove_state(settings.state_dir)


def _admin_conn(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(settings.pg_dsn_for("postgres"), autocommit=True)


def _drop_database(settings: Settings, name: str) -> None:
    with _admin_conn(settings) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# What the session's cluster loaded, for the run's summary (the log shows the back end tested).
_LOADED_EXTENSIONS: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which TimescaleDB the session's PostgreSQL loaded, if a test made the schema."""
    if "timescaledb" in _LOADED_EXTENSIONS:
        terminalreporter.write_line(
            f"TimescaleDB in the session's PostgreSQL: {_LOADED_EXTENSIONS['timescaledb']}"
        )


# Longer than any test session: no job of a copied database comes due by itself.
TEMPLATE_JOBS_DEFERRED = "7 days"


def _make_template(settings: Settings) -> str:
    _drop_database(settings, TEMPLATE_DB)
    with _admin_conn(settings) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    migrate.apply_migrations(settings.pg_dsn_for(TEMPLATE_DB))
    # TimescaleDB runs a job scheduler in each database with the extension, and a scheduler
    # connected to the template makes CREATE DATABASE ... TEMPLATE fail ("being accessed by
    # other users"); its restart around each copy races it. A database closed to connections
    # gets no scheduler, and copying it needs none.
    with psycopg.connect(settings.pg_dsn_for(TEMPLATE_DB), autocommit=True) as conn:
        loaded = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        if settings.pg_timescaledb:
            _LOADED_EXTENSIONS["timescaledb"] = str(loaded[0]) if loaded else "not loaded"
        if loaded:
            conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
            # Stopping it may cut a job short, and a copy's scheduler would take that for a
            # crash and hold the job back: the copies start with no job history.
            conn.execute("DELETE FROM _timescaledb_internal.bgw_job_stat")
            conn.execute("DELETE FROM _timescaledb_internal.bgw_job_stat_history")
            # A copy's scheduler would run every job due since the template was made, at a
            # moment no test chose: the 1 s retention job then deletes the candles a tick test
            # (exchange times of 2024) is writing. Copies start with no job due; the job test
            # starts each job itself.
            conn.execute(
                "SELECT alter_job(job_id, next_start => now() + %s::interval)"
                " FROM timescaledb_information.jobs",
                (TEMPLATE_JOBS_DEFERRED,),
            )
    with _admin_conn(settings) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(TEMPLATE_DB))
        )
    return TEMPLATE_DB


@pytest.fixture(scope="session")
def template_db(running_stack: Settings) -> str:
    """A database with every migration applied, cloned by each test that needs a schema."""
    return _make_template(running_stack)


# The database back ends the project supports: candles in TimescaleDB (the default) or in
# plain PostgreSQL tables (BROKER_PG_TIMESCALEDB=false).
BACKENDS = ("timescaledb", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests marked ``both_backends`` once per database back end."""
    if metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("pg_backend", BACKENDS, indirect=True)


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest) -> str:
    """The back end of this test's database: TimescaleDB unless the test runs on both."""
    return str(getattr(request, "param", BACKENDS[0]))


@pytest.fixture(scope="session")
def plain_stack(running_stack: Settings) -> Iterator[Settings]:
    """A second PostgreSQL, without TimescaleDB, beside the session's stack; stopped after."""
    settings = running_stack.model_copy(
        update={
            "state_dir": running_stack.state_dir / "plain",
            "pg_port": free_port(),
            "pg_timescaledb": False,
            # Only candle and market tests use it: a small cluster is enough.
            "pg_shared_buffers_mb": 128,
            "pg_connections_max": 100,
        }
    )
    try:
        postgres.start(settings)
        yield settings
    finally:
        postgres.stop(settings)
        remove_state(settings.state_dir)


@pytest.fixture
def pg_stack(request: pytest.FixtureRequest, pg_backend: str) -> Settings:
    """This test's PostgreSQL: the session stack's, or the plain one for the plain back end."""
    if pg_backend == "postgresql":
        return request.getfixturevalue("plain_stack")  # type: ignore[no-any-return]
    return request.getfixturevalue("running_stack")  # type: ignore[no-any-return]


@pytest.fixture
def pg_template(request: pytest.FixtureRequest, pg_backend: str) -> str:
    """The migrated template database of this test's PostgreSQL."""
    if pg_backend == "postgresql":
        return request.getfixturevalue("plain_template_db")  # type: ignore[no-any-return]
    return request.getfixturevalue("template_db")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def plain_template_db(plain_stack: Settings) -> str:
    """The migrated template of the plain PostgreSQL."""
    return _make_template(plain_stack)


def _scratch_database(settings: Settings, template: str | None) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with _admin_conn(settings) as conn:
        conn.execute(create)
    try:
        yield settings.pg_dsn_for(name)
    finally:
        _drop_database(settings, name)


@pytest.fixture(scope="session")
def topology() -> Iterator[Settings]:
    """The whole system as the run command starts it, once per session (tests/topology.py)."""
    from tests.topology import run_topology, topology_settings

    yield from run_topology(topology_settings())


# The start-up's demo reconciliation run: a report 60 s after the simulator starts, the sensor,
# then the run's worker importing Dagster and Polars on a busy 2-core host.
SETTLED_WAIT_S = 300.0


@pytest.fixture
def settled_topology(topology: Settings) -> Settings:
    """The whole system past its start-up, for tests that time it: a Dagster run has ended and
    none goes on (a run's worker takes most of a core while it imports)."""
    from tests.chaos.probes import wait_dagster_settled

    wait_dagster_settled(topology, SETTLED_WAIT_S)
    return topology


@pytest.fixture
def empty_db_dsn(pg_stack: Settings) -> Iterator[str]:
    """A connection string to a brand-new empty database, dropped after the test."""
    yield from _scratch_database(pg_stack, None)


@pytest.fixture
def db_dsn(pg_stack: Settings, pg_template: str) -> Iterator[str]:
    """A connection string to a fresh, fully migrated database, dropped after the test."""
    yield from _scratch_database(pg_stack, pg_template)


@pytest.fixture
def new_topic(running_stack: Settings) -> Iterator[Callable[[int], str]]:
    """A factory of uniquely named topics (partition count as argument), deleted after the test."""
    created: list[str] = []

    def make(partitions: int = 1) -> str:
        name = f"test.{uuid.uuid4().hex[:12]}"
        topics.ensure_topics(running_stack, [topics.TopicSpec(name, partitions)])
        created.append(name)
        return name

    yield make
    if created:
        admin = AdminClient({"bootstrap.servers": running_stack.kafka_bootstrap})
        for future in admin.delete_topics(created, operation_timeout=30).values():
            future.result()


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """The test process's collector as it was: the code under test tunes the whole process."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
