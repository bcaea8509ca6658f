"""Run the stream workers: ``python -m streams [--workers N]``.

Each worker is its own process in one consumer group, so Kafka shares the partitions among
them; worker i serves its web page (metrics, liveness) on streams_web_port + i. SIGINT/SIGTERM
stop them all.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from core.settings import get_settings

log = logging.getLogger("streams")

POLL_S = 0.5


def worker_argv(index: int, web_port: int) -> list[str]:
    """The command line of worker ``index``."""
    return [
        sys.executable,
        "-m",
        "faust",
        "-A",
        "streams.worker",
        "worker",
        "--loglevel",
        "info",
        "--web-port",
        str(web_port + index),
    ]


def main(argv: list[str] | None = None) -> int:
    """Start N workers, wait, and stop them all when one dies or a signal arrives."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m streams", description=__doc__)
    parser.add_argument("--workers", type=int, default=settings.streams_workers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s streams %(message)s")
    procs = []
    # Started together: the agents consume in plain aiokafka groups (streams/batch_consumer.py),
    # and Faust's own consumer, whose group rebalanced for minutes when workers joined at once,
    # is not started (streams/app.py: no Faust agent).
    for i in range(args.workers):
        procs.append(subprocess.Popen(worker_argv(i, settings.streams_web_port)))  # noqa: S603
    log.info("started %d worker(s): pids %s", len(procs), [p.pid for p in procs])
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(POLL_S)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + settings.shutdown_timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    codes = [p.returncode for p in procs]
    log.info("workers stopped: exit codes %s", codes)
    return 0 if stopping else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
