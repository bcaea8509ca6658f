"""A PostgreSQL cluster from the machine's Debian packages, under the project's .local folder."""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from core.settings import Settings
from infra import procs

log = logging.getLogger(__name__)


def home(settings: Settings) -> Path:
    """This stack's PostgreSQL folder: data, socket, log."""
    return settings.state_dir / "postgres"


def data_dir(settings: Settings) -> Path:
    """The cluster's data directory."""
    return home(settings) / "data"


def log_file(settings: Settings) -> Path:
    """The server log."""
    return home(settings) / "postgres.log"


def as_root() -> bool:
    """True when this process runs as root (servers then run as the server's OS user)."""
    return os.geteuid() == 0


def os_user(settings: Settings) -> pwd.struct_passwd:
    """The server's OS user, who owns its files."""
    return pwd.getpwnam(settings.pg_os_user)


def _run(settings: Settings, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, capturing its output; as root, run it as the server's OS user."""
    full = [str(settings.pg_bin_dir / argv[0]), *argv[1:]]
    if as_root():
        # initdb and postgres refuse to run as root.
        full = ["runuser", "-u", settings.pg_os_user, "--", *full]
    return subprocess.run(full, text=True, check=False, capture_output=True)


def _reachable_by_os_user(settings: Settings, path: Path) -> bool:
    result = subprocess.run(
        ["runuser", "-u", settings.pg_os_user, "--", "test", "-w", str(path)],
        check=False,
    )
    return result.returncode == 0


def _prepare_home(settings: Settings) -> None:
    prepare_os_user_dir(settings, home(settings))


def prepare_os_user_dir(settings: Settings, target: Path) -> None:
    """Create a folder for the server's files; as root, hand it to the server's OS user.

    When a parent folder (say /root) is closed to that user, the folder lives in /var/tmp and
    target is a symlink to it, so the project still finds it in one place.
    """
    if target.exists() or target.is_symlink():
        if as_root() and target.is_symlink():
            target.resolve().mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir()
    if not as_root():
        return
    user = os_user(settings)
    os.chown(target, user.pw_uid, user.pw_gid)
    if _reachable_by_os_user(settings, target):
        return
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    outside = Path("/var/tmp") / f"broker-{target.name}-{digest}"  # noqa: S108 - fixed, per-checkout
    outside.mkdir(parents=True, exist_ok=True)
    os.chown(outside, user.pw_uid, user.pw_gid)
    target.rmdir()
    target.symlink_to(outside)
    log.info("%s is closed to user %s; its files live in %s", target, settings.pg_os_user, outside)


INCLUDE_FILE = "broker.conf"
# Worker processes beside TimescaleDB's: parallel query (max_parallel_workers, 8 by default)
# and the logical replication launcher.
PARALLEL_AND_OTHER_WORKERS = 10


def server_parameters(settings: Settings) -> dict[str, str]:
    """The server settings the project sets on every node it runs, whoever starts the node."""
    parameters = {
        "shared_buffers": f"{settings.pg_shared_buffers_mb}MB",
        "max_connections": str(settings.pg_connections_max),
        "max_wal_size": f"{settings.pg_max_wal_size_mb}MB",
        "log_min_duration_statement": "1000",
    }
    if settings.pg_timescaledb:
        parameters["shared_preload_libraries"] = "timescaledb"
        # TimescaleDB's launcher, a scheduler per database and each running job are background
        # workers; PostgreSQL's default of 8 leaves jobs "failed to start a background worker".
        workers = settings.pg_timescaledb_workers_max
        parameters["timescaledb.max_background_workers"] = str(workers)
        parameters["max_worker_processes"] = str(workers + PARALLEL_AND_OTHER_WORKERS)
        # Its telemetry would call out to Timescale's servers at every start.
        parameters["timescaledb.telemetry_level"] = "off"
    return parameters


def _write_parameters(settings: Settings) -> None:
    """Rewrite the include file, so a changed setting also reaches a cluster made before."""
    conf = data_dir(settings) / "postgresql.conf"
    include = f"include_if_exists = '{INCLUDE_FILE}'"
    if include not in conf.read_text():
        with conf.open("a") as out:
            out.write(f"\n# The project's parameters (infra/postgres.py)\n{include}\n")
    lines = [f"{name} = '{value}'" for name, value in server_parameters(settings).items()]
    (data_dir(settings) / INCLUDE_FILE).write_text(
        "\n".join(["# Written by infra/postgres.py", *lines, ""])
    )


def _initdb(settings: Settings) -> None:
    if (data_dir(settings) / "PG_VERSION").exists():
        return
    log.info("initialising a PostgreSQL cluster in %s", data_dir(settings))
    password = settings.pg_password.get_secret_value()
    with tempfile.NamedTemporaryFile("w", dir=home(settings), delete=False) as pwfile:
        pwfile.write(password + "\n")
    if as_root():
        user = os_user(settings)
        os.chown(pwfile.name, user.pw_uid, user.pw_gid)
    try:
        result = _run(
            settings,
            [
                "initdb",
                "-D",
                str(data_dir(settings)),
                "-U",
                settings.pg_user,
                f"--pwfile={pwfile.name}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        )
    finally:
        Path(pwfile.name).unlink(missing_ok=True)
    if result.returncode != 0:
        raise procs.InfraError(f"initdb failed:\n{result.stdout}\n{result.stderr}")


def _pg_ctl_running(settings: Settings) -> bool:
    # pg_ctl takes a zombie for a live server (kill 0 succeeds on it), and a killed postmaster
    # stays a zombie until the machine's init reaps it; so look at the process first.
    pid = procs.read_pid(data_dir(settings) / "postmaster.pid")
    if pid is None or not procs.is_running(pid, "postgres"):
        return False
    return _run(settings, ["pg_ctl", "status", "-D", str(data_dir(settings))]).returncode == 0


def ready(settings: Settings) -> bool:
    """True when the server accepts connections for the project's role."""
    try:
        with psycopg.connect(settings.pg_dsn_for("postgres"), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def ensure_database(settings: Settings) -> None:
    """Create the project's database on the primary unless it exists."""
    with psycopg.connect(settings.pg_dsn_for("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.pg_database,)
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.pg_database)))


def start(settings: Settings) -> None:
    """Initialise the cluster on first use, start it unless it runs, create the database."""
    _prepare_home(settings)
    _initdb(settings)
    if not _pg_ctl_running(settings):
        _write_parameters(settings)
        # pg_ctl said no server runs, so a postmaster.pid left by a crash is stale, and so is
        # the socket's lock file (which names the dead postmaster; still a zombie, it would
        # read as alive to the new one).
        (data_dir(settings) / "postmaster.pid").unlink(missing_ok=True)
        socket_lock = home(settings) / f".s.PGSQL.{settings.pg_port}.lock"
        if not procs.is_running(procs.read_pid(socket_lock) or 0, "postgres"):
            socket_lock.unlink(missing_ok=True)
        if procs.port_open(settings.pg_host, settings.pg_port):
            raise procs.InfraError(
                f"port {settings.pg_port} is taken by a process this stack did not start"
            )
        options = (
            f"-p {settings.pg_port} -k {home(settings)} -c listen_addresses={settings.pg_host}"
        )
        result = _run(
            settings,
            [
                "pg_ctl",
                "start",
                "-D",
                str(data_dir(settings)),
                "-l",
                str(log_file(settings)),
                "-o",
                options,
                "-w",
                "-t",
                str(int(settings.startup_timeout_s)),
            ],
        )
        if result.returncode != 0:
            raise procs.InfraError(
                f"PostgreSQL did not start ({result.stderr.strip()}); last lines of "
                f"{log_file(settings)}:\n{procs.tail(log_file(settings))}"
            )
    procs.wait_until(lambda: ready(settings), settings.startup_timeout_s, "PostgreSQL")
    ensure_database(settings)


def stop(settings: Settings) -> bool:
    """Stop the server (fast shutdown) if it runs; True when there was one to stop."""
    if not data_dir(settings).exists() or not _pg_ctl_running(settings):
        return False
    result = _run(
        settings,
        [
            "pg_ctl",
            "stop",
            "-D",
            str(data_dir(settings)),
            "-m",
            "fast",
            "-t",
            str(int(settings.shutdown_timeout_s)),
        ],
    )
    if result.returncode != 0:
        raise procs.InfraError(f"PostgreSQL did not stop: {result.stderr.strip()}")
    return True


def status(settings: Settings) -> str:
    """One line saying whether the server runs and where it listens."""
    if not data_dir(settings).exists() or not _pg_ctl_running(settings):
        return "postgres: stopped"
    state = "ready" if ready(settings) else "starting"
    return (
        f"postgres: {state}, {settings.pg_host}:{settings.pg_port} "
        f"database {settings.pg_database}, data {data_dir(settings)}"
    )
