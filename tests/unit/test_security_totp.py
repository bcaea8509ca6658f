"""TOTP checks: the window around now, and each code's step accepted only once."""

from __future__ import annotations

import pyotp

from api.security import totp

NOW_S = 1_700_000_000.0
STEP_S = 30


def _code(secret: str, steps: int) -> str:
    return pyotp.TOTP(secret).at(NOW_S + steps * STEP_S)


def _step(steps: int) -> int:
    return int(NOW_S // STEP_S) + steps


def test_a_current_code_matches_its_step() -> None:
    secret = totp.new_secret()

    step = totp.matching_step(secret, _code(secret, 0), now_s=NOW_S, window=1, last_used_step=None)

    assert step == _step(0)


def test_codes_one_step_away_are_accepted_and_two_steps_away_are_not() -> None:
    secret = totp.new_secret()

    def check(steps: int) -> int | None:
        return totp.matching_step(
            secret, _code(secret, steps), now_s=NOW_S, window=1, last_used_step=None
        )

    assert check(-1) == _step(-1)
    assert check(1) == _step(1)
    assert check(-2) is None
    assert check(2) is None


def test_a_used_step_and_earlier_ones_are_refused() -> None:
    secret = totp.new_secret()
    code = _code(secret, 0)
    first = totp.matching_step(secret, code, now_s=NOW_S, window=1, last_used_step=None)
    assert first is not None

    replay = totp.matching_step(secret, code, now_s=NOW_S, window=1, last_used_step=first)
    older = totp.matching_step(
        secret, _code(secret, -1), now_s=NOW_S, window=1, last_used_step=first
    )
    newer = totp.matching_step(
        secret, _code(secret, 1), now_s=NOW_S, window=1, last_used_step=first
    )

    assert replay is None
    assert older is None
    assert newer == _step(1)


def test_malformed_codes_are_refused() -> None:
    secret = totp.new_secret()
    code = _code(secret, 0)

    for bad in ("", code[:-1], code + "0", "abcdef", "١٢٣٤٥٦"):
        assert totp.matching_step(secret, bad, now_s=NOW_S, window=1, last_used_step=None) is None


def test_the_provisioning_uri_names_the_issuer_and_account() -> None:
    secret = totp.new_secret()

    uri = totp.provisioning_uri(secret, "alice@example.com", "Broker")

    assert uri.startswith(f"otpauth://totp/Broker:alice%40example.com?secret={secret}")
    assert "issuer=Broker" in uri
