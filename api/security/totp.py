"""TOTP (RFC 6238, pyotp): new secrets, the otpauth URI, and code checks with replay protection.

A code is accepted for the current 30 s step or ``window`` steps around it (clock drift), and
only for a step later than the last one accepted for that user: each code works once.
"""

from __future__ import annotations

import pyotp
from pyotp.utils import strings_equal

CODE_DIGITS = 6


def new_secret() -> str:
    """A fresh random base32 secret (160 bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def matching_step(
    secret: str, code: str, *, now_s: float, window: int, last_used_step: int | None
) -> int | None:
    """The time step a code belongs to, if it is valid now and newer than ``last_used_step``."""
    if len(code) != CODE_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now_s)
    for step in range(current - window, current + window + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        if strings_equal(code, totp.generate_otp(step)):
            return step
    return None
