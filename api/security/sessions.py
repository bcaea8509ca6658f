"""Secrets of a session: refresh tokens and 2FA recovery codes, made and digested.

Both are random enough (256 and 60 bits) that a plain SHA-256 digest at rest is safe: no
dictionary applies, so a slow password hash would only cost every request its time.
"""

from __future__ import annotations

import hashlib
import secrets

REFRESH_TOKEN_BYTES = 32
# Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand survives.
RECOVERY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECOVERY_GROUPS = 3
RECOVERY_GROUP_CHARS = 4
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def digest(secret: str) -> bytes:
    """The SHA-256 digest under which a refresh token or recovery code is stored."""
    return hashlib.sha256(secret.encode()).digest()


def new_refresh_token() -> str:
    """A fresh refresh token (URL-safe text)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def new_recovery_code() -> str:
    """A fresh recovery code, as shown to the user: ``XXXX-XXXX-XXXX``."""
    chars = [
        secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUPS * RECOVERY_GROUP_CHARS)
    ]
    groups = (
        "".join(chars[i : i + RECOVERY_GROUP_CHARS])
        for i in range(0, len(chars), RECOVERY_GROUP_CHARS)
    )
    return "-".join(groups)


def normalise_recovery_code(code: str) -> str:
    """The canonical form of a typed code: upper case, no dashes or spaces, look-alikes fixed."""
    kept = "".join(c for c in code.upper() if c not in "- ")
    return kept.translate(_LOOK_ALIKES)
