"""Order commands from ``oms.orders`` to FIX, and execution reports from FIX to Kafka.

Delivery from Kafka is at least once (the outbox relay may publish a command again, and offsets
are committed only after a batch is handled), so a NewOrder is recorded in ``sent_orders``
before it is sent: a second NewOrder with the same order id finds the record and becomes an
OrderStatusRequest instead, and no ClOrdID ever goes to the exchange twice as a new order.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
from confluent_kafka import Consumer, KafkaError, Message

from core.contracts import (
    ORDER_COMMANDS,
    CancelOrder,
    ExecutionReport,
    NewOrder,
    OrderCommand,
    OrderStatusRequest,
    dead_letter_for,
)
from core.exceptions import ContractError
from core.settings import Settings
from fixbridge.bridge import parsing as p
from fixbridge.bridge.exceptions import UnknownOrderError
from fixbridge.bridge.ports import OrderStore, Publisher, Sender

log = logging.getLogger(__name__)

CONSUMER_NAME = "fixbridge"
# How often the consumer says it is still waiting for the FIX logon.
LOGON_WAIT_LOG_S = 10.0
LOGON_WAIT_STEP_S = 0.5


class OrderRouter:
    """Turns one order command into the FIX message to send, or into nothing."""

    def __init__(
        self, store: OrderStore, sender: Sender, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self._store = store
        self._sender = sender
        self._clock_ns = clock_ns

    def handle(self, command: OrderCommand) -> None:
        """Send the command; raise ``UnknownOrderError`` for an order the database lacks."""
        if isinstance(command, NewOrder):
            self._new_order(command)
        elif isinstance(command, CancelOrder):
            order = self._store.order_ref(command.order_id)
            cancel_id = str(uuid.uuid4())  # a cancel is a request of its own, with its own id
            self._sender.send(p.order_cancel_request(order, cancel_id, self._clock_ns()))
        elif isinstance(command, OrderStatusRequest):
            self._sender.send(p.order_status_request(self._store.order_ref(command.order_id)))
        else:  # pragma: no cover - OrderCommand is a closed union
            raise TypeError(f"not an order command: {command!r}")

    def _new_order(self, order: NewOrder) -> None:
        message = p.new_order_single(order, self._clock_ns())
        # Check before recording: a recorded order that cannot be sent would be asked about
        # at every start and come back "unknown order".
        p.check_outbound(message)
        if self._store.record_sent(order.order_id, ORDER_COMMANDS.encode(order).decode()):
            self._sender.send(message)
            return
        log.info("order %s was already sent; asking its status instead", order.order_id)
        self._sender.send(p.order_status_request(self._store.order_ref(order.order_id)))


class ReportForwarder:
    """Publishes a report (acknowledged by Kafka), then records it in ``sent_orders``."""

    def __init__(self, publisher: Publisher, store: OrderStore) -> None:
        self._publisher = publisher
        self._store = store

    def __call__(self, report: ExecutionReport) -> None:
        """Forward one report; a database failure is logged, the report is already out."""
        self._publisher.publish(report)
        try:
            self._store.record_report(report)
        except psycopg.Error:
            # Only recovery reads this record; at worst the order is asked about once more.
            log.exception("could not record report %s of %s", report.exec_id, report.order_id)


class OrderConsumer:
    """Consumes ``oms.orders`` while the FIX session is up; dead-letters what it cannot handle."""

    def __init__(
        self,
        settings: Settings,
        router: OrderRouter,
        dead_letters: Publisher,
        logged_on: threading.Event,
        on_first_logon: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._router = router
        self._dead_letters = dead_letters
        self._logged_on = logged_on
        self._on_first_logon = on_first_logon
        self._dlq_topic = settings.dlq_topic(settings.topic_orders)
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": settings.bridge_consumer_group,
                "client.id": CONSUMER_NAME,
                # Static membership, one instance id per FIX session: only the lease holder
                # consumes, and a new leader replaces a dead or paused one in the group at once
                # (no wait for the old member's session timeout, no rebalance).
                "group.instance.id": f"{CONSUMER_NAME}-{settings.bridge_sender_comp_id}",
                "auto.offset.reset": "earliest",
                # Offsets are committed by hand, after the batch was sent and recorded.
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )

    def run(self, stop: threading.Event) -> None:
        """Handle order commands until ``stop`` is set; raise on a database or Kafka failure."""
        self._consumer.subscribe([self._settings.topic_orders])
        try:
            if not self._wait_for_logon(stop):
                return
            self._on_first_logon()
            while not stop.is_set():
                if not self._logged_on.is_set():
                    # Sending now would only queue messages for the resend; wait for the session.
                    self._wait_for_logon(stop)
                    continue
                self.run_batch()
        finally:
            self._consumer.close()

    def run_batch(self) -> int:
        """Consume and handle one batch, then commit it; return how many records it held."""
        messages = self._consumer.consume(
            self._settings.bridge_batch_max, self._settings.bridge_poll_timeout_ms / 1000
        )
        handled = [m for m in messages if self._handle(m)]
        if handled:
            self._dead_letters.flush()  # a dead letter is acknowledged before its offset moves
            for message in handled:
                self._consumer.store_offsets(message)
            self._consumer.commit(asynchronous=False)
        return len(handled)

    def _handle(self, message: Message) -> bool:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("Kafka consumer error: %s", error)
            return False
        try:
            command = ORDER_COMMANDS.decode(message.value(), topic=message.topic())
            self._router.handle(command)
        except (ContractError, UnknownOrderError) as exc:
            log.warning("dead-lettering %s[%s]@%s: %s", *_where(message), exc)
            self._dead_letters.dead_letter(
                self._dlq_topic, dead_letter_for(message, exc, CONSUMER_NAME)
            )
        return True

    def _wait_for_logon(self, stop: threading.Event) -> bool:
        waited_s = 0.0
        while not stop.is_set():
            if self._logged_on.wait(LOGON_WAIT_STEP_S):
                return True
            waited_s += LOGON_WAIT_STEP_S
            if waited_s % LOGON_WAIT_LOG_S < LOGON_WAIT_STEP_S:
                log.info("waiting for the FIX logon (%.0fs)", waited_s)
        return False


def _where(message: Message) -> tuple[str | None, int | None, int | None]:
    return message.topic(), message.partition(), message.offset()
