"""A lean HTTP/1.1 keep-alive client for the orders load: one request at a time per connection.

httpx was measured spending 2 ms of CPU per order at 4 connections and 9 ms at 64, on the same
cores as the API and PostgreSQL, so the load generator, not the API, set the figures at high
concurrency. This client writes a request prepared as bytes and parses the answer with
``httptools`` (the parser uvicorn itself uses): a few tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Self

import httptools

from bench.exceptions import BenchError


class HttpError(BenchError):
    """A request got no complete answer: connection refused, reset or closed, or timed out."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: its status code and body."""

    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300


def encode_request(
    host: str, method: str, path: str, headers: dict[str, str], body: bytes
) -> bytes:
    """One HTTP/1.1 request as bytes, with Host and Content-Length."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(slots=True)
class _Reading:
    """Callbacks for ``httptools.HttpResponseParser``: collect one answer."""

    body: list[bytes] = field(default_factory=list)
    complete: bool = False

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """One keep-alive connection to the API; reconnects after the server closed it."""

    def __init__(
        self, host: str, port: int, timeout_s: float, tls: ssl.SSLContext | None = None
    ) -> None:
        self._host, self._port, self._timeout_s, self._tls = host, port, timeout_s, tls
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, request: bytes) -> Answer:
        """Send one encoded request and read its answer; ``HttpError`` when none comes."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._exchange(request)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, request: bytes) -> Answer:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._tls
            )
        reader, writer = self._reader, self._writer
        writer.write(request)
        reading = _Reading()
        parser = httptools.HttpResponseParser(reading)
        while not reading.complete:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionResetError("the server closed the connection mid-answer")
            parser.feed_data(chunk)
        answer = Answer(parser.get_status_code(), b"".join(reading.body))
        if not parser.should_keep_alive():
            await self.close()
        return answer
