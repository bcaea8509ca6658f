"""Pid files, liveness and bounded waits for the daemons the project starts itself."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2


class InfraError(RuntimeError):
    """A local service could not be started or stopped; the message names its log file."""


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in a pid file, or None when the file is absent or unreadable."""
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def is_running(pid: int, marker: str) -> bool:
    """True when pid is alive and its command line contains marker (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    status = Path(f"/proc/{pid}/status")
    with contextlib.suppress(FileNotFoundError):
        if "\nState:\tZ" in status.read_text():
            return False
    return marker in cmdline


def live_pid(pid_file: Path, marker: str) -> int | None:
    """The pid from pid_file if that process is ours and alive; a stale file is removed."""
    pid = read_pid(pid_file)
    if pid is not None and is_running(pid, marker):
        return pid
    if pid_file.exists():
        log.info("removing stale pid file %s (pid %s is gone)", pid_file, pid)
        pid_file.unlink(missing_ok=True)
    return None


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll check() until it is true, or raise InfraError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL_INTERVAL_S)
    raise InfraError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def terminate(pid: int, marker: str, timeout_s: float) -> None:
    """SIGTERM pid and wait; SIGKILL it if it outlives timeout_s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not is_running(pid, marker), timeout_s, f"pid {pid} to exit")
    except InfraError:
        log.warning("pid %s ignored SIGTERM for %.0fs; killing it", pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not is_running(pid, marker), 5.0, f"pid {pid} to die")
    # Reap it if it was our child, so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


def spawn_daemon(
    what: str,
    argv: list[str],
    pid_file: Path,
    log_file: Path,
    ready: Callable[[], bool],
    timeout_s: float,
) -> int:
    """Start argv in a session of its own, logging to log_file; its pid once ready() holds.

    Raises InfraError with the log's last lines when it exits or is not ready in time.
    """
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    try:
        wait_until(lambda: proc.poll() is None and ready(), timeout_s, what)
    except InfraError as exc:
        raise InfraError(
            f"{what} did not start; last lines of {log_file}:\n{tail(log_file)}"
        ) from exc
    return proc.pid


def stop_daemon(pid_file: Path, marker: str, timeout_s: float) -> bool:
    """Stop the daemon named by pid_file if it runs; True when there was one to stop."""
    pid = live_pid(pid_file, marker)
    if pid is None:
        return False
    terminate(pid, marker, timeout_s)
    pid_file.unlink(missing_ok=True)
    return True
