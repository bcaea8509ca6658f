"""Run Dagster for the project: ``python -m dagster_project [dev|webserver|daemon|code-server]``.

Each prepares DAGSTER_HOME (an instance kept in PostgreSQL, database ``dagster``) and then
replaces this process with the Dagster command: ``dev`` (UI and daemon in one), or
``webserver`` and ``daemon`` as separate processes, and ``code-server``, the code location
served over gRPC, which they use when ``BROKER_DAGSTER_CODE_SERVER`` is true (``make up``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from core.settings import PROJECT_ROOT, Settings, get_settings

DAGSTER_DATABASE = "dagster"
CONFIG_DIR = PROJECT_ROOT / "infra" / "dagster"
CODE_LOCATION = "dagster_project.definitions"


def prepare(settings: Settings) -> dict[str, str]:
    """Create the instance database and DAGSTER_HOME; return the environment for Dagster."""
    with psycopg.connect(settings.pg_dsn_for("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DAGSTER_DATABASE,)
        ).fetchone()
        if exists is None:
            create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DAGSTER_DATABASE))
            # The UIs and the daemon start together; the loser of the race finds it made.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(create)
    home = settings.state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    _write_atomically(home / "dagster.yaml", (CONFIG_DIR / "dagster.yaml").read_text())
    if settings.dagster_code_server:
        _write_atomically(workspace_path(settings), _grpc_workspace(settings))
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": instance_url(settings),
    }


def instance_url(settings: Settings) -> str:
    """The SQLAlchemy URL of Dagster's instance database: every node, the primary chosen.

    Each node is a ``host`` argument (SQLAlchemy's form for several hosts), so after a failover
    Dagster's new connections find the promoted node.
    """
    password = quote(settings.pg_password.get_secret_value(), safe="")
    auth = f"{quote(settings.pg_user, safe='')}:{password}"
    hosts = "&".join(f"host={host}:{port}" for host, port in settings.pg_addresses)
    return f"postgresql://{auth}@/{DAGSTER_DATABASE}?{hosts}&target_session_attrs=read-write"


def _write_atomically(path: Path, text: str) -> None:
    # Another Dagster process may be reading the file while this one starts: never half-written.
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    part.write_text(text)
    part.replace(path)


def workspace_path(settings: Settings) -> Path:
    """The workspace Dagster loads: the module itself, or the code server's address."""
    if settings.dagster_code_server:
        return settings.state_dir / "dagster" / "workspace.yaml"
    return CONFIG_DIR / "workspace.yaml"


def _grpc_workspace(settings: Settings) -> str:
    # The location keeps the module's name, so schedules' and sensors' stored state still match.
    return (
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: {settings.dagster_code_host}\n"
        f"      port: {settings.dagster_code_port}\n"
        f"      location_name: {CODE_LOCATION}\n"
    )


def command(settings: Settings, mode: str) -> list[str]:
    """The Dagster command line for a mode, using the scripts beside this interpreter."""
    bin_dir = Path(sys.executable).parent
    workspace = str(workspace_path(settings))
    address = ["-h", settings.dagster_host, "-p", str(settings.dagster_port)]
    match mode:
        case "code-server":
            return [
                *(str(bin_dir / "dagster"), "api", "grpc", "--module-name", CODE_LOCATION),
                *("--host", settings.dagster_code_host, "--port", str(settings.dagster_code_port)),
            ]
        case "dev":
            return [str(bin_dir / "dagster"), "dev", "-w", workspace, *address]
        case "webserver":
            return [str(bin_dir / "dagster-webserver"), "-w", workspace, *address]
        case "daemon":
            return [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]
    raise SystemExit(f"unknown mode {mode!r}: use dev, webserver, daemon or code-server")


def main() -> None:
    """Prepare the instance and exec the Dagster command of the mode given on the command line."""
    settings = get_settings()
    argv = command(settings, sys.argv[1] if len(sys.argv) > 1 else "dev")
    os.execve(argv[0], argv, prepare(settings))  # noqa: S606


if __name__ == "__main__":
    main()
