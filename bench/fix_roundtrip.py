"""FIX round trips: orders/s and NewOrderSingle -> fill latency against the exchange simulator.

The simulator runs as its own process (``python -m fixbridge.simulator``, a fresh state folder,
a free port, its tick feed idle so only the FIX path is measured). A Python QuickFIX initiator
logs on and sends MARKET orders of one lot, which fill in one ExecutionReport each:

- closed loop: one order outstanding; each round trip is timed from just before
  ``sendToTarget`` to the fill report's arrival in ``fromApp`` (p50, p99, mean, max);
- pipelined: up to ``window`` orders outstanding; orders/s from the first send to the last fill.

The ceiling is a bare TCP echo on loopback, measured in the same run with the same shape: a
server process echoing fixed-size messages, a client with one message outstanding (closed) or
``window`` outstanding (pipelined). It is the fastest any request/response over a local socket
between two Python processes can go here; the ratio says what fraction of it a FIX order round
trip (two QuickFIX engines, validation, matching, the store and journal) reaches.

Every row is in round trips/s (an order's round trip: NewOrderSingle out, its fill report in),
so the closed-loop ratio is also mean echo latency over mean order latency; the closed FIX row
carries ``latency_p50_x_echo``, its median latency in median echo latencies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import quickfix as fix

from bench.exceptions import BenchError
from bench.report import Ceiling, HostInfo, Result, Row
from core.settings import PROJECT_ROOT, Settings
from fixbridge.simulator.config import BEGIN_STRING, data_dictionary_path

log = logging.getLogger(__name__)

LOGON_TIMEOUT_S = 30.0
PORT_WAIT_S = 30.0
PROCESS_STOP_S = 15.0
ORDER_TIMEOUT_S = 10.0  # one order's fill, or one echo, must arrive within this
ECHO_MESSAGE_BYTES = 200  # about one NewOrderSingle frame
_SPAWN = multiprocessing.get_context("spawn")
# The settings the simulator child takes from the benchmark (everything else: its defaults).
_CHILD_SETTINGS = (
    "mode",
    "state_dir",
    "kafka_host",
    "kafka_port",
    "topic_ticks",
    "sim_fix_port",
    "sim_sender_comp_id",
    "sim_target_comp_id",
    "sim_tick_workers",
    "sim_tick_rate_per_s",
    "sim_partial_fill_qty_max",
    "sim_eod_enabled",
    "shutdown_timeout_s",
)


@dataclass(frozen=True)
class FixLoad:
    """How many orders, how many in flight when pipelined, their size and symbol."""

    orders: int = 5_000
    window: int = 32
    warmup_orders: int = 200
    echo_round_trips: int = 50_000  # the echo is fast: more round trips for a steady figure
    qty: int = 1
    symbol: str = "ACME"
    deadline_s: float = 600.0

    def __post_init__(self) -> None:
        if min(self.orders, self.window, self.qty, self.echo_round_trips) < 1:
            raise ValueError(f"orders, window, qty and echo round trips must be positive: {self}")
        if self.warmup_orders < 0:
            raise ValueError(f"the warm-up cannot be negative: {self}")


@dataclass(frozen=True)
class RoundTrips:
    """Round trips completed, their wall time and (closed loop) each one's latency."""

    count: int
    duration_s: float
    latencies_ns: tuple[int, ...] = ()

    @property
    def per_s(self) -> float:
        """Round trips per second."""
        return self.count / self.duration_s

    def latency_details(self) -> dict[str, int | float]:
        """p50, p99, mean and max latency in microseconds (empty when not timed)."""
        if not self.latencies_ns:
            return {}
        ordered = sorted(self.latencies_ns)
        return {
            "latency_us_p50": round(percentile(ordered, 0.50) / 1000, 1),
            "latency_us_p99": round(percentile(ordered, 0.99) / 1000, 1),
            "latency_us_mean": round(statistics.fmean(ordered) / 1000, 1),
            "latency_us_max": round(ordered[-1] / 1000, 1),
        }


