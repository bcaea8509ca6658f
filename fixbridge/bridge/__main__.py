"""``python -m fixbridge.bridge``: run the FIX bridge until SIGTERM or SIGINT.

Settings come from ``BROKER_*`` variables (``BROKER_BRIDGE_*`` for the FIX session, the Kafka
and PostgreSQL ones shared with every service). Exit status 0 after a signal, 1 on a database or
Kafka failure, 75 when Kafka did not acknowledge a report (start again once Kafka is back).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from core.settings import Settings, get_settings
from fixbridge.bridge.execution import OrderConsumer, OrderRouter, ReportForwarder
from fixbridge.bridge.publisher import KafkaPublisher
from fixbridge.bridge.recovery import request_unfinished_statuses
from fixbridge.bridge.session import BridgeApplication, FixSession
from fixbridge.bridge.store import SentOrders

log = logging.getLogger("fixbridge.bridge")


def run(settings: Settings, stop: threading.Event) -> None:
    """Wire the bridge, run it until ``stop`` is set, and take it down."""
    store = SentOrders(settings.pg_dsn, connect_timeout_s=settings.pg_connect_timeout_s)
    store.open(settings.startup_timeout_s)
    try:
        # One producer per thread: reports on QuickFIX's thread, dead letters on this one.
        application = BridgeApplication(ReportForwarder(KafkaPublisher(settings), store))
        session = FixSession(settings, application)
        router = OrderRouter(store, session)

        def recover() -> None:
            request_unfinished_statuses(store, session, settings.bridge_recovery_page_max)

        consumer = OrderConsumer(
            settings, router, KafkaPublisher(settings), application.logged_on, recover
        )
        log.info(
            "FIX bridge %s -> %s at %s:%d; orders from %s, reports to %s",
            settings.bridge_sender_comp_id,
            settings.bridge_target_comp_id,
            settings.bridge_fix_host,
            settings.bridge_fix_port,
            settings.topic_orders,
            settings.topic_execution_reports,
        )
        session.start()
        try:
            consumer.run(stop)
        finally:
            session.stop()
    finally:
        store.close()
    log.info("FIX bridge stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bridge until SIGTERM/SIGINT; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m fixbridge.bridge", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    try:
        run(get_settings(), stop)
    except Exception:
        log.exception("the FIX bridge failed")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
