"""Opaque keyset-pagination cursors and page-size checks for the funds lists."""

from __future__ import annotations

import base64
import binascii
import json

from api.exceptions import InvalidRequestError
from core.settings import Settings

CURSOR_VERSION = "v1"


def encode_cursor(*parts: str) -> str:
    """An opaque cursor carrying the sort key of the last row of a page."""
    raw = json.dumps([CURSOR_VERSION, *parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[str]:
    """The sort key inside a cursor; InvalidRequestError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("cursor is malformed", code="invalid_cursor") from None
    if (
        not isinstance(value, list)
        or len(value) != parts + 1
        or value[0] != CURSOR_VERSION
        or not all(isinstance(p, str) for p in value[1:])
    ):
        raise InvalidRequestError("cursor is malformed", code="invalid_cursor")
    return list(value[1:])


def page_limit(settings: Settings, limit: int | None) -> int:
    """The page size to use: the default when absent, refused above page_limit_max."""
    if limit is None:
        return min(settings.page_limit_default, settings.page_limit_max)
    if not 1 <= limit <= settings.page_limit_max:
        raise InvalidRequestError(
            f"limit must be between 1 and {settings.page_limit_max}", code="invalid_limit"
        )
    return limit
