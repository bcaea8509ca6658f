"""Command line: ``python -m bench`` measures the ceilings every benchmark is compared to.

Runs against the development stack named by the ``BROKER_*`` settings (``python -m infra start``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bench import kafka_ceiling, pg_ceiling
from bench.exceptions import BenchError, StackNotRunningError
from bench.host import host_info
from bench.report import DOCS_PATH, RESULTS_DIR, Row, format_conditions, format_figure, publish
from core.settings import Settings, get_settings

log = logging.getLogger("bench")

STACK_CHECK_TIMEOUT_S = 5.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=["pgbench", "kafka"], help="measure one ceiling only")
    parser.add_argument("--kafka-messages", type=int, default=2_000_000, metavar="N")
    parser.add_argument("--kafka-message-bytes", type=int, default=100, metavar="BYTES")
    parser.add_argument("--kafka-partitions", type=int, default=12, metavar="P")
    parser.add_argument("--pgbench-seconds", type=int, default=30, metavar="S", help="per mode")
    parser.add_argument("--pgbench-clients", type=int, default=4, metavar="C")
    parser.add_argument("--pgbench-scale", type=int, default=10, metavar="SCALE")
    parser.add_argument("--pgbench-wallets", type=int, default=10_000, metavar="N")
    parser.add_argument(
        "--no-write-docs", action="store_true", help=f"do not append to {DOCS_PATH.name}"
    )
    return parser


def pgbench_threads(clients: int, nproc: int) -> int:
    """The most pgbench threads up to ``nproc`` that divide ``clients`` evenly."""
    return max(t for t in range(1, min(clients, nproc) + 1) if clients % t == 0)


def check_stack(settings: Settings, *, postgres: bool, kafka: bool) -> None:
    """Raise ``StackNotRunningError`` naming the service that does not answer."""
    if postgres:
        try:
            psycopg.connect(settings.pg_dsn_for("postgres")).close()
        except psycopg.OperationalError as exc:
            raise StackNotRunningError(
                f"PostgreSQL does not answer on {settings.pg_host}:{settings.pg_port} ({exc}); "
                "start the stack with `python -m infra start`"
            ) from exc
    if kafka:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        try:
            admin.list_topics(timeout=STACK_CHECK_TIMEOUT_S)
        except KafkaException as exc:
            raise StackNotRunningError(
                f"Kafka does not answer on {settings.kafka_bootstrap} ({exc}); "
                "start the stack with `python -m infra start`"
            ) from exc


def measure(settings: Settings, args: argparse.Namespace) -> list[Row]:
    """Measure the ceilings the arguments ask for, one row each."""
    host = host_info(settings)
    rows: list[Row] = []
    if args.only in (None, "pgbench"):
        threads = pgbench_threads(args.pgbench_clients, host.nproc)
        load = pg_ceiling.PgbenchLoad(args.pgbench_clients, threads, args.pgbench_seconds)
        rows.append(Row(pg_ceiling.measure_tpcb(settings, host, load, scale=args.pgbench_scale)))
        rows.append(
            Row(pg_ceiling.measure_transfer(settings, host, load, wallets=args.pgbench_wallets))
        )
    if args.only in (None, "kafka"):
        load_kafka = kafka_ceiling.KafkaLoad(
            args.kafka_messages, args.kafka_message_bytes, args.kafka_partitions
        )
        rows.append(Row(kafka_ceiling.measure(settings, host, load_kafka)))
    return rows


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table of the ceilings: figure, unit, conditions, secondary figures."""
    lines = [f"host: {rows[0].result.host.describe()}"] if rows else []
    for row in rows:
        result = row.result
        lines.append(f"{result.name:<18} {format_figure(result.value):>12} {result.unit}")
        lines.append(f"{'':<18} conditions: {format_conditions(result.conditions)}")
        if result.details:
            lines.append(f"{'':<18} measured:   {format_conditions(result.details)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure the ceilings, print them, and record them as JSON and in docs/BENCHMARKS.md."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(levelname)s %(message)s")
    settings = get_settings()
    try:
        check_stack(settings, postgres=args.only != "kafka", kafka=args.only != "pgbench")
        rows = measure(settings, args)
    except StackNotRunningError as exc:
        sys.stderr.write(f"the development stack is not running: {exc}\n")
        return 2
    except BenchError as exc:
        log.error("%s", exc)
        return 1
    sys.stdout.write(render_table(rows))
    path = publish(
        rows,
        label="ceilings",
        results_dir=RESULTS_DIR,
        docs_path=None if args.no_write_docs else DOCS_PATH,
    )
    sys.stdout.write(f"results: {os.path.relpath(path)}\n")
    if not args.no_write_docs:
        sys.stdout.write(f"appended to {os.path.relpath(DOCS_PATH)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
