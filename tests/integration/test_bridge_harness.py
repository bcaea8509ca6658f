"""Shared pieces of the bridge's integration tests (no tests here).

A FIX-aware TCP proxy between the bridge and the exchange (it records, holds, drops and injects
frames), the bridge and the simulator as real processes, database seeding and Kafka helpers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from core.contracts import (
    EXECUTION_REPORTS,
    ORDER_COMMANDS,
    ExecutionReport,
    NewOrder,
    OrderCommand,
    OrderType,
    Side,
    TimeInForce,
)
from core.settings import PROJECT_ROOT, Settings
from infra import topics
from tests.conftest import free_port

log = logging.getLogger(__name__)

WAIT_S = 30.0
PROCESS_STOP_S = 15.0
_FRAME_START = b"8=FIX"
_BODY_LENGTH_RE = re.compile(rb"^8=FIX[^\x01]*\x019=(\d+)\x01")


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout_s}s for {what}")
        time.sleep(0.05)


# FIX frames.


def fix_fields(frame: bytes) -> dict[int, str]:
    """Tag -> value of a raw FIX frame (the last value wins for a repeated tag)."""
    out: dict[int, str] = {}
    for part in frame.split(b"\x01"):
        tag, sep, value = part.partition(b"=")
        if sep and tag.isdigit():
            out[int(tag)] = value.decode(errors="replace")
    return out


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return every complete FIX frame at the start of ``buffer``."""
    frames: list[bytes] = []
    while True:
        match = _BODY_LENGTH_RE.match(bytes(buffer[:64]))
        if match is None:
            return frames
        end = match.end() + int(match.group(1)) + len(b"10=000\x01")
        if len(buffer) < end:
            return frames
        frames.append(bytes(buffer[:end]))
        del buffer[:end]


def raw_frame(
    fields: list[tuple[int, str]], *, checksum_delta: int = 0, begin_string: str = "FIX.4.4"
) -> bytes:
    """A FIX frame with a correct BodyLength and a checksum off by ``checksum_delta``."""
    body = b"".join(f"{tag}={value}\x01".encode() for tag, value in fields)
    head = f"8={begin_string}\x019={len(body)}\x01".encode()
    checksum = (sum(head + body) + checksum_delta) % 256
    return head + body + f"10={checksum:03d}\x01".encode()


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    threads: list[threading.Thread] = field(default_factory=list)


