"""Access tokens: a verified token is remembered until it expires, a bad one never."""

from __future__ import annotations

import time

import pytest

from api.exceptions import UnauthenticatedError
from api.security.tokens import (
    Principal,
    TokenCache,
    issue_access_token,
    read_access_token_cached,
)
from core.settings import Settings


def test_a_verified_token_is_answered_from_the_cache_until_it_expires() -> None:
    settings = Settings()
    token = issue_access_token(settings, 7, two_factor=True)
    cache: TokenCache = {}

    first = read_access_token_cached(settings, token, cache)
    # Another secret would refuse the token: only the cache can still answer it.
    again = read_access_token_cached(settings.model_copy(update={"jwt_secret": "x"}), token, cache)
    # An entry past its expiry is not used: the token is decoded again.
    cache[token] = (Principal(99, two_factor=False), time.time() - 1)
    after_expiry = read_access_token_cached(settings, token, cache)

    assert (first.user_id, first.two_factor) == (7, True) and again == first
    assert after_expiry == first


def test_a_forged_token_is_refused_and_not_remembered() -> None:
    settings = Settings()
    token = issue_access_token(settings, 7, two_factor=True)
    cache: TokenCache = {}

    with pytest.raises(UnauthenticatedError):
        read_access_token_cached(settings, token[:-2] + "xx", cache)
    assert cache == {}


def test_the_cache_is_emptied_when_it_reaches_its_maximum() -> None:
    settings = Settings(access_token_cache_max=2)
    cache: TokenCache = {}

    for user_id in range(5):
        read_access_token_cached(
            settings, issue_access_token(settings, user_id, two_factor=False), cache
        )

    assert 1 <= len(cache) <= 2