def percentile(ordered: list[int], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> None:
    """Wait until something accepts connections on ``port``; raise BenchError after the bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"nothing listened on port {port} within {timeout_s}s") from None
            time.sleep(0.05)


# The simulator process.


def child_env(settings: Settings) -> dict[str, str]:
    """The environment giving a child process these settings (and nothing of ours besides)."""
    dump = settings.model_dump()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env |= {f"BROKER_{name.upper()}": str(dump[name]) for name in _CHILD_SETTINGS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def simulator_process(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m fixbridge.simulator`` with ``settings``, listening; stopped on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fixbridge.simulator", "--log-level", "WARNING"],
            cwd=PROJECT_ROOT,
            env=child_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(settings.sim_fix_port, PORT_WAIT_S)
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(PROCESS_STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(PROCESS_STOP_S)


# The initiator.


class Initiator(fix.Application):  # type: ignore[misc]  # quickfix has no stubs
    """A QuickFIX initiator that times each order from send to its fill report."""

    def __init__(self) -> None:
        super().__init__()
        self.logged_on = threading.Event()
        self.session_id: Any = None
        self.fills: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self.rejects = 0
        self.in_flight: threading.Semaphore | None = None

    def onCreate(self, session_id: Any) -> None:  # noqa: N802 - QuickFIX's names
        """Remember the one session."""
        self.session_id = session_id

    def onLogon(self, session_id: Any) -> None:  # noqa: N802
        """Tell the sender the session is up."""
        self.logged_on.set()

    def onLogout(self, session_id: Any) -> None:  # noqa: N802
        """Tell the sender the session is down."""
        self.logged_on.clear()

    def toAdmin(self, message: Any, session_id: Any) -> None:  # noqa: N802
        """Nothing to add."""

    def fromAdmin(self, message: Any, session_id: Any) -> None:  # noqa: N802
        """Count session-level rejects (the run fails on any)."""
        if message.getHeader().getField(35) == "3":
            self.rejects += 1

    def toApp(self, message: Any, session_id: Any) -> None:  # noqa: N802
        """Nothing to add."""

    def fromApp(self, message: Any, session_id: Any) -> None:  # noqa: N802
        """On a final report, note its arrival time and free a slot of the window."""
        now_ns = time.perf_counter_ns()
        status = message.getField(39)
        if status not in ("2", "8"):  # the New acknowledgement: the fill follows
            return
        if status == "8":
            self.rejects += 1
        self.fills.put((message.getField(11), now_ns))
        if self.in_flight is not None:
            self.in_flight.release()

    def send_order(self, load: FixLoad) -> tuple[str, int]:
        """Send one MARKET buy; return its ClOrdID and the send time."""
        cl_ord_id = uuid.uuid4().hex
        message = fix.Message()
        message.getHeader().setField(35, "D")
        message.setField(11, cl_ord_id)
        message.setField(55, load.symbol)
        message.setField(54, "1")
        message.setField(60, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()))
        message.setField(38, str(load.qty))
        message.setField(40, "1")
        sent_ns = time.perf_counter_ns()
        fix.Session.sendToTarget(message, self.session_id)
        return cl_ord_id, sent_ns


def initiator_config(settings: Settings, store: Path) -> str:
    """The QuickFIX settings of the benchmark's initiator (the broker's side of the session)."""
    return "\n".join(
        [
            "[DEFAULT]",
            "ConnectionType=initiator",
            "SocketConnectHost=127.0.0.1",
            f"SocketConnectPort={settings.sim_fix_port}",
            "SocketNodelay=Y",
            "HeartBtInt=30",
            "ReconnectInterval=1",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "ResetOnLogon=Y",
            f"FileStorePath={store}",
            "UseDataDictionary=Y",
            f"DataDictionary={data_dictionary_path()}",
            "[SESSION]",
            f"BeginString={BEGIN_STRING}",
            f"SenderCompID={settings.sim_target_comp_id}",
            f"TargetCompID={settings.sim_sender_comp_id}",
            "",
        ]
    )


@contextmanager
def logged_on(settings: Settings, workdir: Path) -> Iterator[Initiator]:
    """A started initiator whose session is logged on; stopped on exit."""
    config = workdir / "initiator.cfg"
    config.write_text(initiator_config(settings, workdir / "initiator-store"), encoding="utf-8")
    session_settings = fix.SessionSettings(str(config))
    app = Initiator()
    initiator = fix.SocketInitiator(
        app,
        fix.FileStoreFactory(session_settings),
        session_settings,
        fix.ScreenLogFactory(False, False, False),
    )
    initiator.start()
    try:
        if not app.logged_on.wait(LOGON_TIMEOUT_S):
            raise BenchError(f"the simulator did not accept a logon within {LOGON_TIMEOUT_S}s")
        yield app
    finally:
        initiator.stop()


def _next_fill(app: Initiator) -> tuple[str, int]:
    try:
        return app.fills.get(timeout=ORDER_TIMEOUT_S)
    except queue.Empty:
        raise BenchError(f"no fill report within {ORDER_TIMEOUT_S}s") from None


def closed_loop(app: Initiator, load: FixLoad, count: int, deadline: float) -> RoundTrips:
    """``count`` orders one at a time; each one's send-to-fill latency."""
    latencies: list[int] = []
    start = time.perf_counter()
    for n in range(count):
        if n % 100 == 0 and time.monotonic() > deadline:
            raise BenchError(f"closed loop missed its deadline after {n} of {count} orders")
        cl_ord_id, sent_ns = app.send_order(load)
        filled_id, filled_ns = _next_fill(app)
        if filled_id != cl_ord_id:
            raise BenchError(f"a fill of {filled_id} came back while {cl_ord_id} was in flight")
        latencies.append(filled_ns - sent_ns)
    return RoundTrips(count, time.perf_counter() - start, tuple(latencies))