class FixProxy:
    """A TCP proxy that sees whole FIX frames both ways and can hold, drop or inject them."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.upstream_frames: list[dict[int, str]] = []  # bridge -> exchange
        self.downstream_frames: list[dict[int, str]] = []  # exchange -> bridge, forwarded
        self.held_frames: list[dict[int, str]] = []  # exchange -> bridge, held back
        self.dropped_frames: list[dict[int, str]] = []
        self.hold_downstream = threading.Event()
        # Frames for which this returns True are not forwarded to the bridge.
        self.drop_downstream: Callable[[dict[int, str]], bool] = lambda _f: False
        # When the exchange closes a connection, keep the bridge's side open and keep recording
        # what the bridge writes on it (a paused bridge would not notice the close either).
        self.keep_client_open = False
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._accept_thread = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self._accept_thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            link = _Link(client, upstream)
            with self._lock:
                self._links.append(link)
            for name, src, dst, down in (
                ("up", client, upstream, False),
                ("down", upstream, client, True),
            ):
                thread = threading.Thread(
                    target=self._pump, args=(link, src, dst, down), name=name, daemon=True
                )
                link.threads.append(thread)
                thread.start()

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket, down: bool) -> None:
        buffer = bytearray()
        try:
            while not self._closed.is_set():
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                chunk = src.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                for frame in split_frames(buffer):
                    self._forward(frame, dst, down)
                if buffer and not buffer.startswith(_FRAME_START[: len(buffer)]):
                    # Not FIX at all (a test's garbage): pass it on untouched.
                    dst.sendall(bytes(buffer))
                    buffer.clear()
        except OSError:
            pass
        finally:
            ends = (
                (link.upstream,) if down and self.keep_client_open else (link.client, link.upstream)
            )
            for sock in ends:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _forward(self, frame: bytes, dst: socket.socket, down: bool) -> None:
        fields = fix_fields(frame)
        with self._lock:
            if not down:
                self.upstream_frames.append(fields)
            elif self.hold_downstream.is_set():
                self.held_frames.append(fields)
                return
            elif self.drop_downstream(fields):
                self.dropped_frames.append(fields)
                return
            else:
                self.downstream_frames.append(fields)
            dst.sendall(frame)

    def inject_downstream(self, data: bytes) -> None:
        """Write raw bytes to the bridge on the newest connection, between whole frames."""
        with self._lock:
            self._links[-1].client.sendall(data)

    def upstream(self, msg_type: str) -> list[dict[int, str]]:
        """The frames of ``msg_type`` the bridge sent so far."""
        with self._lock:
            return [f for f in self.upstream_frames if f.get(35) == msg_type]

    def close(self) -> None:
        """Stop accepting, close every connection, join the threads."""
        self._closed.set()
        self._server.close()
        self._accept_thread.join(5)
        with self._lock:
            links = list(self._links)
        for link in links:
            for sock in (link.client, link.upstream):
                sock.close()
            for thread in link.threads:
                thread.join(5)


# Processes.


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings (the scalars tests change)."""
    names = [
        "mode",
        "state_dir",
        "pg_host",
        "pg_port",
        "pg_user",
        "pg_database",
        "kafka_host",
        "kafka_port",
        "topic_ticks",
        "topic_orders",
        "topic_execution_reports",
        "bridge_fix_port",
        "bridge_heartbeat_s",
        "bridge_reconnect_interval_s",
        "bridge_consumer_group",
        "bridge_publish_timeout_s",
        "bridge_lease_ttl_ms",
        "bridge_lease_renew_ms",
        "sim_fix_port",
        "sim_tick_workers",
        "sim_tick_rate_per_s",
        "sim_partial_fill_qty_max",
        "sim_eod_enabled",
        "shutdown_timeout_s",
    ]
    dump = settings.model_dump()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env |= {f"BROKER_{name.upper()}": str(dump[name]) for name in names}
    env["BROKER_PG_PASSWORD"] = settings.pg_password.get_secret_value()
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Service:
    """``python -m <module>`` as a child process with its output in a log file."""

    def __init__(self, module: str, settings: Settings, log_path: Path) -> None:
        self.module = module
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (its output appends to the log file)."""
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=PROJECT_ROOT,
                env=env_for(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        """Tell whether the process is running."""
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(PROCESS_STOP_S)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after PROCESS_STOP_S; return the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(PROCESS_STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(PROCESS_STOP_S)


def wait_for_logons(bridge: Service, count: int) -> None:
    """Wait until the bridge logged ``count`` FIX logons (fails early if it died)."""
    wait_until(
        lambda: bridge.log_text().count("FIX logon:") >= count or not bridge.alive(),
        f"FIX logon #{count}",
    )
    assert bridge.alive(), bridge.log_text()[-3000:]


def wait_for_port(port: int) -> None:
    """Wait until something listens on ``port``."""

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    wait_until(listening, f"a listener on port {port}")


@pytest.fixture
def bridge_settings(
    running_stack: Settings, db_dsn: str, new_topic: Callable[[int], str], tmp_path: Path
) -> Settings:
    """Settings of one test: its own database, topics (with the orders DLQ), ports and state."""
    orders = new_topic(3)
    topics.ensure_topics(running_stack, [topics.TopicSpec(running_stack.dlq_topic(orders), 1)])
    database = re.search(r"dbname=(\S+)", db_dsn)
    assert database is not None
    sim_port = free_port()
    return running_stack.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "pg_database": database.group(1),
            "topic_ticks": new_topic(1),
            "topic_orders": orders,
            "topic_execution_reports": new_topic(3),
            "sim_fix_port": sim_port,
            "bridge_fix_port": sim_port,
            "bridge_heartbeat_s": 5,
            "bridge_reconnect_interval_s": 1,
            "bridge_consumer_group": f"fixbridge-{uuid.uuid4().hex[:8]}",
            "sim_tick_workers": 0,
            "sim_tick_rate_per_s": 200,
            "sim_partial_fill_qty_max": 500,
            "sim_eod_enabled": False,
            "shutdown_timeout_s": 10.0,
        }
    )


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[[str, Settings, str], Service]]:
    """A factory of child processes; every one is stopped after the test."""
    started: list[Service] = []

    def make(module: str, settings: Settings, name: str) -> Service:
        service = Service(module, settings, tmp_path / f"{name}.log")
        started.append(service)
        return service

    yield make
    for service in reversed(started):
        service.stop()


@pytest.fixture
def proxies() -> Iterator[Callable[[int], FixProxy]]:
    """A factory of FIX proxies; every one is closed after the test."""
    made: list[FixProxy] = []

    def make(upstream_port: int) -> FixProxy:
        made.append(FixProxy(upstream_port))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


# Database and Kafka.


def seed_user_and_instrument(dsn: str) -> int:
    """Insert a user and the ACME instrument; return the user id."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO instruments (symbol, name, tick_size) VALUES ('ACME', 'Acme', 0.05)"
            " ON CONFLICT DO NOTHING"
        )
        row = conn.execute(
            "INSERT INTO users (email, password_hash) VALUES (%s, 'h') RETURNING id",
            (f"{uuid.uuid4().hex[:10]}@example.com",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def insert_order(
    dsn: str,
    user_id: int,
    *,
    quantity: int,
    order_type: OrderType = OrderType.MARKET,
    price: Decimal | None = None,
    side: Side = Side.BUY,
    time_in_force: TimeInForce = TimeInForce.DAY,
) -> NewOrder:
    """Insert an orders row as the OMS would; return its NewOrder command."""
    order_id = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type,"
            " time_in_force, quantity, price, status) VALUES (%s, %s, %s, 'ACME', %s, %s, %s,"
            " %s, %s, 'NEW')",
            (order_id, user_id, order_id, side, order_type, time_in_force, quantity, price),
        )
    return NewOrder(
        order_id=order_id,
        user_id=user_id,
        symbol="ACME",
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        time_in_force=time_in_force,
        ts_created_ns=time.time_ns(),
    )


def sent_order_row(dsn: str, order_id: str) -> tuple[Any, ...] | None:
    """(last_status, final_at is set, status_requested_at is set) of a sent order, or None."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT last_status, final_at IS NOT NULL, status_requested_at IS NOT NULL"
            " FROM sent_orders WHERE order_id = %s",
            (order_id,),
        ).fetchone()


def produce(settings: Settings, *records: OrderCommand | bytes, key: bytes | None = None) -> None:
    """Publish order commands (or raw bytes) to the test's orders topic."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    for record in records:
        if isinstance(record, bytes):
            producer.produce(settings.topic_orders, key=key, value=record)
        else:
            value = ORDER_COMMANDS.encode(record)
            producer.produce(settings.topic_orders, key=record.kafka_key(), value=value)
    assert producer.flush(WAIT_S) == 0


class TopicReader:
    """Reads a topic from the start and keeps every value, for the whole test."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"test-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])
        self.records: list[tuple[bytes | None, bytes]] = []

    def read_until(self, done: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
        """Consume until ``done()`` holds; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"waited {timeout_s}s for {what}; have {len(self.records)} records")
            for message in self._consumer.consume(100, 0.2):
                if message.error() is None:
                    self.records.append((message.key(), message.value() or b""))

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close()


