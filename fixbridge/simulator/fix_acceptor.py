"""The exchange's FIX 4.4 side: a QuickFIX Application over the matching engine, and its acceptor.

QuickFIX runs the session layer (logon, heartbeats, test requests, stored sequence numbers,
resend and gap fill) and calls ``fromApp`` on its own threads; the engine takes its own lock.
Reports caused by something other than an inbound message (a price move filling a resting order,
the end of day) go to the session the order came from; QuickFIX stores them when that session is
down, and the peer's resend request brings them back after it logs on again.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal

import quickfix as fix

from core.settings import Settings
from fixbridge import fix44
from fixbridge.exceptions import FixMessageError
from fixbridge.session_config import session_files
from fixbridge.simulator import fix_messages as fm
from fixbridge.simulator.config import acceptor_config, simulator_dir
from fixbridge.simulator.journal import FillJournal
from fixbridge.simulator.logon_front import LogonFront, SessionKey
from fixbridge.simulator.matching import CancelReject, MatchingEngine, Report

log = logging.getLogger(__name__)


class ExchangeApplication(fix.Application):  # type: ignore[misc]  # quickfix has no stubs
    """Routes NewOrderSingle, OrderCancelRequest and OrderStatusRequest to the engine."""

    def __init__(self, engine: MatchingEngine, journal: FillJournal | None = None) -> None:
        super().__init__()
        self._engine = engine
        self._journal = journal
        self._routes: dict[str, fix.SessionID] = {}  # ClOrdID -> the session that sent it
        self._routes_lock = threading.Lock()

    # Session events.

    def onCreate(self, session_id: fix.SessionID) -> None:  # noqa: N802 - QuickFIX's name
        """Log the session QuickFIX created from the settings."""
        log.info("FIX session created: %s", session_id.toString())

    def onLogon(self, session_id: fix.SessionID) -> None:  # noqa: N802
        """Log a peer's logon."""
        log.info("FIX logon: %s", session_id.toString())

    def onLogout(self, session_id: fix.SessionID) -> None:  # noqa: N802
        """Log a peer's logout or disconnect."""
        log.info("FIX logout: %s", session_id.toString())

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Nothing to add to outgoing session messages."""

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Accept every logon from the configured CompIDs (the session settings check them)."""

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Nothing to add to outgoing application messages."""

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Dispatch an application message; answer what cannot be handled with a reject."""
        # Nothing may escape this callback: in quickfix-ssl 1.15 an exception that crosses it
        # aborts the process (see fix_messages), so every failure becomes a reject here.
        try:
            self._dispatch(message, session_id)
        except FixMessageError as exc:
            log.info("rejecting %s from %s: %s", fix44.msg_type(message), session_id, exc.text)
            fix.Session.sendToTarget(fix44.reject_for(message, exc), session_id)
        except Exception:
            log.exception("failed to handle %s from %s", fix44.msg_type(message), session_id)
            error = FixMessageError(
                "internal error", tag=None, reason=fix44.BUSINESS_REJECT_OTHER, business=True
            )
            fix.Session.sendToTarget(fix44.reject_for(message, error), session_id)

    def _dispatch(self, message: fix.Message, session_id: fix.SessionID) -> None:
        kind = fix44.msg_type(message)
        if kind == fix44.MSG_NEW_ORDER_SINGLE:
            self._on_new_order(message, session_id)
        elif kind == fix44.MSG_ORDER_CANCEL_REQUEST:
            self._on_cancel(message, session_id)
        elif kind == fix44.MSG_ORDER_STATUS_REQUEST:
            self._on_status(message, session_id)
        else:
            raise FixMessageError(
                f"unsupported message type {kind}",
                tag=None,
                reason=fix44.BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE,
                business=True,
            )

    # Inbound messages.

    def _on_new_order(self, message: fix.Message, session_id: fix.SessionID) -> None:
        request = fm.parse_new_order(message)
        with self._routes_lock:
            # The first sender of a ClOrdID owns it; a duplicate does not steal its reports.
            self._routes.setdefault(request.cl_ord_id, session_id)
        self._send(self._engine.new_order(request), session_id)

    def _on_cancel(self, message: fix.Message, session_id: fix.SessionID) -> None:
        outcome = self._engine.cancel(
            fix44.required(message, fix44.TAG_CL_ORD_ID),
            fix44.required(message, fix44.TAG_ORIG_CL_ORD_ID),
        )
        if isinstance(outcome, CancelReject):
            fix.Session.sendToTarget(fm.order_cancel_reject(outcome), session_id)
        else:
            self._send([outcome], session_id)

    def _on_status(self, message: fix.Message, session_id: fix.SessionID) -> None:
        report = self._engine.status(
            fix44.required(message, fix44.TAG_CL_ORD_ID),
            fix44.optional(message, fix44.TAG_SYMBOL) or "",
            fm.parse_side(message),
        )
        self._send([report], session_id)

    # Outbound reports.

    def on_prices(self, prices: Mapping[str, Decimal]) -> None:
        """Let the engine fill resting orders at the new prices; route the reports."""
        self.route(self._engine.on_prices(prices))

    def end_of_day(self) -> list[Report]:
        """Expire DAY orders and route the reports; return them."""
        reports = self._engine.expire_day_orders()
        self.route(reports)
        return reports

    def route(self, reports: Iterable[Report]) -> None:
        """Send each report to the session its order came from."""
        self.journal_fills()
        for report in reports:
            with self._routes_lock:
                session_id = self._routes.get(report.cl_ord_id)
            if session_id is None:
                log.warning("no session for order %s; report %s dropped", report.cl_ord_id, report)
                continue
            self._send([report], session_id)

    def _send(self, reports: Iterable[Report], session_id: fix.SessionID) -> None:
        # Journal first: a fill the exchange reported must be in its trade report.
        self.journal_fills()
        for report in reports:
            fix.Session.sendToTarget(fm.execution_report(report), session_id)

    def journal_fills(self) -> None:
        """Move the engine's new fills into the journal (the trade report's source)."""
        fills = self._engine.drain_fills()
        if fills and self._journal is not None:
            self._journal.append(fills)


