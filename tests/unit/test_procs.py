"""Pid-file handling: a live process of ours is found, anything else counts as stale."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import procs
from infra.migrate import yoyo_url


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "marker-xyz"])
    # Between fork and exec the child still shows the parent's command line.
    procs.wait_until(lambda: procs.is_running(proc.pid, "marker-xyz"), 5, "the sleeper")
    yield proc
    proc.kill()
    proc.wait()


def test_live_pid_finds_our_running_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{sleeper.pid}\n")

    assert procs.live_pid(pid_file, "marker-xyz") == sleeper.pid
    assert pid_file.exists()


def test_pid_of_another_program_counts_as_stale_and_its_file_is_removed(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{sleeper.pid}\n")

    assert procs.live_pid(pid_file, "kafka.Kafka /some/other/config") is None
    assert not pid_file.exists()


def test_pid_of_a_dead_process_counts_as_stale(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{dead.pid}\n")

    assert procs.live_pid(pid_file, "") is None
    assert not pid_file.exists()


def test_garbage_pid_file_counts_as_stale(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("not a pid")

    assert procs.live_pid(pid_file, "") is None


def test_terminate_stops_a_process_and_reaps_it(sleeper: subprocess.Popen[bytes]) -> None:
    procs.terminate(sleeper.pid, "marker-xyz", timeout_s=5)

    assert not procs.is_running(sleeper.pid, "marker-xyz")


def test_wait_until_gives_up_after_its_bound() -> None:
    with pytest.raises(procs.InfraError, match="timed out after 0s waiting for nothing"):
        procs.wait_until(lambda: False, 0.3, "nothing")


def test_yoyo_url_quotes_credentials_from_a_libpq_dsn() -> None:
    url = yoyo_url("host=127.0.0.1 port=5999 user=broker password='p@ss word' dbname=x")

    assert url == "postgresql+psycopg://broker:p%40ss%20word@127.0.0.1:5999/x"
