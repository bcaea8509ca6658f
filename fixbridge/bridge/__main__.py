"""``python -m fixbridge.bridge``: run the FIX bridge until SIGTERM or SIGINT.

Run several (``BROKER_BRIDGE_PROCESSES``, sharing ``BROKER_STATE_DIR``): each starts as a standby
and the one that takes the leader lease in PostgreSQL (``lease``) holds the FIX session, continues
its stored sequence numbers, asks the exchange about unfinished orders and consumes
``oms.orders``; the others do nothing until it is gone.

Settings come from ``BROKER_*`` variables (``BROKER_BRIDGE_*`` for the FIX session and the lease,
the Kafka and PostgreSQL ones shared with every service). Exit status 0 after a signal, 1 on a
database or Kafka failure, 75 when Kafka did not acknowledge a report (start again once Kafka is
back), 76 when the lease was lost (start again: it comes back as a standby).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from core.settings import Settings, get_settings
from fixbridge.bridge.exceptions import LeaseLostError
from fixbridge.bridge.execution import OrderConsumer, OrderRouter, ReportForwarder
from fixbridge.bridge.lease import LeaderLease, PgLeaseStore, holder_id
from fixbridge.bridge.publisher import KafkaPublisher
from fixbridge.bridge.recovery import UnknownOrderAnswers, request_unfinished_statuses
from fixbridge.bridge.session import BridgeApplication, FixSession
from fixbridge.bridge.store import SentOrders

log = logging.getLogger("fixbridge.bridge")


def run(settings: Settings, stop: threading.Event) -> None:
    """Stand by until this process holds the lease, then lead until ``stop`` is set."""
    leases = PgLeaseStore(settings.pg_dsn, ttl_ms=settings.bridge_lease_ttl_ms)
    lease = LeaderLease(
        leases,
        settings.bridge_sender_comp_id,
        holder_id(),
        ttl_ms=settings.bridge_lease_ttl_ms,
        renew_ms=settings.bridge_lease_renew_ms,
    )
    try:
        if not lease.wait_to_lead(stop):
            return
        lease.start_keeping()
        try:
            lead(settings, stop, lease)
        finally:
            # After the Logout (a send, still under the lease): a standby takes over at once.
            lease.release()
    finally:
        leases.close()
    log.info("FIX bridge stopped")


def lead(settings: Settings, stop: threading.Event, lease: LeaderLease) -> None:
    """Wire the bridge under ``lease``, run it until ``stop`` is set, and take it down."""
    store = SentOrders(
        settings.pg_dsn, connect_timeout_s=settings.pg_connect_timeout_s, lease=lease.terms
    )
    store.open(settings.startup_timeout_s)
    try:
        # One producer per thread: reports on QuickFIX's thread, dead letters on this one.
        forwarder = ReportForwarder(KafkaPublisher(settings), store)
        application = BridgeApplication(forwarder, guard=lease.check)
        # Only now: QuickFIX opens the shared file store (the sequence numbers) when it is built.
        session = FixSession(settings, application)
        application.on_unknown_order = UnknownOrderAnswers(store, session, forwarder)
        router = OrderRouter(store, session)

        def recover() -> None:
            request_unfinished_statuses(store, session, settings.bridge_recovery_page_max)

        consumer = OrderConsumer(
            settings, router, KafkaPublisher(settings), application.logged_on, recover
        )
        log.info(
            "FIX bridge leads (epoch %d): %s -> %s at %s:%d; orders from %s, reports to %s",
            lease.terms.epoch,
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
        except LeaseLostError as exc:
            # Before the finally below: stopping the initiator would send a Logout.
            lease.lost(str(exc))
        finally:
            session.stop()
    finally:
        store.close()


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
