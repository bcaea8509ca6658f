"""Helpers of the stream tests: a raw HTTP/1.1 SSE client, seeded prices, produced updates."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import psycopg
from confluent_kafka import Producer

from core.contracts import CONFLATED_PRICES, ConflatedPrice
from core.instruments import DEFAULT_INSTRUMENTS, seed_instruments
from core.settings import Settings

READ_TIMEOUT_S = 20.0
T0_NS = 1_790_000_000 * 1_000_000_000  # a fixed exchange time (Sep 2026)


@dataclass
class Event:
    """One SSE event, or a comment line (``comment`` set, the rest empty)."""

    event: str | None = None
    id: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)


@dataclass
class RawSse:
    """A bare HTTP/1.1 SSE client over an asyncio socket: status, headers, then events."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    status: int
    headers: dict[str, str]
    body: str = ""
    _buffer: str = ""
    _pending: list[Event] = field(default_factory=list)
    bytes_read: int = 0

    @classmethod
    async def open(
        cls, base_url: str, path: str, headers: dict[str, str], rcvbuf: int | None = None
    ) -> RawSse:
        """Send the GET; read the status line and headers (and the body of an error)."""
        url = urlsplit(base_url)
        assert url.hostname is not None and url.port is not None
        limit = 2**20
        if rcvbuf is None:
            reader, writer = await asyncio.open_connection(url.hostname, url.port, limit=limit)
        else:
            import socket

            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.connect((url.hostname, url.port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        lines = [f"GET {path} HTTP/1.1", f"Host: {url.hostname}:{url.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        status_line, *header_lines = head.decode().split("\r\n")
        parsed = dict(
            (k.strip().lower(), v.strip())
            for k, v in (h.split(":", 1) for h in header_lines if ":" in h)
        )
        client = cls(reader, writer, int(status_line.split()[1]), parsed)
        if client.status != 200:
            length = int(parsed.get("content-length", "0"))
            client.body = (await reader.readexactly(length)).decode()
        return client

    async def _chunk(self) -> str:
        """The next chunk of the chunked body."""
        size_line = await self.reader.readuntil(b"\r\n")
        size = int(size_line.strip(), 16)
        data = await self.reader.readexactly(size + 2)
        self.bytes_read += len(size_line) + size + 2
        if size == 0:
            raise EOFError("the server ended the stream")
        return data[:-2].decode()

    async def next(self, timeout_s: float = READ_TIMEOUT_S) -> Event:
        """The next event or comment."""
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            self._buffer += await asyncio.wait_for(
                self._chunk(), max(0.001, deadline - time.monotonic())
            )
            self._buffer = self._buffer.replace("\r\n", "\n")
            while "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                self._pending.extend(parse_block(block))
        return self._pending.pop(0)

    async def next_event(self, timeout_s: float = READ_TIMEOUT_S) -> Event:
        """The next event, skipping comments."""
        while True:
            event = await self.next(timeout_s)
            if event.comment is None:
                return event

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


def parse_block(block: str) -> list[Event]:
    """The events and comments of one blank-line-separated SSE block."""
    found: list[Event] = []
    event = Event()
    has_field = False
    for line in block.split("\n"):
        if line.startswith(":"):
            found.append(Event(comment=line[1:].strip()))
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event.event, has_field = value, True
        elif name == "id":
            event.id, has_field = value, True
        elif name == "data":
            event.data, has_field = (event.data + "\n" + value if event.data else value), True
    if has_field:
        found.append(event)
    return found


async def seed_prices(db_dsn: str, prices: dict[str, tuple[str, int]]) -> None:
    """The default instruments, and last_prices rows {symbol: (price, exchange time ns)}."""
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        await seed_instruments(conn, DEFAULT_INSTRUMENTS)
        for symbol, (price, ts_ns) in prices.items():
            await conn.execute(
                "INSERT INTO last_prices (symbol, price, ts_event) VALUES (%s, %s, %s)",
                (symbol, Decimal(price), datetime.fromtimestamp(ts_ns // 10**9, UTC)),
            )


def conflated(symbol: str, price: str, ts_ns: int, seq: int = 1) -> ConflatedPrice:
    """A md.conflated record."""
    return ConflatedPrice(
        symbol=symbol,
        price=Decimal(price),
        size=1,
        ts_event_ns=ts_ns,
        seq=seq,
        ts_conflated_ns=time.time_ns(),
    )


class PriceProducer:
    """Produces md.conflated records to the test's topic."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self._producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1})

    def send(self, records: Sequence[ConflatedPrice], flush: bool = True) -> None:
        """Produce records in order (and wait for Kafka to have them)."""
        for record in records:
            self._producer.produce(
                self.topic, key=record.kafka_key(), value=CONFLATED_PRICES.encode(record)
            )
        self._producer.poll(0)
        if flush:
            assert self._producer.flush(30) == 0


def prices_of(events: Sequence[Event]) -> Iterator[tuple[str, str]]:
    """(symbol, price) of each price event."""
    for event in events:
        if event.event == "price":
            data = event.json()
            yield data["symbol"], data["price"]
