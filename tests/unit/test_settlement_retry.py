"""Transient database errors are retried with a bounded backoff; other errors are not."""

from __future__ import annotations

import psycopg
import pytest

from streams.db_retry import retry_transient


async def test_transient_errors_are_retried_until_the_attempt_succeeds() -> None:
    failures = [psycopg.OperationalError("connection lost"), psycopg.InterfaceError("closed")]

    async def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert await retry_transient(attempt, what="test", backoff_ms_max=60) == "done"
    assert failures == []


async def test_an_error_of_the_data_is_not_retried() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise psycopg.errors.CheckViolation("balance would go negative")

    with pytest.raises(psycopg.errors.CheckViolation):
        await retry_transient(attempt, what="test", backoff_ms_max=60)
    assert calls == 1
