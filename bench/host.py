"""What a result was measured on: cores, CPU model, and the versions of the tools in the path."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import confluent_kafka
import psycopg

from bench.report import HostInfo
from core.settings import Settings

CPUINFO_PATH = Path("/proc/cpuinfo")
TOOL_TIMEOUT_S = 10.0


def cpu_model(cpuinfo_path: Path = CPUINFO_PATH) -> str:
    """The first ``model name`` of ``/proc/cpuinfo``, or the platform's processor name."""
    try:
        text = cpuinfo_path.read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def postgres_version(settings: Settings) -> str:
    """The server's ``server_version``, or ``unreachable`` when PostgreSQL does not answer."""
    try:
        with psycopg.connect(settings.pg_dsn_for("postgres")) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.OperationalError:
        return "unreachable"
    return str(row[0]) if row else "unknown"


def pgbench_version(settings: Settings) -> str:
    """The version pgbench prints, e.g. ``15.18``."""
    try:
        done = subprocess.run(
            [str(settings.pg_bin_dir / "pgbench"), "--version"],
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "missing"
    # "pgbench (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    words = done.stdout.split()
    return words[2] if len(words) > 2 else done.stdout.strip()


def host_info(settings: Settings) -> HostInfo:
    """Cores, CPU model and versions of PostgreSQL, pgbench, Kafka, librdkafka and Python."""
    return HostInfo(
        nproc=os.cpu_count() or 1,
        cpu_model=cpu_model(),
        versions={
            "postgresql": postgres_version(settings),
            "pgbench": pgbench_version(settings),
            # The broker runs the release the infra fetched; its version is a setting.
            "kafka": settings.kafka_version,
            "librdkafka": confluent_kafka.libversion()[0],
            "confluent-kafka": metadata.version("confluent-kafka"),
            "python": platform.python_version(),
        },
    )
