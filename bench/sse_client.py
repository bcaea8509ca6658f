"""A lean SSE load client for bench/sse.py: many raw asyncio sockets in one process.

``python -m bench.sse_client URL TOKEN COUNT SYMBOLS PER_CLIENT OFFSET RATE`` opens COUNT price
streams at RATE per second (client i asks for PER_CLIENT of the comma-separated SYMBOLS,
starting at OFFSET + i),
prints ``ready <connected> <failed>`` once all are open, records the delay from each price's
exchange time (set to the wall clock when the tick was produced) to its arrival, and on a
``stop`` line on stdin prints one JSON line of results and exits.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from datetime import datetime
from urllib.parse import urlsplit

# Connections are opened in small batches at the given rate: a burst faster than the API accepts
# overflows its accept queue (the kernel's listen backlog), and the dropped SYNs are retried
# with exponential backoff, so some streams would wait for a minute before they are answered.
CONNECT_PAUSE_S = 0.1
READY_TIMEOUT_S = 60.0
READ_BYTES = 65_536
SAMPLE_MAX = 200_000
_TS = b'"ts":"'
_EVENT_END = b"\r\n\r\n"


class Stats:
    """What the streams of this process saw."""

    def __init__(self) -> None:
        self.events = 0
        self.connected = 0
        self.delays_ms: list[float] = []
        self.seen = 0
        self.recording = False


def ts_ns(iso: bytes) -> int:
    """Nanoseconds since the epoch of an ISO time the API sends (microseconds)."""
    parsed = datetime.fromisoformat(iso.decode())
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000


async def stream(host: str, port: int, path: str, token: str, stats: Stats) -> None:
    """Open one stream and read it until cancelled."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head[:200].decode(errors="replace"))
    stats.connected += 1
    tail = b""
    try:
        while True:
            data = await reader.read(READ_BYTES)
            if not data:
                return
            # A read can end inside an event: parse whole events only, keep the rest for later.
            buffered = tail + data
            cut = buffered.rfind(_EVENT_END) + len(_EVENT_END)
            if cut < len(_EVENT_END):
                tail = buffered
                continue
            data, tail = buffered[:cut], buffered[cut:]
            if not stats.recording:
                continue
            now = time.time_ns()
            start = 0
            while True:
                at = data.find(_TS, start)
                if at < 0:
                    break
                end = data.find(b'"', at + len(_TS))
                if end < 0:
                    break
                if data.rfind(b"event: price", max(0, at - 200), at) >= 0:
                    stats.events += 1
                    stats.seen += 1
                    delay = (now - ts_ns(data[at + len(_TS) : end])) / 1e6
                    # Reservoir sampling keeps memory bounded on long runs.
                    if len(stats.delays_ms) < SAMPLE_MAX:
                        stats.delays_ms.append(delay)
                    else:
                        slot = random.randrange(stats.seen)
                        if slot < SAMPLE_MAX:
                            stats.delays_ms[slot] = delay
                start = end
    finally:
        writer.close()


async def main(argv: list[str]) -> None:
    url, token, count, symbols_text, per_client, offset, rate = argv
    batch = max(1, round(float(rate) * CONNECT_PAUSE_S))
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    symbols = symbols_text.split(",")
    stats = Stats()
    tasks: list[asyncio.Task[None]] = []
    failed = 0
    for i in range(int(count)):
        first = int(offset) + i
        mine = [symbols[(first + j) % len(symbols)] for j in range(int(per_client))]
        path = f"/v1/stream/prices?symbols={','.join(dict.fromkeys(mine))}"
        tasks.append(asyncio.create_task(stream(host, port, path, token, stats)))
        if len(tasks) % batch == 0:
            await asyncio.sleep(CONNECT_PAUSE_S)
    # Ready when every stream has answered 200 or failed (or READY_TIMEOUT_S after the last
    # connect): connected means the API took it.
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        failed = sum(1 for t in tasks if t.done() and t.exception() is not None)
        if stats.connected + failed >= len(tasks):
            break
        await asyncio.sleep(0.2)
    failed = len(tasks) - stats.connected
    sys.stdout.write(f"ready {stats.connected} {failed}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).strip()
        if line == b"go":
            stats.recording = True
        elif line in (b"stop", b""):
            break
    alive = sum(1 for t in tasks if not t.done())
    for task in tasks:
        task.cancel()
    result = {
        "alive": alive,
        "failed": failed,
        "events": stats.events,
        "delays_ms": stats.delays_ms,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(sys.argv[1:]))
