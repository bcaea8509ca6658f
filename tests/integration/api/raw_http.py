"""HTTP/1.1 over one kept-alive socket, sending bodies byte for byte, noticing a dropped connection.

httpx and requests open a new connection when the server closed the last one, which hides the
very failure these tests look for; http.client raises instead.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 30.0


class ConnectionDroppedError(AssertionError):
    """The server closed the connection, or announced it would, instead of keeping it alive."""


@dataclass(frozen=True)
class RawResponse:
    """A whole response: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class KeepAliveClient:
    """One connection for every request; any close by the server raises ConnectionDroppedError."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
        self._conn.connect()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """Send one request on the kept connection; an iterable body goes out chunked."""
        chunked = body is not None and not isinstance(body, bytes)
        try:
            self._conn.request(
                method, path, body=body, headers=dict(headers or {}), encode_chunked=chunked
            )
            response = self._conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError) as error:
            # RemoteDisconnected, a reset or a broken pipe: the last answer closed the connection.
            raise ConnectionDroppedError(f"{method} {path[:80]}: {error!r}") from error
        if response.will_close:
            raise ConnectionDroppedError(f"{method} {path[:80]}: the server closes the connection")
        names = {name.lower(): value for name, value in response.getheaders()}
        return RawResponse(response.status, names, data)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def stream_answer(
    base_url: str, method: str, target: str, headers: Mapping[str, str] | None = None
) -> RawResponse:
    """A request to an endpoint that may stream forever, on a connection of its own.

    A 200 leaves its endless body unread (the connection is then closed); any other answer is
    read whole.
    """
    parts = urlsplit(base_url)
    assert parts.hostname is not None and parts.port is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
    try:
        conn.request(method, target, headers=dict(headers or {}))
        response = conn.getresponse()
        names = {name.lower(): value for name, value in response.getheaders()}
        data = b"" if response.status == 200 else response.read()
        return RawResponse(response.status, names, data)
    except (http.client.HTTPException, OSError) as error:
        raise ConnectionDroppedError(f"{method} {target[:80]}: {error!r}") from error
    finally:
        conn.close()


def is_envelope(response: RawResponse) -> bool:
    """Tell whether a response is the API's error envelope: JSON with string error and detail."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("error"), str)
        and isinstance(body.get("detail"), str)
        and bool(body["detail"])
    )
