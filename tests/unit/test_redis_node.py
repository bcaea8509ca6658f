"""The Redis config rendered from the settings, shared by the background start and a supervisor."""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import SecretStr

from core.settings import Settings
from infra import redis_node


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path,
        redis_host="127.0.0.1",
        redis_port=56999,
        redis_password=SecretStr('pass "with" spaces # and \\ more'),
    )


def test_the_config_listens_on_loopback_with_a_password_and_keeps_nothing_on_disk(
    tmp_path: Path,
) -> None:
    lines = redis_node.config_text(_settings(tmp_path)).splitlines()

    assert "bind 127.0.0.1" in lines
    assert "port 56999" in lines
    assert 'requirepass "pass \\"with\\" spaces # and \\\\ more"' in lines
    assert 'save ""' in lines
    assert "appendonly no" in lines
    assert "daemonize no" in lines
    assert f'dir "{tmp_path / "redis"}"' in lines


def test_prepare_writes_the_config_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)

    path = redis_node.prepare(settings)

    assert path == tmp_path / "redis" / "redis.conf"
    assert path.read_text() == redis_node.config_text(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_foreground_command_runs_the_server_on_the_prepared_config(tmp_path: Path) -> None:
    settings = _settings(tmp_path)

    argv = redis_node.foreground_argv(settings)

    assert Path(argv[0]).name == "redis-server"
    assert argv[1:] == [str(redis_node.config_file(settings))]
    assert redis_node.config_file(settings).exists()
