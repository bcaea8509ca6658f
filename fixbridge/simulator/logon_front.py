"""The exchange's front door: a new Logon for a FIX session supersedes the connection holding it.

QuickFIX's acceptor drops a second connection for a session that is still connected, and notices
a silent peer only after 2.4 heartbeat intervals. A broker's standby bridge taking over from a
paused (SIGSTOP) or cut-off leader would be refused until then, since the paused leader's TCP
connection stays open. Like the venues where a new logon replaces the old one, the simulator's
public port is this front: it reads each new connection's first frame and, if it is a Logon,
closes any connection of the same session (SenderCompID, TargetCompID) first, waits until
QuickFIX has let go of the session, and only then hands the connection to the acceptor (which
listens on a port of its own). After that it relays bytes both ways, untouched. Whatever the old
connection writes later goes nowhere: the exchange has closed it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# A peer that has not sent a whole first frame by then is dropped (QuickFIX's LogonTimeout).
FIRST_FRAME_WAIT_S = 10.0
# A first frame longer than this is not a Logon; the connection is dropped.
FIRST_FRAME_BYTES_MAX = 65_536
RELAY_CHUNK_BYTES = 65_536
# Connections relayed at once; more are refused (the exchange expects one per broker session).
LINKS_MAX = 64
# How long a superseding Logon waits for QuickFIX to drop the old connection, and how often the
# front looks (QuickFIX reacts to the closed socket within milliseconds).
RELEASE_WAIT_S = 5.0
RELEASE_POLL_S = 0.005
# How often the accept loop looks at the stop flag.
ACCEPT_POLL_S = 0.2

_HEADER_RE = re.compile(rb"^8=FIX[^\x01]*\x019=(\d+)\x01")
_CHECKSUM_BYTES = len(b"10=000\x01")

SessionKey = tuple[str, str, str]  # BeginString, the peer's SenderCompID, its TargetCompID


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    peer: str

    def close(self) -> None:
        # shutdown wakes the relay threads blocked in recv on either socket.
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def first_frame_end(buffer: bytes) -> int | None:
    """Where the first whole FIX frame in ``buffer`` ends, or None if it is not all there yet."""
    match = _HEADER_RE.match(buffer)
    if match is None:
        return None
    end = match.end() + int(match.group(1)) + _CHECKSUM_BYTES
    return end if len(buffer) >= end else None


def logon_session(frame: bytes) -> SessionKey | None:
    """The session a Logon frame asks for, from the peer's side; None for any other frame."""
    fields: dict[bytes, bytes] = {}
    for part in frame.split(b"\x01"):
        tag, sep, value = part.partition(b"=")
        if sep and tag in (b"8", b"35", b"49", b"56"):
            fields.setdefault(tag, value)
    if fields.get(b"35") != b"A" or not {b"8", b"49", b"56"} <= fields.keys():
        return None
    return fields[b"8"].decode(), fields[b"49"].decode(), fields[b"56"].decode()


class LogonFront:
    """Listens on the public FIX port; relays to the acceptor; a new Logon supersedes the old."""

    def __init__(
        self,
        listen_port: int,
        acceptor: tuple[str, int],
        session_busy: Callable[[SessionKey], bool],
    ) -> None:
        self._listen_port = listen_port
        self._acceptor = acceptor
        self._session_busy = session_busy
        self._links: dict[SessionKey, _Link] = {}
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._supersede_lock = threading.Lock()  # one takeover of a session at a time
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen and accept in a thread of its own."""
        # Every interface, as the QuickFIX acceptor it stands for did (compose reaches it so).
        self._server = socket.create_server(("", self._listen_port), reuse_port=False)
        self._server.settimeout(ACCEPT_POLL_S)
        self._thread = threading.Thread(target=self._accept, name="fix-front", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close every relayed connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(FIRST_FRAME_WAIT_S)
        if self._server is not None:
            self._server.close()
        with self._lock:
            links = list(self._links.values())
            self._links.clear()
        for link in links:
            link.close()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, address = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                full = len(self._open) >= LINKS_MAX
                if not full:
                    self._open.add(client)
            if full:
                log.warning("refusing a FIX connection from %s: %d open", address, LINKS_MAX)
                client.close()
                continue
            peer = f"{address[0]}:{address[1]}"
            threading.Thread(
                target=self._serve, args=(client, peer), name=f"fix-front-{peer}", daemon=True
            ).start()

    def _serve(self, client: socket.socket, peer: str) -> None:
        try:
            link, key = self._connect(client, peer)
        except OSError as exc:
            log.warning("dropping the FIX connection from %s: %s", peer, exc)
            link, key = None, None
        if link is None:
            client.close()
            with self._lock:
                self._open.discard(client)
            return
        pump = threading.Thread(
            target=self._relay, args=(link, link.upstream, link.client), daemon=True
        )
        pump.start()
        self._relay(link, link.client, link.upstream)
        pump.join()
        with self._lock:
            if key is not None and self._links.get(key) is link:
                del self._links[key]
            self._open.discard(client)

    def _connect(self, client: socket.socket, peer: str) -> tuple[_Link | None, SessionKey | None]:
        client.settimeout(FIRST_FRAME_WAIT_S)
        buffer = b""
        end = None
        while end is None:
            chunk = client.recv(RELAY_CHUNK_BYTES)
            if not chunk or len(buffer) + len(chunk) > FIRST_FRAME_BYTES_MAX:
                return None, None
            buffer += chunk
            end = first_frame_end(buffer)
        client.settimeout(None)
        key = logon_session(buffer[:end])
        if key is None:
            # Not a Logon: QuickFIX answers it as it would have (it drops the connection).
            return self._link(client, buffer, peer), None
        with self._supersede_lock:
            with self._lock:
                old = self._links.pop(key, None)
            if old is not None:
                log.info("a Logon for %s from %s supersedes %s", key, peer, old.peer)
                old.close()
            if not self._wait_released(key):
                log.warning("QuickFIX still holds %s; refusing the Logon from %s", key, peer)
                return None, None
            link = self._link(client, buffer, peer)
            with self._lock:
                self._links[key] = link
        return link, key

    def _wait_released(self, key: SessionKey) -> bool:
        deadline = time.monotonic() + RELEASE_WAIT_S
        while self._session_busy(key):
            if time.monotonic() > deadline:
                return False
            time.sleep(RELEASE_POLL_S)
        return True

    def _link(self, client: socket.socket, first: bytes, peer: str) -> _Link:
        upstream = socket.create_connection(self._acceptor, timeout=FIRST_FRAME_WAIT_S)
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.sendall(first)
        return _Link(client, upstream, peer)

    @staticmethod
    def _relay(link: _Link, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(RELAY_CHUNK_BYTES):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            link.close()
