"""Where the host's CPU went during a measured window: all cores, and given processes.

A throughput figure alone does not say whether a run was bound by the code or by the machine;
the busy cores beside it do (two workers cannot scale 2x on a host already busy on every core).
Read from /proc (Linux): /proc/stat for the host, /proc/<pid>/stat for a process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal ...
_IDLE_FIELDS = (3, 4)
# /proc/<pid>/stat after the ")" closing the command name: utime and stime are fields 14 and 15
# of the whole line, so 12 and 13 of what follows the name.
_UTIME, _STIME = 11, 12


def _ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    """Host busy and total clock ticks, and each watched process's CPU ticks, at one moment."""

    at: float
    host_busy: int
    host_total: int
    processes: dict[int, int]


def _host_ticks(proc: Path) -> tuple[int, int]:
    fields = [int(v) for v in (proc / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = sum(fields[i] for i in _IDLE_FIELDS)
    return sum(fields) - idle, sum(fields)


def _process_ticks(proc: Path, pid: int) -> int:
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return 0  # gone: its CPU up to now is lost to the sample, said by a zero
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[_UTIME]) + int(fields[_STIME])


def sample(pids: Iterable[int], proc: Path = PROC) -> CpuSample:
    """Take a sample of the host and of ``pids``."""
    busy, total = _host_ticks(proc)
    return CpuSample(time.monotonic(), busy, total, {p: _process_ticks(proc, p) for p in pids})


def busy_cores(
    start: CpuSample, end: CpuSample, groups: Mapping[str, Iterable[int]]
) -> dict[str, float]:
    """Cores kept busy between two samples: the host's, and each named group of processes'."""
    seconds = end.at - start.at
    if seconds <= 0:
        raise ValueError("the end sample must come after the start sample")
    ticks_per_s = _ticks_per_s()
    cores = os.cpu_count() or 1
    total = end.host_total - start.host_total
    host = (end.host_busy - start.host_busy) / total * cores if total > 0 else 0.0
    out: dict[str, float] = {"host_busy_cores": round(host, 2), "host_cores": cores}
    for label, pids in groups.items():
        used = sum(end.processes.get(p, 0) - start.processes.get(p, 0) for p in pids)
        out[f"{label}_busy_cores"] = round(used / ticks_per_s / seconds, 2)
    return out
