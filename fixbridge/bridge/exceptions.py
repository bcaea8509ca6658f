"""Errors the FIX bridge raises on purpose; each says what the operator should do."""

from __future__ import annotations

from fixbridge.exceptions import FixBridgeError


class BridgeConfigError(FixBridgeError):
    """The bridge cannot start with these settings; fix the setting named in the message."""


class UnknownOrderError(FixBridgeError):
    """An order command names an order id the ``orders`` table does not hold.

    The command goes to the dead-letter topic and the bridge carries on. The producer of
    ``oms.orders`` (the outbox relay or the stops agent) published an order it never stored:
    fix that producer, then replay the dead letter if the order should still trade.
    """


class PublishError(FixBridgeError):
    """Kafka did not acknowledge an execution report in time.

    The bridge stops without acknowledging the FIX message, so the exchange resends it after
    the restart. Bring Kafka back (``python -m infra status``) and start the bridge again.
    """


class LeaseLostError(FixBridgeError):
    """This process no longer holds the FIX session's lease (a newer epoch took over, or expired).

    The bridge exits at once with ``lease.EXIT_LEASE_LOST`` without sending anything more; the
    supervisor starts it again as a standby. Nothing for the operator to do unless it repeats,
    which means PostgreSQL was unreachable or the process was starved for longer than the ttl.
    """
