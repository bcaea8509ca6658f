"""A FIX peer written outside this project (QuickFIX/J, Maven Central) trades with the simulator.

The peer (infra/quickfixj) validates every message against QuickFIX/J's own FIX 4.4 dictionary,
so a fill it accepts without a session-level Reject proves the simulator speaks standard FIX 4.4,
not just a dialect our own QuickFIX C++ initiator happens to tolerate. The simulator runs as its
own process (``python -m fixbridge.simulator``) on a free port with a state folder of its own.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.instruments import DEFAULT_INSTRUMENTS
from core.settings import PROJECT_ROOT, Settings
from tests.conftest import free_port
from tests.integration.test_bridge_harness import Service, wait_for_port

pytestmark = pytest.mark.integration

PEER_DIR = PROJECT_ROOT / "infra" / "quickfixj"
BUILD_DIR = PROJECT_ROOT / ".local" / "quickfixj"
PEER_CLASS = BUILD_DIR / "classes" / "broker" / "peer" / "Peer.class"
# The first build downloads QuickFIX/J and Maven's plugins; later builds are skipped (cached).
BUILD_TIMEOUT_S = 600.0
PEER_TIMEOUT_S = 30
PEER_RUN_TIMEOUT_S = PEER_TIMEOUT_S + 30.0  # the JVM's start and the peer's own bound
ORDER_QTY = 1_200  # above sim_partial_fill_qty_max: the fills come in several reports
PARTIAL_FILL_QTY_MAX = 500


@dataclass(frozen=True)
class PeerReport:
    """One ``REPORT`` line the QuickFIX/J peer printed."""

    exec_id: str
    exec_type: str
    ord_status: str
    last_qty: int
    cum_qty: int
    leaves_qty: int


def _source_mtime_ns() -> int:
    sources = [PEER_DIR / "pom.xml", *PEER_DIR.joinpath("src").rglob("*.java")]
    return max(path.stat().st_mtime_ns for path in sources)


def _built() -> bool:
    jars = list(BUILD_DIR.joinpath("lib").glob("quickfixj-core-*.jar"))
    return (
        bool(jars) and PEER_CLASS.exists() and PEER_CLASS.stat().st_mtime_ns >= _source_mtime_ns()
    )


def build_peer() -> list[str]:
    """Build the peer with Maven unless the cached build is current; return its java command."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None or mvn is None:
        pytest.skip("the QuickFIX/J peer needs java (17+) and mvn on PATH")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    # Two test sessions may build at once; the lock makes the second wait for the first.
    with (BUILD_DIR / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _built():
            done = subprocess.run(
                [mvn, "-q", "-B", "-f", str(PEER_DIR / "pom.xml"), "package"],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
            assert done.returncode == 0, f"mvn package failed:\n{done.stdout}\n{done.stderr}"
    classpath = f"{BUILD_DIR / 'classes'}:{BUILD_DIR / 'lib'}/*"
    return [java, "-cp", classpath, "broker.peer.Peer"]


def parse_lines(stdout: str, kind: str) -> list[dict[str, str]]:
    """The ``key=value`` pairs of every output line that starts with ``kind``."""
    out = []
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == kind:
            out.append(dict(pair.split("=", 1) for pair in rest.split(" ") if "=" in pair))
    return out


def parse_reports(stdout: str) -> list[PeerReport]:
    """The ExecutionReports the peer printed, in order."""

    def qty(text: str) -> int:
        return 0 if text == "-" else int(text)

    return [
        PeerReport(
            exec_id=f["exec_id"],
            exec_type=f["exec_type"],
            ord_status=f["ord_status"],
            last_qty=qty(f["last_qty"]),
            cum_qty=qty(f["cum_qty"]),
            leaves_qty=qty(f["leaves_qty"]),
        )
        for f in parse_lines(stdout, "REPORT")
    ]


@pytest.fixture
def simulator(
    running_stack: Settings, new_topic: Callable[[int], str], tmp_path: Path
) -> Iterator[Service]:
    """The exchange simulator as its own process on a free port, stopped after the test."""
    settings = running_stack.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "topic_ticks": new_topic(1),
            "sim_fix_port": free_port(),
            "sim_tick_workers": 0,
            "sim_tick_rate_per_s": 200,
            "sim_partial_fill_qty_max": PARTIAL_FILL_QTY_MAX,
            "sim_eod_enabled": False,
            "shutdown_timeout_s": 10.0,
        }
    )
    service = Service("fixbridge.simulator", settings, tmp_path / "simulator.log")
    service.start()
    try:
        wait_for_port(settings.sim_fix_port)
        yield service
    finally:
        service.stop()


def test_quickfixj_peer_logs_on_and_its_market_order_fills(
    simulator: Service, tmp_path: Path
) -> None:
    command = build_peer()
    settings = simulator.settings
    symbol = DEFAULT_INSTRUMENTS[1].symbol  # not ACME: any listed symbol trades
    log_dir = tmp_path / "quickfixj-log"
    try:
        done = subprocess.run(
            [
                *command,
                *("--port", str(settings.sim_fix_port)),
                # The peer is the broker's side: its SenderCompID is the simulator's target.
                *("--sender", settings.sim_target_comp_id),
                *("--target", settings.sim_sender_comp_id),
                *("--symbol", symbol),
                *("--qty", str(ORDER_QTY)),
                *("--timeout-s", str(PEER_TIMEOUT_S)),
                *("--log-dir", str(log_dir)),
            ],
            capture_output=True,
            text=True,
            timeout=PEER_RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # run() killed the JVM already
        pytest.fail(f"the QuickFIX/J peer ran past {PEER_RUN_TIMEOUT_S}s: {exc.stdout!r}")
    context = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\nsimulator:\n{simulator.log_text()}"
    assert done.returncode == 0, context

    assert parse_lines(done.stdout, "LOGON"), context
    assert parse_lines(done.stdout, "SESSION_REJECT") == [], context
    reports = parse_reports(done.stdout)
    new, *fills = reports
    assert (new.exec_type, new.ord_status, new.leaves_qty) == ("0", "0", ORDER_QTY)
    assert sum(f.last_qty for f in fills) == ORDER_QTY
    assert all(0 < f.last_qty <= PARTIAL_FILL_QTY_MAX for f in fills)
    assert [f.cum_qty for f in fills] == [
        sum(f.last_qty for f in fills[: n + 1]) for n in range(len(fills))
    ]
    assert [f.ord_status for f in fills] == ["1"] * (len(fills) - 1) + ["2"]
    assert (fills[-1].exec_type, fills[-1].leaves_qty) == ("F", 0)
    assert len({r.exec_id for r in reports}) == len(reports)

    # QuickFIX/J's own message log: no session-level Reject (35=3) either way, and the orders
    # and reports it logged are the ones the peer printed.
    [messages_log] = log_dir.glob("*.messages.log")
    frames = messages_log.read_text(errors="replace").splitlines()
    assert not [f for f in frames if "\x0135=3\x01" in f], context
    assert sum("\x0135=D\x01" in f for f in frames) == 1
    assert sum("\x0135=8\x01" in f for f in frames) == len(reports)
    assert "rejecting" not in simulator.log_text()
