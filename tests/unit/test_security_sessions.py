"""Refresh tokens and recovery codes: their shape, and the forms a typed code may take."""

from __future__ import annotations

import re

import pytest

from api.security import sessions


def test_refresh_tokens_are_unique_urlsafe_and_long() -> None:
    tokens = {sessions.new_refresh_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)


def test_a_recovery_code_is_three_groups_of_four_unambiguous_characters() -> None:
    codes = {sessions.new_recovery_code() for _ in range(100)}
    assert len(codes) == 100
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){2}", c) for c in codes)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("ABCD-EFGH-JK12", "ABCDEFGHJK12"),
        ("abcd-efgh-jk12", "ABCDEFGHJK12"),
        ("ABCD EFGH JK12", "ABCDEFGHJK12"),
        ("0O0O-1I1L-2222", "000011112222"),  # look-alikes read as the digits they resemble
    ],
)
def test_a_typed_recovery_code_is_read_in_its_canonical_form(typed: str, canonical: str) -> None:
    assert sessions.normalise_recovery_code(typed) == canonical
    assert sessions.digest(sessions.normalise_recovery_code(typed)) == sessions.digest(canonical)