class Reports(TopicReader):
    """The execution reports topic, decoded."""

    def of(self, order_id: str) -> list[ExecutionReport]:
        """Every report of an order so far, keys checked."""
        out = []
        for key, value in self.records:
            report = EXECUTION_REPORTS.decode(value)
            if report.order_id == order_id:
                assert key == order_id.encode()
                out.append(report)
        return out

    def wait_for(
        self, order_id: str, done: Callable[[list[ExecutionReport]], bool], what: str
    ) -> list[ExecutionReport]:
        """Consume until the order's reports satisfy ``done``; return them."""
        self.read_until(lambda: done(self.of(order_id)), what)
        return self.of(order_id)


@pytest.fixture
def reports(bridge_settings: Settings) -> Iterator[Reports]:
    """A reader of the test's execution-reports topic."""
    reader = Reports(bridge_settings, bridge_settings.topic_execution_reports)
    yield reader
    reader.close()


def fills_by_exec_id(reports: list[ExecutionReport]) -> dict[str, ExecutionReport]:
    """Fills keyed by exec id; a repeated exec id must repeat the same fill exactly."""
    fills: dict[str, ExecutionReport] = {}
    for report in reports:
        if report.last_qty:
            assert fills.setdefault(report.exec_id, report) == report
    return fills
