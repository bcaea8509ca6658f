"""``python -m fixbridge.simulator``: run the exchange simulator until SIGTERM or SIGINT.

Settings come from ``BROKER_*`` variables; the flags below override the most used ones.
SIGUSR1 runs the end of day at once (DAY orders expire, the trade report is written); under
`make up`, ``python -m infra close-day`` sends it and waits for the report.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from core.settings import Settings, get_settings
from fixbridge.simulator.runner import Simulator

log = logging.getLogger("fixbridge.simulator")

# Flag name -> settings field; a flag left out keeps the setting.
_OVERRIDES = {
    "port": "sim_fix_port",
    "seed": "sim_seed",
    "symbols": "sim_symbols_count",
    "rate": "sim_tick_rate_per_s",
    "workers": "sim_tick_workers",
    "burst_multiplier": "sim_open_burst_multiplier",
    "burst_s": "sim_open_burst_s",
    "drop_fills": "sim_inject_drop_fills",
    "change_qty": "sim_inject_change_qty",
    "extra_trades": "sim_inject_extra_trades",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fixbridge.simulator", description=__doc__)
    parser.add_argument("--port", type=int, help="FIX acceptor port (BROKER_SIM_FIX_PORT)")
    parser.add_argument("--seed", type=int, help="random walk seed (BROKER_SIM_SEED)")
    parser.add_argument("--symbols", type=int, help="universe size (BROKER_SIM_SYMBOLS_COUNT)")
    parser.add_argument("--rate", type=int, help="ticks per second (BROKER_SIM_TICK_RATE_PER_S)")
    parser.add_argument("--workers", type=int, help="tick processes, 0 = a thread")
    parser.add_argument("--burst-multiplier", type=int, help="market-open rate multiplier")
    parser.add_argument("--burst-s", type=float, help="market-open burst length in seconds")
    parser.add_argument("--drop-fills", type=int, help="fills to drop from each trade report")
    parser.add_argument("--change-qty", type=int, help="fills to report with a wrong quantity")
    parser.add_argument("--extra-trades", type=int, help="trades to add to each trade report")
    parser.add_argument("--log-level", default="INFO")
    return parser


def settings_from_args(args: argparse.Namespace, base: Settings) -> Settings:
    """``base`` with every flag that was given applied (validated like the environment)."""
    updates: dict[str, Any] = {
        field: getattr(args, flag)
        for flag, field in _OVERRIDES.items()
        if getattr(args, flag) is not None
    }
    # model_copy skips validation; rebuilding through the model validates the overrides.
    return Settings.model_validate(base.model_dump() | updates)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGTERM/SIGINT; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_from_args(args, get_settings())
    simulator = Simulator(settings)
    stop = threading.Event()
    eod_now = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    def on_eod(_signum: int, _frame: FrameType | None) -> None:
        eod_now.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_eod)
    simulator.start()
    try:
        while not stop.wait(0.2):
            if eod_now.is_set():
                eod_now.clear()
                simulator.end_of_day()
            if not simulator.feed.alive():
                log.error("a tick publisher died; stopping")
                return 1
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
