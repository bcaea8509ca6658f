"""What the bridge's logic needs from the outside, as protocols (real and fake implementations)."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import quickfix as fix

from core.contracts import DeadLetter, ExecutionReport
from fixbridge.bridge.parsing import OrderRef


class Sender(Protocol):
    """Sends an order message to the exchange (``session.FixSession``)."""

    def send(self, message: fix.Message) -> None: ...


class ResendClaim(NamedTuple):
    """An "unknown order" answer's verdict: was the order never answered, and resend what."""

    never_answered: bool  # no report ever came for it: the exchange never held it
    command: str | None  # the NewOrder's JSON, to send now; None if not ours to send


class OrderStore(Protocol):
    """The sent-orders record (``store.SentOrders``)."""

    def record_sent(self, order_id: str, command: str) -> bool: ...
    def order_ref(self, order_id: str) -> OrderRef: ...
    def claim_resend(self, order_id: str) -> ResendClaim: ...
    def unfinished(self, after: str | None, limit: int) -> list[OrderRef]: ...
    def mark_status_requested(self, order_ids: list[str]) -> None: ...
    def record_report(self, report: ExecutionReport) -> None: ...


class Publisher(Protocol):
    """Publishes to Kafka, each call acknowledged or raising (``publisher.KafkaPublisher``)."""

    def publish(self, report: ExecutionReport) -> None: ...
    def dead_letter(self, topic: str, letter: DeadLetter) -> None: ...
    def flush(self) -> None: ...
