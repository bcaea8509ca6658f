"""The bridge's FIX 4.4 session: a QuickFIX Application and its SocketInitiator.

QuickFIX runs the session layer: logon, heartbeats, test requests, sequence numbers kept in a
file store, resend requests and gap fills, reconnects. This module only turns application
messages into records. QuickFIX advances the stored inbound sequence number after ``fromApp``
returns, so a report is published to Kafka (and acknowledged) inside ``fromApp``: if the bridge
dies first, the number was not advanced and the exchange resends the report after the restart.

Under the leader lease (``lease``), ``guard`` runs first in every callback QuickFIX makes before
it stores or sends a message (``toAdmin``, ``toApp``) and before it advances the stored inbound
number (``fromAdmin``, ``fromApp``): a process whose lease has lapsed exits there, so it neither
sends (not even a heartbeat or a Logon) nor writes to the file store the new leader now uses.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import quickfix as fix

from core.contracts import ExecutionReport
from core.settings import Settings
from fixbridge import fix44
from fixbridge.bridge import parsing as p
from fixbridge.bridge.config import BEGIN_STRING, bridge_dir, initiator_config
from fixbridge.bridge.exceptions import PublishError
from fixbridge.exceptions import FixMessageError
from fixbridge.session_config import session_files

log = logging.getLogger(__name__)

# The exit status when Kafka does not acknowledge a report (EX_TEMPFAIL: try again later).
EXIT_PUBLISH_FAILED = 75


def no_guard() -> None:
    """The guard of a bridge run without a lease (tests of the session alone)."""


def exit_now(reason: str) -> None:
    """End the process at once, without unwinding QuickFIX's threads."""
    log.critical("stopping the bridge: %s", reason)
    logging.shutdown()
    # os._exit, not an exception: an exception crossing fromApp aborts quickfix-ssl with a core
    # dump, and a clean shutdown would log out after advancing the inbound sequence number.
    os._exit(EXIT_PUBLISH_FAILED)


class BridgeApplication(fix.Application):  # type: ignore[misc]  # quickfix has no stubs
    """Publishes every ExecutionReport; answers what it cannot handle with a reject."""

    def __init__(
        self,
        on_report: Callable[[ExecutionReport], None],
        fatal: Callable[[str], None] = exit_now,
        guard: Callable[[], None] = no_guard,
    ) -> None:
        super().__init__()
        self._on_report = on_report
        # Set by the bridge before the session starts (it sends, so it needs the session).
        self.on_unknown_order: Callable[[ExecutionReport], None] = on_report
        self._fatal = fatal
        self.guard = guard
        self.logged_on = threading.Event()
        self.logons = 0  # how many times the session logged on since the start

    # Session events.

    def onCreate(self, session_id: fix.SessionID) -> None:  # noqa: N802 - QuickFIX's name
        """Log the session QuickFIX created from the settings."""
        log.info("FIX session created: %s", session_id.toString())

    def onLogon(self, session_id: fix.SessionID) -> None:  # noqa: N802
        """Mark the session up; the order consumer waits for this."""
        self.logons += 1
        self.logged_on.set()
        log.info("FIX logon: %s (logon %d)", session_id.toString(), self.logons)

    def onLogout(self, session_id: fix.SessionID) -> None:  # noqa: N802
        """Mark the session down; QuickFIX reconnects after ReconnectInterval."""
        self.logged_on.clear()
        log.warning("FIX logout or disconnect: %s", session_id.toString())

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Log the rejects QuickFIX sends for messages its session layer refused."""
        self.guard()  # QuickFIX stores and sends the message after this returns
        if fix44.msg_type(message) == fix44.MSG_REJECT:
            log.warning("sending Reject: %s", _printable(message))

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Log a Reject or a Logout with a reason from the exchange."""
        self.guard()  # QuickFIX advances the stored inbound number after this returns
        kind = fix44.msg_type(message)
        if kind == fix44.MSG_REJECT or (kind == "5" and message.isSetField(fix44.TAG_TEXT)):
            log.warning("session message from the exchange: %s", _printable(message))

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Nothing to add to outgoing application messages; only the lease is checked."""
        self.guard()

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        """Publish an ExecutionReport; answer anything else, or anything invalid, with a reject."""
        self.guard()
        # Nothing may escape this callback: an exception crossing it aborts quickfix-ssl 1.15.
        try:
            self._dispatch(message)
        except FixMessageError as exc:
            log.warning("rejecting %s: %s", _printable(message), exc.text)
            fix.Session.sendToTarget(fix44.reject_for(message, exc), session_id)
        except PublishError as exc:
            self._fatal(str(exc))
        except Exception:
            log.exception("failed to handle %s", _printable(message))
            error = FixMessageError(
                "internal error", tag=None, reason=fix44.BUSINESS_REJECT_OTHER, business=True
            )
            fix.Session.sendToTarget(fix44.reject_for(message, error), session_id)

    def _dispatch(self, message: fix.Message) -> None:
        kind = fix44.msg_type(message)
        if kind == fix44.MSG_EXECUTION_REPORT:
            self._on_execution_report(message)
        elif kind == fix44.MSG_ORDER_CANCEL_REJECT:
            # The order keeps working (or is already final); its reports say how.
            log.info("cancel refused by the exchange: %s", _printable(message))
        elif kind == fix44.MSG_BUSINESS_MESSAGE_REJECT:
            log.warning("business reject from the exchange: %s", _printable(message))
        else:
            raise FixMessageError(
                f"unsupported message type {kind}",
                tag=None,
                reason=fix44.BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE,
                business=True,
            )

    def _on_execution_report(self, message: fix.Message) -> None:
        if p.is_duplicate_reject(message):
            # Publishing it would mark the live order with this ClOrdID as rejected.
            log.error("the exchange refused a duplicate ClOrdID: %s", _printable(message))
            return
        report = p.parse_execution_report(message, time.time_ns())
        if p.is_unknown_order_status(message):
            self.on_unknown_order(report)
        else:
            self._on_report(report)


def _printable(message: fix.Message) -> str:
    return str(message.toString()).replace("\x01", "|")


class FixSession:
    """The QuickFIX SocketInitiator with a file store and file log under the bridge's folder."""

    def __init__(self, settings: Settings, application: BridgeApplication) -> None:
        files = session_files(bridge_dir(settings), "initiator.cfg", initiator_config(settings))
        # QuickFIX keeps raw pointers to these: they must live as long as the engine does.
        self._files = files
        self._initiator = fix.SocketInitiator(application, files.store, files.settings, files.logs)
        self.application = application
        self.session_id = fix.SessionID(
            BEGIN_STRING, settings.bridge_sender_comp_id, settings.bridge_target_comp_id
        )

    def start(self) -> None:
        """Connect and log on (in QuickFIX's thread; reconnects on its own)."""
        self._initiator.start()

    def stop(self) -> None:
        """Log out and disconnect."""
        self._initiator.stop()

    def send(self, message: fix.Message) -> None:
        """Check ``message`` and send it; while logged out QuickFIX stores it for resending."""
        p.check_outbound(message)
        self.application.guard()  # the last look at the lease before QuickFIX has the message
        if not fix.Session.sendToTarget(message, self.session_id):
            # Stored with its sequence number: the exchange sees the gap at the next logon and
            # asks for it (ResendRequest), so it still arrives, in order.
            log.warning("session down; %s stored for resend", _printable(message))
