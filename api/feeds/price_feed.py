"""The one ``md.conflated`` consumer of an API process, feeding the price hub of that process.

A topic tail (api/feeds/topic_tail.py): every API process gets every price. What was published
before the process started is read from ``last_prices`` once the end offsets are fixed; the
conflate agent writes that table before it publishes, so nothing falls between the two.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Message

from api.feeds.price_hub import PriceHub, Quote
from api.feeds.topic_tail import TopicTail
from core.contracts import CONFLATED_PRICES
from core.db import AsyncPool
from core.exceptions import ContractError
from core.settings import Settings
from core.timestamps import ns_of

log = logging.getLogger(__name__)


def quotes_of(messages: Sequence[Message]) -> list[Quote]:
    """The quotes in a batch of md.conflated messages; bad records are logged and skipped."""
    quotes: list[Quote] = []
    for message in messages:
        if message.error() is not None:
            log.warning("price feed: %s", message.error())
            continue
        try:
            record = CONFLATED_PRICES.decode(message.value(), topic=message.topic())
        except ContractError as exc:
            # The conflate agent owns the topic's DLQ; here a bad record is only skipped.
            log.warning("price feed: skipped a record: %s", exc)
            continue
        quotes.append(Quote(record.symbol, record.price, record.ts_event_ns, record.seq))
    return quotes


class PriceFeed:
    """The ``md.conflated`` tail of a process: the hub seeded from last_prices, then fed."""

    def __init__(self, settings: Settings, hub: PriceHub, pool: AsyncPool) -> None:
        self._hub = hub
        self._pool = pool
        self._tail = TopicTail(
            settings, settings.topic_conflated, quotes_of, hub.publish, on_assigned=self._seed
        )
        self.ready = self._tail.ready

    def start(self) -> None:
        """Start the consumer thread; ``ready`` is set once prices flow."""
        self._tail.start()

    async def stop(self) -> None:
        """Stop the consumer thread."""
        await self._tail.stop()

    async def _seed(self) -> None:
        # Run once the start offsets are fixed: the conflate agent writes last_prices before it
        # publishes, so no price falls between the two.
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT symbol, price, ts_event FROM last_prices")
            rows = await cursor.fetchall()
            cursor = await conn.execute("SELECT symbol FROM instruments")
            self._hub.known.update(row[0] for row in await cursor.fetchall())
        self._hub.seed(Quote(symbol, price, ns_of(ts)) for symbol, price, ts in rows)