def pipelined(app: Initiator, load: FixLoad, deadline: float) -> RoundTrips:
    """``load.orders`` orders with up to ``load.window`` in flight; orders/s to the last fill."""
    app.in_flight = threading.Semaphore(load.window)
    try:
        start = time.perf_counter()
        for n in range(load.orders):
            if not app.in_flight.acquire(timeout=ORDER_TIMEOUT_S):
                raise BenchError(f"no fill freed a slot within {ORDER_TIMEOUT_S}s (sent {n})")
            if time.monotonic() > deadline:
                raise BenchError(f"pipelined run missed its deadline after {n} orders")
            app.send_order(load)
        for _ in range(load.window):  # every slot back: every order has its fill
            if not app.in_flight.acquire(timeout=ORDER_TIMEOUT_S):
                raise BenchError(f"the last fills did not arrive within {ORDER_TIMEOUT_S}s")
        duration_s = time.perf_counter() - start
    finally:
        app.in_flight = None
    received = 0
    while not app.fills.empty():
        app.fills.get_nowait()
        received += 1
    if received != load.orders:
        raise BenchError(f"{received} final reports for {load.orders} orders")
    return RoundTrips(load.orders, duration_s)


def measure_fix(settings: Settings, load: FixLoad, workdir: Path) -> tuple[RoundTrips, RoundTrips]:
    """Run the simulator, log on, warm up; return the closed-loop and pipelined round trips."""
    deadline = time.monotonic() + load.deadline_s
    sim_settings = settings.model_copy(
        update={
            "state_dir": workdir / "state",
            "sim_fix_port": free_port(),
            "sim_tick_workers": 0,
            "sim_tick_rate_per_s": 0,  # no ticks: the FIX path alone
            "sim_partial_fill_qty_max": max(load.qty, settings.sim_partial_fill_qty_max),
            "sim_eod_enabled": False,
        }
    )
    with (
        simulator_process(sim_settings, workdir / "simulator.log"),
        logged_on(sim_settings, workdir) as app,
    ):
        closed_loop(app, load, load.warmup_orders, deadline)
        closed = closed_loop(app, load, load.orders, deadline)
        piped = pipelined(app, load, deadline)
        if app.rejects:
            raise BenchError(f"{app.rejects} orders or messages were rejected; see {workdir}")
    return closed, piped


# The ceiling: a TCP echo between two processes.


def _echo_server(port: int, ready: Any, message_bytes: int) -> None:
    """Echo each message back on one connection until it closes (runs in its own process)."""
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(PORT_WAIT_S)
        ready.set()
        conn, _ = server.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while chunk := conn.recv(message_bytes * 64):
            buffer += chunk
            # One reply per whole message, as a server answers each request on its own.
            while len(buffer) >= message_bytes:
                conn.sendall(buffer[:message_bytes])
                buffer = buffer[message_bytes:]


def _recv_exactly(sock: socket.socket, size: int) -> None:
    left = size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise BenchError("the echo server closed the connection")
        left -= len(chunk)


