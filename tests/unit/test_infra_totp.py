"""``python -m infra totp``: the current code of a secret, or the demo trader's; clear refusals."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from core.settings import Settings
from infra import demo
from infra.__main__ import _print_totp


def test_a_secret_gives_the_code_an_authenticator_shows(capsys: pytest.CaptureFixture[str]) -> None:
    secret = pyotp.random_base32()
    assert _print_totp(Settings(), secret) == 0
    code = capsys.readouterr().out.strip()
    # valid_window=1: the step may have turned between printing and checking.
    assert pyotp.TOTP(secret).verify(code, valid_window=1)


@pytest.mark.parametrize("secret", ["not a secret!", "ABC", ""])
def test_a_malformed_secret_is_refused_with_a_reason(
    secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _print_totp(Settings(), secret) == 2
    assert "base32" in capsys.readouterr().err


def test_without_a_secret_the_demo_traders_code_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(state_dir=tmp_path)
    assert _print_totp(settings, None) == 2  # no demo trader yet
    assert "make up" in capsys.readouterr().err
    secret = pyotp.random_base32()
    demo.save(settings, demo.DemoTrader("d@example.com", "pw", secret))
    assert _print_totp(settings, None) == 0
    assert len(capsys.readouterr().out.strip()) == 6
    assert oct(demo.trader_file(settings).stat().st_mode)[-3:] == "600"
