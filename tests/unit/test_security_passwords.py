"""Password rules and Argon2 hashing."""

from __future__ import annotations

import pytest

from api.security import passwords
from core.settings import Settings

SETTINGS = Settings()


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least"),
        ("x" * (SETTINGS.password_length_max + 1), "at most"),
        ("abababababababab", "different characters"),
        ("Password1234", "too common"),
        ("my alice.smith password", "email"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, problem: str) -> None:
    reason = passwords.password_problem(SETTINGS, password, "alice.smith@example.com")

    assert reason is not None and problem in reason


def test_a_long_varied_password_is_accepted() -> None:
    assert passwords.password_problem(SETTINGS, "plum kettle 9 orbit", "a@example.com") is None


async def test_a_hash_verifies_its_password_only() -> None:
    stored = await passwords.hash_password(SETTINGS, "plum kettle 9 orbit")

    assert stored.startswith("$argon2id$")
    assert await passwords.verify_password(SETTINGS, stored, "plum kettle 9 orbit")
    assert not await passwords.verify_password(SETTINGS, stored, "plum kettle 9 orbiT")


async def test_no_user_and_a_malformed_hash_both_fail_without_error() -> None:
    assert not await passwords.verify_password(SETTINGS, None, "anything at all")
    assert not await passwords.verify_password(SETTINGS, "not-a-hash", "anything at all")
