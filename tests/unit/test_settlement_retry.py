"""Database errors are retried with a bounded backoff; only the kinds the caller names."""

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


async def test_the_delay_doubles_from_50_ms_and_stops_at_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [psycopg.OperationalError("down")] * 3

    async def attempt() -> str:
        if failures:
            raise failures.pop()
        return "done"

    with caplog.at_level("WARNING", logger="streams.db_retry"):
        assert await retry_transient(attempt, what="test", backoff_ms_max=80) == "done"
    delays = [r.getMessage().rsplit("retrying in ", 1)[1] for r in caplog.records]
    assert delays == ["50 ms", "80 ms", "80 ms"]


async def test_a_caller_that_names_every_database_error_has_data_errors_retried_too() -> None:
    failures = [psycopg.errors.DataError("invalid input")]

    async def attempt() -> str:
        if failures:
            raise failures.pop()
        return "done"

    got = await retry_transient(attempt, what="test", backoff_ms_max=60, errors=(psycopg.Error,))
    assert got == "done"
    assert failures == []


async def test_an_attempt_given_as_a_lambda_is_awaited_and_retried() -> None:
    failures = [psycopg.OperationalError("down")]

    async def load() -> str:
        if failures:
            raise failures.pop()
        return "done"

    assert await retry_transient(lambda: load(), what="test", backoff_ms_max=60) == "done"
    assert failures == []
