"""The Dagster launcher picks the right program for each mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from dagster_project.__main__ import command, workspace_path


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


def test_the_code_server_serves_the_module_on_its_own_port_and_the_ui_points_at_it(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path, dagster_code_server=True, dagster_code_port=4999)

    argv = command(settings, "code-server")
    ui = command(settings, "webserver")

    assert argv[1:3] == ["api", "grpc"] and "dagster_project.definitions" in argv
    assert argv[argv.index("--port") + 1] == "4999"
    assert ui[ui.index("-w") + 1] == str(workspace_path(settings))
    assert workspace_path(Settings()).name == "workspace.yaml"
    assert workspace_path(Settings()) != workspace_path(settings)
