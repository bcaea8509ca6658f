"""Errors raised on purpose by ``fixbridge`` (the bridge and the exchange simulator)."""

from __future__ import annotations

from core.exceptions import BrokerError


class FixBridgeError(BrokerError):
    """Root of the errors of ``fixbridge``; catch this to handle any of them."""


class SimulatorConfigError(FixBridgeError):
    """The exchange simulator cannot start with these settings.

    The message names the setting (a ``BROKER_SIM_*`` variable or a command-line flag); fix it
    and start the simulator again.
    """


class TradeReportError(FixBridgeError):
    """The end-of-day trade report could not be written.

    Nothing half-written is left in the landing folder (files are renamed into place whole).
    Check that the folder named in the message exists and is writable, then run the end of day
    again: the report of a day is rewritten whole.
    """


class FixMessageError(FixBridgeError):
    """An inbound FIX message cannot be handled; the peer gets a reject, the session stays up.

    ``tag`` is the offending tag (None for the message as a whole), ``reason`` the FIX reject
    code: a SessionRejectReason (373) when ``business`` is false, else a BusinessRejectReason
    (380). Nothing to do on this side; the peer's log names the message it sent.
    """

    def __init__(self, text: str, *, tag: int | None, reason: int, business: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.tag = tag
        self.reason = reason
        self.business = business