def echo(count: int, window: int, message_bytes: int = ECHO_MESSAGE_BYTES) -> RoundTrips:
    """``count`` echoes with ``window`` in flight (1: each one timed) against a server process."""
    port = free_port()
    ready = _SPAWN.Event()
    server = _SPAWN.Process(
        target=_echo_server, args=(port, ready, message_bytes), name="echo", daemon=True
    )
    server.start()
    try:
        if not ready.wait(PORT_WAIT_S):
            raise BenchError(f"the echo server did not start within {PORT_WAIT_S}s")
        with socket.create_connection(("127.0.0.1", port), timeout=ORDER_TIMEOUT_S) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _echo_loop(sock, count, window, message_bytes)
    finally:
        server.join(PROCESS_STOP_S)
        if server.is_alive():
            server.terminate()
            server.join(PROCESS_STOP_S)


def _echo_loop(sock: socket.socket, count: int, window: int, message_bytes: int) -> RoundTrips:
    payload = b"x" * message_bytes
    latencies: list[int] = []
    start = time.perf_counter()
    if window == 1:
        for _ in range(count):
            sent_ns = time.perf_counter_ns()
            sock.sendall(payload)
            _recv_exactly(sock, message_bytes)
            latencies.append(time.perf_counter_ns() - sent_ns)
    else:
        sent = min(window, count)
        sock.sendall(payload * sent)
        received_bytes = 0
        while received_bytes < count * message_bytes:
            chunk = sock.recv(message_bytes * window)
            if not chunk:
                raise BenchError("the echo server closed the connection")
            done_before = received_bytes // message_bytes
            received_bytes += len(chunk)
            more = min(received_bytes // message_bytes - done_before, count - sent)
            if more > 0:
                sock.sendall(payload * more)
                sent += more
    return RoundTrips(count, time.perf_counter() - start, tuple(latencies))


# Results.


def measure(settings: Settings, host: HostInfo, load: FixLoad) -> list[Row]:
    """The echo ceilings and the FIX round trips beside them: closed loop, then pipelined."""
    workdir = settings.state_dir / "bench" / f"fix-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True, exist_ok=True)
    echo_closed = echo(load.echo_round_trips, 1)
    echo_piped = echo(load.echo_round_trips, load.window)
    closed, piped = measure_fix(settings, load, workdir)
    shutil.rmtree(workdir, ignore_errors=True)  # kept for a look when the run failed
    conditions: dict[str, str | int] = {
        "orders": load.orders,
        "warmup_orders": load.warmup_orders,
        "order": f"MARKET buy {load.qty} {load.symbol}, one fill report",
        "initiator": "python quickfix-ssl, data dictionary on",
        "simulator": "own process, ticks off, file store + fill journal",
    }
    ceiling_closed = _echo_result("tcp.echo.closed", echo_closed, 1, host)
    ceiling_piped = _echo_result("tcp.echo.pipelined", echo_piped, load.window, host)
    fix_closed = Result.now(
        "fix.roundtrip.closed",
        closed.per_s,
        "round trips/s",
        conditions | {"in_flight": 1},
        host,
        closed.latency_details() | _latency_vs_echo(closed, echo_closed),
    )
    fix_piped = Result.now(
        "fix.roundtrip.pipelined",
        piped.per_s,
        "round trips/s",
        conditions | {"in_flight": load.window},
        host,
        {"duration_s": round(piped.duration_s, 3)},
    )
    return [
        Row(ceiling_closed),
        Row(fix_closed, ceiling_closed),
        Row(ceiling_piped),
        Row(fix_piped, ceiling_piped),
    ]


def _latency_vs_echo(fix_trips: RoundTrips, echo_trips: RoundTrips) -> dict[str, float]:
    """How many bare echo round trips fit in one FIX order round trip, at the median."""
    fix_p50 = percentile(sorted(fix_trips.latencies_ns), 0.5)
    echo_p50 = percentile(sorted(echo_trips.latencies_ns), 0.5)
    return {"latency_p50_x_echo": round(fix_p50 / echo_p50, 1)}


def _echo_result(name: str, trips: RoundTrips, window: int, host: HostInfo) -> Ceiling:
    conditions: dict[str, str | int] = {
        "round_trips": trips.count,
        "message_bytes": ECHO_MESSAGE_BYTES,
        "in_flight": window,
        "echo": "python client and server processes, loopback, TCP_NODELAY, a send per message",
    }
    details = {"duration_s": round(trips.duration_s, 3)} | trips.latency_details()
    return Result.now(name, trips.per_s, "round trips/s", conditions, host, details)
