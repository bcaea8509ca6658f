"""The errors the broker raises on purpose; every one of them derives from ``BrokerError``.

Programmer errors (a broken invariant in our own code) stay plain ``ValueError`` or
``TypeError``; these classes are for operating errors a caller is expected to handle.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of every error the broker raises on purpose; catch this to handle them all."""


class ContractError(BrokerError):
    """A payload could not be parsed into its message contract.

    A stream consumer must not stop on this: publish the raw record to the topic's dead-letter
    topic (``core.contracts.dead_letter`` builds it) and carry on. An operator reading the DLQ
    should fix the producer named by the source topic, then replay the dead letters if needed.
    """

    def __init__(self, contract: str, reason: str, *, topic: str | None = None) -> None:
        self.contract = contract
        self.reason = reason
        self.topic = topic
        where = f" from topic {topic!r}" if topic is not None else ""
        super().__init__(f"cannot parse a {contract} record{where}: {reason}")


class MoneyError(BrokerError):
    """A value cannot be a money amount or price (float, NaN, infinite, or too large).

    Money is ``Decimal`` in Python and ``NUMERIC(18,4)`` in SQL. Pass amounts as strings, ints or
    ``Decimal``s, never floats; an amount of 10**14 or more does not fit the database column.
    """