def _spare_port() -> int:
    """A TCP port free on every interface right now, for the acceptor behind the front."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))  # every interface: where QuickFIX will bind it
        return int(probe.getsockname()[1])


def _session_busy(key: SessionKey) -> bool:
    """Whether QuickFIX still has a connection for the session a peer's Logon names."""
    begin_string, peer_sender, peer_target = key
    # The acceptor's side of the session: its SenderCompID is the peer's TargetCompID.
    acceptor_side = fix.SessionID(begin_string, peer_target, peer_sender)
    return bool(fix.Session.isSessionRegistered(acceptor_side))


class Acceptor:
    """The QuickFIX SocketAcceptor (file store and log under the state folder) behind its front.

    The front (``logon_front.LogonFront``) owns the public port ``sim_fix_port``: a new Logon for
    the session supersedes the connection that holds it, as at venues that allow a standby to
    take over from a silent peer. QuickFIX listens on a spare port and only the front talks to it.
    """

    def __init__(self, settings: Settings, application: ExchangeApplication) -> None:
        inner_port = _spare_port()
        files = session_files(
            simulator_dir(settings), "acceptor.cfg", acceptor_config(settings, inner_port)
        )
        # QuickFIX keeps raw pointers to these: they must live as long as the engine does.
        self._files = files
        self._acceptor = fix.SocketAcceptor(application, files.store, files.settings, files.logs)
        self._front = LogonFront(
            settings.sim_fix_port, (settings.sim_fix_host, inner_port), _session_busy
        )
        self.application = application
        self.port = settings.sim_fix_port

    def start(self) -> None:
        """Listen for the FIX peer (the acceptor first, so the front always has somewhere to go)."""
        self._acceptor.start()
        self._front.start()

    def stop(self) -> None:
        """Log the peers out (through the front) and close the acceptor's port, then the front."""
        self._acceptor.stop()
        self._front.stop()
