"""Wires the exchange simulator together: universe, price board, engine, FIX acceptor, feed, EOD."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.settings import Settings
from fixbridge.exceptions import TradeReportError
from fixbridge.simulator.config import injection, simulator_dir, trade_report_dir
from fixbridge.simulator.feed import Feed, PriceBoard
from fixbridge.simulator.fix_acceptor import Acceptor, ExchangeApplication
from fixbridge.simulator.journal import FillJournal, trading_day
from fixbridge.simulator.matching import MatchingEngine
from fixbridge.simulator.trade_report import ReportFiles, write_trade_report
from fixbridge.simulator.universe import build_universe

log = logging.getLogger(__name__)


def next_close(now: datetime, close_hhmm: str, tz: ZoneInfo) -> datetime:
    """The next market close after ``now`` (today's if still ahead, else tomorrow's)."""
    hour, minute = (int(part) for part in close_hhmm.split(":"))
    local = now.astimezone(tz)
    close = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return close if close > local else close + timedelta(days=1)


class Simulator:
    """The whole exchange in one object: ``start``, ``end_of_day`` any time, ``stop``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tz = ZoneInfo(settings.market_tz)
        self.instruments = build_universe(settings.sim_symbols_count)
        self.board = PriceBoard(self.instruments)
        self.engine = MatchingEngine(
            self.instruments,
            self.board.price,
            partial_fill_qty_max=settings.sim_partial_fill_qty_max,
            resting_orders_max=settings.sim_resting_orders_max,
        )
        self.journal = FillJournal(simulator_dir(settings) / "fills", self.tz)
        self.application = ExchangeApplication(self.engine, self.journal)
        self.acceptor = Acceptor(settings, self.application)
        self.feed = Feed(settings, self.board)
        self._stop = threading.Event()
        self._eod_lock = threading.Lock()
        self._timer_threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the feed, the FIX acceptor, the price poller and the end-of-day timers."""
        # The landing folder exists before the first report: Dagster's sensor watches it.
        trade_report_dir(self.settings).mkdir(parents=True, exist_ok=True)
        self.feed.start()
        self.acceptor.start()
        self.feed.start_poller(self.application.on_prices)
        log.info(
            "exchange simulator listening for FIX 4.4 on %s:%d (SenderCompID=%s, TargetCompID=%s);"
            " %d symbols; ticks to %s on %s",
            self.settings.sim_fix_host,
            self.settings.sim_fix_port,
            self.settings.sim_sender_comp_id,
            self.settings.sim_target_comp_id,
            len(self.instruments),
            self.settings.topic_ticks,
            self.settings.kafka_bootstrap,
        )
        if self.settings.sim_eod_enabled:
            self._start_thread(self._eod_timer, "eod")
        if self.settings.market_always_open and self.settings.sim_demo_close_interval_s > 0:
            self._start_thread(self._demo_close_timer, "demo-close")

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._timer_threads.append(thread)

    def end_of_day(self, day: date | None = None) -> ReportFiles:
        """Expire DAY orders; write the trade report of ``day`` (default: today, exchange time)."""
        day = day or self._today()
        with self._eod_lock:
            expired = self.application.end_of_day()
            files = self._write_report(day)
        log.info(
            "end of day %s: %d DAY orders expired; %d rows, %d injected breaks in %s",
            day,
            len(expired),
            files.rows,
            files.breaks,
            files.csv_path,
        )
        return files

    def demo_close(self) -> ReportFiles:
        """Write today's trade report so far, leaving resting orders alone (always-open mode)."""
        day = self._today()
        with self._eod_lock:
            files = self._write_report(day)
        log.info(
            "demo close %s: %d rows, %d injected breaks in %s",
            day,
            files.rows,
            files.breaks,
            files.csv_path,
        )
        return files

    def _today(self) -> date:
        return trading_day(time.time_ns(), self.tz)

    def _write_report(self, day: date) -> ReportFiles:
        self.application.journal_fills()
        return write_trade_report(
            self.journal.read_day(day),
            day,
            trade_report_dir(self.settings),
            injection(self.settings),
            self.settings.sim_seed,
        )

    def _eod_timer(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(self.tz)
            close = next_close(now, self.settings.market_close, self.tz)
            if self._stop.wait((close - now).total_seconds()):
                return
            try:
                self.end_of_day(close.date())
            except TradeReportError:
                log.exception("the end-of-day trade report failed")

    def _demo_close_timer(self) -> None:
        wait_s = self.settings.sim_demo_close_first_s
        while not self._stop.wait(wait_s):
            wait_s = self.settings.sim_demo_close_interval_s
            try:
                self.demo_close()
            except TradeReportError:
                log.exception("the demo close's trade report failed")

    def stop(self) -> None:
        """Stop the acceptor (peers are logged out), then the feed (producers flush)."""
        self._stop.set()
        self.acceptor.stop()
        self.feed.stop()
        self.application.journal_fills()
        for thread in self._timer_threads:
            thread.join(self.settings.shutdown_timeout_s)
        log.info("exchange simulator stopped")
