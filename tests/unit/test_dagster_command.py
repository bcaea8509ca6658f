"""The Dagster launcher picks the right program for each mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from dagster_project.__main__ import command


@pytest.mark.parametrize(
    ("mode", "program", "first_arg"),
    [
        ("dev", "dagster", "dev"),
        ("webserver", "dagster-webserver", "-w"),
        ("daemon", "dagster-daemon", "run"),
    ],
)
def test_each_mode_runs_an_installed_dagster_program(
    mode: str, program: str, first_arg: str
) -> None:
    argv = command(Settings(dagster_port=3999), mode)

    assert Path(argv[0]).name == program
    assert Path(argv[0]).exists()
    assert argv[1] == first_arg
    assert ("3999" in argv) is (mode != "daemon")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown mode"):
        command(Settings(), "serve")
