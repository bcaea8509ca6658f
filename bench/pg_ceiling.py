"""The database ceiling: pgbench against the project's PostgreSQL, built-in and custom-script mode.

Each mode runs in a database of its own (``bench_pgbench``), created before and dropped after,
so a run never touches the project's data and leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from bench.exceptions import ToolError
from bench.report import Ceiling, HostInfo, Result
from core.settings import Settings

log = logging.getLogger(__name__)

BENCH_DATABASE = "bench_pgbench"
TRANSFER_SCRIPT = Path(__file__).resolve().parent / "sql" / "transfer.sql"
TRANSFER_BALANCE_START = Decimal("1000000.0000")
# pgbench's own start-up, vacuum and shutdown on top of -T; -i takes about a second per scale 10.
RUN_MARGIN_S = 60.0
INIT_TIMEOUT_S_PER_SCALE = 10.0
OUTPUT_TAIL_CHARS = 2000

_TPS = re.compile(
    r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)",
    re.MULTILINE,
)
_LATENCY_MS_AVG = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)
_TRANSACTIONS = re.compile(r"^number of transactions actually processed: ([0-9]+)", re.MULTILINE)
_FAILED = re.compile(r"^number of failed transactions: ([0-9]+)", re.MULTILINE)


@dataclass(frozen=True)
class PgbenchFigures:
    """What one pgbench run reports: throughput, mean latency and transaction counts."""

    tps: float
    latency_ms_avg: float
    transactions: int
    failed: int


@dataclass(frozen=True)
class PgbenchLoad:
    """How hard pgbench pushes: connections, worker threads and run length."""

    clients: int
    threads: int
    duration_s: int

    def __post_init__(self) -> None:
        if self.clients < 1 or self.threads < 1 or self.duration_s < 1:
            raise ValueError(f"clients, threads and duration must be positive: {self}")
        if self.clients % self.threads != 0:
            raise ValueError(f"pgbench needs clients ({self.clients}) divisible by threads")


def parse_pgbench_output(text: str) -> PgbenchFigures:
    """Read tps (without connection time), latency average and counts from pgbench's report."""
    tps = _TPS.search(text)
    latency = _LATENCY_MS_AVG.search(text)
    transactions = _TRANSACTIONS.search(text)
    if tps is None or latency is None or transactions is None:
        raise ToolError(
            f"pgbench output lacks tps/latency/transactions: {text[-OUTPUT_TAIL_CHARS:]}"
        )
    failed = _FAILED.search(text)
    return PgbenchFigures(
        tps=float(tps.group(1)),
        latency_ms_avg=float(latency.group(1)),
        transactions=int(transactions.group(1)),
        failed=int(failed.group(1)) if failed else 0,
    )


def _run_pgbench(settings: Settings, args: list[str], timeout_s: float) -> str:
    command = [
        str(settings.pg_bin_dir / "pgbench"),
        # Every node, the primary chosen (PGTARGETSESSIONATTRS below): libpq takes lists.
        *("-h", ",".join(host for host, _ in settings.pg_addresses)),
        *("-p", ",".join(str(port) for _, port in settings.pg_addresses)),
        *("-U", settings.pg_user),
        *args,
    ]
    env = {
        **os.environ,
        "PGPASSWORD": settings.pg_password.get_secret_value(),
        "PGCONNECT_TIMEOUT": str(int(settings.pg_connect_timeout_s)),
        "PGTARGETSESSIONATTRS": "read-write",
    }
    log.info("running %s", " ".join(command))
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"pgbench {' '.join(args)} failed to run: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-OUTPUT_TAIL_CHARS:]
        raise ToolError(f"pgbench {' '.join(args)} exited {done.returncode}: {tail}")
    return done.stdout


