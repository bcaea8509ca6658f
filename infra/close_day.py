"""``python -m infra close-day``: the exchange simulator's end of day now, and its trade report.

The simulator runs its end of day on SIGUSR1 (DAY orders expire, the day's trade report lands
in the landing folder, where Dagster's sensor starts a reconciliation run). This sends the
signal through the supervisor of `make up` and waits until the report has landed.
"""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from core.settings import Settings
from fixbridge.simulator.config import trade_report_dir
from fixbridge.simulator.journal import trading_day
from fixbridge.simulator.trade_report import report_path
from infra import procs, supervise

EXCHANGE = "exchange"  # the simulator's service name in infra/supervise.py
END_OF_DAY_SIGNAL = "USR1"


def close_day(settings: Settings, signal_simulator: Callable[[], None] | None = None) -> Path:
    """Make the running simulator close its trading day; return its trade report once landed."""
    day = trading_day(time.time_ns(), ZoneInfo(settings.market_tz))
    path = report_path(trade_report_dir(settings), day)
    before = _version(path)
    (signal_simulator or (lambda: signal_exchange(settings)))()
    timeout_s = settings.sim_close_day_timeout_s
    deadline = time.monotonic() + timeout_s
    # The report is written to a temporary file and renamed: a new inode or mtime is a new report.
    while _version(path) in (None, before):
        if time.monotonic() > deadline:
            raise procs.InfraError(
                f"no new trade report at {path} within {timeout_s:.0f}s; see the exchange's log"
                f" ({supervise.service_log(settings, EXCHANGE)})"
            )
        time.sleep(procs.POLL_INTERVAL_S)
    return path


def signal_exchange(settings: Settings) -> None:
    """Send the supervised simulator its end-of-day signal."""
    if not supervise.running(settings):
        raise procs.InfraError(
            "no supervised stack here: start it with `make up` (a simulator run by hand closes"
            " its day on `kill -USR1 <pid>`)"
        )
    try:
        supervise.client(settings).supervisor.signalProcess(EXCHANGE, END_OF_DAY_SIGNAL)
    except xmlrpc.client.Fault as fault:
        raise procs.InfraError(f"could not signal the {EXCHANGE}: {fault.faultString}") from fault


def _version(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns
