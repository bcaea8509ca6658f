"""bench/cpu.py reads busy cores from /proc; here from a /proc written by the test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import cpu

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def write_proc(root: Path, host: tuple[int, ...], processes: dict[int, tuple[int, int]]) -> None:
    root.mkdir(exist_ok=True)
    (root / "stat").write_text("cpu  " + " ".join(map(str, host)) + "\ncpu0 1 2 3 4\n")
    for pid, (utime, stime) in processes.items():
        (root / str(pid)).mkdir(exist_ok=True)
        # The command name may hold spaces and parentheses; fields count after the last ")".
        before = " ".join(["S"] + ["0"] * 10)
        (root / str(pid) / "stat").write_text(f"{pid} (py (x) y) {before} {utime} {stime} 0 0\n")


def test_busy_cores_counts_host_and_processes_between_two_samples(tmp_path: Path) -> None:
    # user nice system idle iowait irq softirq steal: 100 ticks pass, 75 of them busy.
    write_proc(tmp_path, (100, 0, 50, 800, 50, 0, 0, 0), {7: (10, 5)})
    start = cpu.sample([7, 8], tmp_path)
    write_proc(tmp_path, (150, 0, 75, 820, 55, 0, 0, 0), {7: (10 + TICKS_PER_S, 5)})
    end = cpu.sample([7, 8], tmp_path)
    end = cpu.CpuSample(start.at + 2.0, end.host_busy, end.host_total, end.processes)

    cores = cpu.busy_cores(start, end, {"workers": [7], "gone": [8]})

    assert cores["host_busy_cores"] == round(75 / 100 * (os.cpu_count() or 1), 2)
    assert cores["workers_busy_cores"] == 0.5  # one second of CPU in two seconds
    assert cores["gone_busy_cores"] == 0.0  # a pid that does not exist counts nothing


def test_busy_cores_refuses_samples_in_the_wrong_order(tmp_path: Path) -> None:
    write_proc(tmp_path, (1, 0, 1, 1, 0, 0, 0, 0), {})
    first = cpu.sample([], tmp_path)
    with pytest.raises(ValueError, match="after"):
        cpu.busy_cores(first, first, {})