@contextmanager
def bench_database(settings: Settings, name: str = BENCH_DATABASE) -> Iterator[str]:
    """Create an empty database for one measurement; drop it afterwards. Yields its name."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(settings.pg_dsn_for("postgres"), autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(settings.pg_dsn_for("postgres"), autocommit=True) as conn:
            conn.execute(drop)


def _load_args(load: PgbenchLoad) -> list[str]:
    return ["-c", str(load.clients), "-j", str(load.threads), "-T", str(load.duration_s)]


def _result(
    name: str, figures: PgbenchFigures, conditions: dict[str, str | int], host: HostInfo
) -> Result:
    if figures.failed:
        raise ToolError(f"{name}: {figures.failed} pgbench transactions failed")
    details = {
        "latency_ms_avg": figures.latency_ms_avg,
        "transactions": figures.transactions,
        "failed": figures.failed,
    }
    return Result.now(name, figures.tps, "tps", conditions, host, details)


def measure_tpcb(settings: Settings, host: HostInfo, load: PgbenchLoad, *, scale: int) -> Ceiling:
    """pgbench's built-in TPC-B-like transaction at ``scale``, prepared statements."""
    with bench_database(settings) as database:
        _run_pgbench(
            settings,
            ["-i", "-s", str(scale), "-q", database],
            RUN_MARGIN_S + INIT_TIMEOUT_S_PER_SCALE * scale,
        )
        output = _run_pgbench(
            settings,
            [*_load_args(load), "-M", "prepared", database],
            load.duration_s + RUN_MARGIN_S,
        )
    conditions: dict[str, str | int] = {
        "mode": "builtin tpcb-like",
        "query_mode": "prepared",
        "scale": scale,
        "clients": load.clients,
        "threads": load.threads,
        "duration_s": load.duration_s,
    }
    return _result("pgbench.tpcb", parse_pgbench_output(output), conditions, host)


def _create_transfer_tables(dsn: str, wallets: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_wallets (id integer PRIMARY KEY, balance numeric(18,4) NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE bench_entries (id bigserial PRIMARY KEY, wallet_id integer NOT NULL, "
            "amount numeric(18,4) NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO bench_wallets SELECT i, %s FROM generate_series(1, %s) AS i",
            (TRANSFER_BALANCE_START, wallets),
        )
        conn.execute("VACUUM ANALYZE bench_wallets")


def _check_transfer_invariant(dsn: str, wallets: int) -> None:
    """Money is neither made nor lost: balances keep their total, entries sum to zero."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT sum(balance) FROM bench_wallets), "
            "(SELECT coalesce(sum(amount), 0) FROM bench_entries)"
        ).fetchone()
    expected = TRANSFER_BALANCE_START * wallets
    if row is None or row[0] != expected or row[1] != 0:
        raise ToolError(f"transfer script broke the ledger: totals {row}, expected {expected}, 0")


def measure_transfer(
    settings: Settings, host: HostInfo, load: PgbenchLoad, *, wallets: int
) -> Ceiling:
    """pgbench running ``bench/sql/transfer.sql`` over ``wallets`` wallets, prepared statements."""
    with bench_database(settings) as database:
        dsn = settings.pg_dsn_for(database)
        _create_transfer_tables(dsn, wallets)
        output = _run_pgbench(
            settings,
            [
                *_load_args(load),
                "-M",
                "prepared",
                "-n",  # the script's tables are vacuumed above; pgbench's own do not exist
                "-f",
                str(TRANSFER_SCRIPT),
                "-D",
                f"wallets={wallets}",
                database,
            ],
            load.duration_s + RUN_MARGIN_S,
        )
        _check_transfer_invariant(dsn, wallets)
    conditions: dict[str, str | int] = {
        "mode": "custom script bench/sql/transfer.sql",
        "query_mode": "prepared",
        "wallets": wallets,
        "clients": load.clients,
        "threads": load.threads,
        "duration_s": load.duration_s,
    }
    return _result("pgbench.transfer", parse_pgbench_output(output), conditions, host)
