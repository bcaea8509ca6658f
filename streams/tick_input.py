"""What the tick agents share: a batch of ``md.ticks`` decoded once, grouped by partition.

A message that is not a tick becomes its ContractError, kept beside the message so the agent can
dead-letter the raw bytes. Per-message work is the cost of a tick agent, so a batch is a few
lists of tuples, not an object per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.contracts import TICKS, Tick
from core.exceptions import BrokerError, ContractError


class UnknownSymbolError(BrokerError):
    """A tick names a symbol that is not in the instruments table: dead-letter it."""


class LateTickError(BrokerError):
    """A tick arrived after its candle's grace period: its candle is final, dead-letter it."""


# One consumed message: offset, key, raw value, and the tick or why it is not one.
Item = tuple[int, bytes | None, bytes | None, Tick | ContractError]


@dataclass(slots=True)
class TickBatch:
    """The messages of one fetched batch, grouped by partition in offset order."""

    topic: str
    by_partition: dict[int, list[Item]] = field(default_factory=dict)
    symbols: set[str] = field(default_factory=set)
    size: int = 0


def decode_values(
    topic: str, messages: Iterable[tuple[int, int, bytes | None, bytes | None]]
) -> TickBatch:
    """Decode (partition, offset, key, value) messages into a batch; bad ones keep their error."""
    batch = TickBatch(topic)
    by_partition = batch.by_partition
    symbols_add = batch.symbols.add
    decode = TICKS.decode
    n = 0
    for partition, offset, key, value in messages:
        n += 1
        tick: Tick | ContractError
        try:
            tick = decode(value, topic=topic)
            symbols_add(tick.symbol)
        except ContractError as exc:
            tick = exc
        items = by_partition.get(partition)
        if items is None:
            items = by_partition[partition] = []
        items.append((offset, key, value, tick))
    batch.size = n
    return batch


@dataclass(slots=True)
class SymbolDirectory:
    """The symbols known to exist (instruments); only unseen ones cost a database query."""

    known: set[str] = field(default_factory=set)

    def missing(self, symbols: Iterable[str]) -> list[str]:
        """The symbols of ``symbols`` not known yet, sorted."""
        return sorted(s for s in symbols if s not in self.known)
