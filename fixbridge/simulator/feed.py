"""The market-data feed: tick publishers (threads or processes) and the shared price board.

One Python thread tops out near 150k ticks/s (building and validating each ``Tick`` costs a few
microseconds), so the firehose can be split into ``sim_tick_workers`` processes, each owning every
N-th symbol, its own random walk (seeded by seed and shard) and its own producer. Every publisher
writes each symbol's latest price, in ticks, into one shared array; the simulator's matching
engine reads prices from there, and a poller hands the symbols that moved to the engine.
With ``sim_tick_workers`` = 0 a single publisher runs as a thread of the simulator process.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import threading
from collections.abc import Sequence
from decimal import Decimal
from multiprocessing.sharedctypes import RawArray
from typing import Any

from core.settings import Settings
from fixbridge.simulator.market_data import TickPublisher, rate_plan
from fixbridge.simulator.prices import PriceWalk
from fixbridge.simulator.universe import Instrument, build_universe

log = logging.getLogger(__name__)

SHARDS_MAX = 16
PROCESS_EXIT_GRACE_S = 5.0
_SPAWN = multiprocessing.get_context("spawn")  # never fork a process that runs QuickFIX threads


class PriceBoard:
    """The latest price of every instrument, in ticks, in memory shared with the publishers."""

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        self._symbols = [i.symbol for i in instruments]
        self._index = {symbol: n for n, symbol in enumerate(self._symbols)}
        self._tick_sizes = [i.tick_size for i in instruments]
        # 64-bit slots: a single aligned store, so a reader never sees half a price.
        self.array: Any = RawArray("q", [round(i.ref_price / i.tick_size) for i in instruments])
        self._seen = list(self.array)

    def price(self, symbol: str) -> Decimal | None:
        """The latest price of ``symbol``, or None for a symbol the exchange does not list."""
        index = self._index.get(symbol)
        if index is None:
            return None
        return int(self.array[index]) * self._tick_sizes[index]

    def changed(self) -> dict[str, Decimal]:
        """The symbols whose price changed since the last call, with their new prices."""
        current = list(self.array)
        moved = {
            self._symbols[n]: ticks * self._tick_sizes[n]
            for n, (ticks, seen) in enumerate(zip(current, self._seen, strict=True))
            if ticks != seen
        }
        self._seen = current
        return moved


def shard_publisher(settings: Settings, shard: int, shards: int, board_array: Any) -> TickPublisher:
    """The publisher of shard ``shard`` of ``shards``: every shards-th symbol from ``shard``."""
    universe = build_universe(settings.sim_symbols_count)
    mine = universe[shard::shards]
    global_index = list(range(shard, len(universe), shards))
    walk = PriceWalk(mine, seed=settings.sim_seed * SHARDS_MAX + shard)

    def on_moved(moved: dict[int, int]) -> None:
        for local, ticks in moved.items():
            board_array[global_index[local]] = ticks

    return TickPublisher(settings, mine, walk, plan=rate_plan(settings, shards), on_moved=on_moved)


def _stop_with_parent(stop: Any) -> None:
    """Set ``stop`` when the simulator dies: a SIGKILL gives it no chance to stop its shards."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        # The sentinel becomes readable when the parent process is gone.
        multiprocessing.connection.wait([parent.sentinel])
        log.warning("the simulator process is gone; stopping this shard")
        stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _shard_main(
    settings: Settings, shard: int, shards: int, board_array: Any, stop: Any, log_level: int
) -> None:
    """Entry point of a publisher process: publish until ``stop`` is set, then flush."""
    logging.basicConfig(
        level=log_level, format=f"%(asctime)s %(levelname)s ticks[{shard}] %(name)s: %(message)s"
    )
    _stop_with_parent(stop)
    publisher = shard_publisher(settings, shard, shards, board_array)
    try:
        publisher.run(stop)
    except KeyboardInterrupt:
        publisher.flush()
    log.info("shard %d stopped after %d ticks", shard, publisher.ticks_sent)


class Feed:
    """Starts and stops the publishers, and the poller that feeds price moves to the engine."""

    def __init__(self, settings: Settings, board: PriceBoard) -> None:
        self._settings = settings
        self._board = board
        self._workers = settings.sim_tick_workers
        self._thread_stop = threading.Event()
        self._process_stop: Any = _SPAWN.Event()
        self._processes: list[Any] = []
        self._threads: list[threading.Thread] = []
        self.thread_publisher: TickPublisher | None = None

    def start(self) -> None:
        """Start the publishers (processes, or one thread when workers is 0)."""
        if self._workers == 0:
            self.thread_publisher = shard_publisher(self._settings, 0, 1, self._board.array)
            self._spawn_thread("ticks", self.thread_publisher.run, self._thread_stop)
            return
        for shard in range(self._workers):
            process = _SPAWN.Process(
                target=_shard_main,
                args=(
                    self._settings,
                    shard,
                    self._workers,
                    self._board.array,
                    self._process_stop,
                    logging.getLogger().getEffectiveLevel(),
                ),
                name=f"sim-ticks-{shard}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)

    def start_poller(self, on_prices: Any) -> None:
        """Every tick interval, hand the symbols that moved to ``on_prices``."""
        interval_s = self._settings.sim_tick_interval_ms / 1000

        def poll(stop: threading.Event) -> None:
            while not stop.wait(interval_s):
                moved = self._board.changed()
                if moved:
                    try:
                        on_prices(moved)
                    except Exception:  # a bad report must not stop the market
                        log.exception("matching on a price move failed")

        self._spawn_thread("price-poller", poll, self._thread_stop)

    def _spawn_thread(self, name: str, target: Any, stop: threading.Event) -> None:
        thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def alive(self) -> bool:
        """Whether every publisher is still running."""
        return all(p.is_alive() for p in self._processes) and all(
            t.is_alive() for t in self._threads
        )

    def stop(self) -> None:
        """Stop the publishers (each flushes its producer) and the poller; bounded waits."""
        timeout_s = self._settings.shutdown_timeout_s
        self._process_stop.set()
        self._thread_stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        for process in self._processes:
            # The child flushes within timeout_s itself; allow for its start-up and exit too.
            process.join(timeout_s + PROCESS_EXIT_GRACE_S)
            if process.is_alive():
                log.warning(
                    "tick process %s did not stop in %ss; terminating", process.pid, timeout_s
                )
                process.terminate()
                process.join(timeout_s)
