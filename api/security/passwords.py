"""Password hashing with Argon2id (argon2-cffi) and the rules a new password must meet.

Hashing is deliberately slow and memory-hard, so it runs on a small thread pool of its own:
the event loop stays free, and the pool's size caps the memory many logins at once can take.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.settings import Settings

# Defaults follow RFC 9106's low-memory profile (Argon2id, t=3, m=64 MiB, p=4).
_HASHER = PasswordHasher()
# Fewer distinct characters than this ("aaaaaaaaaaaa", "abababababab") is refused.
DISTINCT_CHARS_MIN = 5
COMMON_PASSWORDS = frozenset(
    {
        "password1234",
        "123456789012",
        "qwertyuiopas",
        "iloveyou1234",
        "letmein12345",
        "correcthorsebatterystaple",
    }
)


@lru_cache(maxsize=1)
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Unknown emails are checked against this, so they cost as much time as known ones.
    return _HASHER.hash("dummy password for unknown accounts")


def password_problem(settings: Settings, password: str, email: str) -> str | None:
    """Why a new password is too weak, or None when it is acceptable."""
    if len(password) < settings.password_length_min:
        return f"password must have at least {settings.password_length_min} characters"
    if len(password) > settings.password_length_max:
        return f"password must have at most {settings.password_length_max} characters"
    if len(set(password)) < DISTINCT_CHARS_MIN:
        return f"password must use at least {DISTINCT_CHARS_MIN} different characters"
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        return "password is too common"
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= DISTINCT_CHARS_MIN and local_part in lowered:
        return "password must not contain the email address"
    return None


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return (
            _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(settings: Settings, password: str) -> str:
    """The Argon2id hash of a password, computed off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor(settings.password_hash_threads_max), _HASHER.hash, password
    )


async def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    """Whether the password matches; ``None`` (no such user) costs the same time and fails."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor(settings.password_hash_threads_max), _verify, password_hash, password
    )


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with weaker parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False
