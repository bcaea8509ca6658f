"""Command line: ``python -m bench`` measures the ceilings, then the orders benchmark.

Runs against the development stack named by the ``BROKER_*`` settings (``python -m infra start``).
``--only orders`` runs the orders benchmark alone: orders/s and latency through the HTTP API
beside pgbench running the same SQL transaction (bench/orders_api.py). ``--only candles-backends``
needs no stack: it starts two private PostgreSQL clusters of its own (bench/candles_backends.py).
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

from bench import (
    candles_backends,
    candles_query,
    fix_roundtrip,
    kafka_ceiling,
    orders_api,
    orders_front,
    pg_ceiling,
    recon,
    sim_ticks,
    sse,
    streams_fills,
    streams_ticks,
)
from bench.exceptions import BenchError, StackNotRunningError
from bench.host import host_info
from bench.orders_history import History
from bench.report import DOCS_PATH, RESULTS_DIR, Row, format_conditions, format_figure, publish
from core.settings import Settings, get_settings

log = logging.getLogger("bench")

STACK_CHECK_TIMEOUT_S = 5.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        choices=[
            "pgbench",
            "kafka",
            "orders",
            "orders-front",
            "fix",
            "ticks",
            "streams-ticks",
            "streams-fills",
            "recon",
            "sse",
            "candles-query",
            "candles-backends",
        ],
        help="run one benchmark only",
    )
    parser.add_argument("--kafka-messages", type=int, default=2_000_000, metavar="N")
    parser.add_argument("--kafka-message-bytes", type=int, default=100, metavar="BYTES")
    parser.add_argument("--kafka-partitions", type=int, default=12, metavar="P")
    parser.add_argument("--pgbench-seconds", type=int, default=30, metavar="S", help="per mode")
    parser.add_argument("--pgbench-clients", type=int, default=4, metavar="C")
    parser.add_argument("--pgbench-scale", type=int, default=10, metavar="SCALE")
    parser.add_argument("--pgbench-wallets", type=int, default=10_000, metavar="N")
    parser.add_argument("--orders-seconds", type=int, default=30, metavar="S", help="per pass")
    parser.add_argument(
        "--orders-concurrency", type=_levels, default=(1, 4, 16, 64), metavar="C,C,..."
    )
    # As many users as the shared lean ceiling draws from: at ~4,000 orders/s each then places
    # ~25 orders a minute, within the production rate rule (orders_per_minute_max, 60), so
    # its count of the user's last minute reads what it would in production. With 200 users
    # each placed ~700 a minute, a load production refuses.
    parser.add_argument("--orders-users", type=int, default=10_000, metavar="N")
    parser.add_argument(
        "--orders-history-users",
        type=int,
        default=1_000_000,
        metavar="N",
        help="past users loaded with --orders-history-orders",
    )
    parser.add_argument(
        "--orders-history-orders",
        type=int,
        default=0,
        metavar="N",
        help="past orders loaded before the run (0: a fresh database)",
    )
    parser.add_argument("--orders-warmup-seconds", type=float, default=2.0, metavar="S")
    parser.add_argument("--orders-pool-size", type=int, default=20, metavar="N")
    parser.add_argument(
        "--orders-api-workers", type=int, default=1, metavar="N", help="uvicorn worker processes"
    )
    parser.add_argument(
        "--orders-no-half-peak", action="store_true", help="skip the pass at half of peak"
    )
    parser.add_argument("--fix-orders", type=int, default=5_000, metavar="N", help="per mode")
    parser.add_argument("--fix-window", type=int, default=32, metavar="W", help="in flight")
    parser.add_argument("--fix-warmup-orders", type=int, default=200, metavar="N")
    parser.add_argument("--ticks-seconds", type=float, default=10.0, metavar="S", help="window")
    parser.add_argument("--ticks-warmup-seconds", type=float, default=2.0, metavar="S")
    parser.add_argument("--ticks-workers", type=_levels, default=(1, 2), metavar="N,N,...")
    # 3M ticks: with 1M, two workers' window was ~5 s, too short to leave the fetch warm-up and
    # the tail (one worker done with its partitions before the other) out of the figure.
    parser.add_argument("--streams-ticks", type=int, default=3_000_000, metavar="N")
    parser.add_argument("--streams-ticks-workers", type=_levels, default=(1, 2), metavar="N,N")
    parser.add_argument("--streams-ticks-rounds", type=int, default=3, metavar="N")
    # 60k, not 20k: the window ends at the workers' last offset commit (at most every
    # streams_commit_interval_ms), up to 1 s late, which was a quarter of a 20k run.
    parser.add_argument("--streams-fills", type=int, default=60_000, metavar="N")
    parser.add_argument(
        "--recon-sizes", type=_levels, default=(1_000_000, 10_000_000), metavar="N,N"
    )
    parser.add_argument("--sse-clients", type=int, default=10_000, metavar="N")
    parser.add_argument("--sse-client-procs", type=int, default=4, metavar="P")
    parser.add_argument("--sse-seconds", type=float, default=30.0, metavar="S")
    parser.add_argument("--sse-warmup-seconds", type=float, default=10.0, metavar="S")
    parser.add_argument("--sse-ticks-per-s", type=int, default=1_000, metavar="N")
    parser.add_argument("--sse-connects-per-s", type=int, default=500, metavar="N")
    parser.add_argument("--sse-client-batch-ms", type=int, default=0, metavar="MS")
    parser.add_argument("--candles-queries", type=int, default=2_000, metavar="N")
    parser.add_argument("--candles-days", type=int, default=365, metavar="D")
    parser.add_argument("--candles-backends-symbols", type=int, default=50, metavar="N")
    parser.add_argument("--candles-backends-days", type=int, default=365, metavar="D")
    parser.add_argument(
        "--candles-backends-queries", type=int, default=200, metavar="N", help="per query"
    )
    parser.add_argument(
        "--candles-backends-budget-seconds",
        type=int,
        default=60,
        metavar="S",
        help="a query slower than S / N runs for S seconds instead of N times",
    )
    parser.add_argument(
        "--no-write-docs", action="store_true", help=f"do not append to {DOCS_PATH.name}"
    )
    return parser


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,4,16,64, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be positive: {text!r}")
    return levels


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


def _orders_plan(args: argparse.Namespace) -> orders_api.OrdersPlan:
    return orders_api.OrdersPlan(
        concurrency_levels=args.orders_concurrency,
        duration_s=args.orders_seconds,
        users=args.orders_users,
        warmup_s=args.orders_warmup_seconds,
        pool_size_max=args.orders_pool_size,
        half_peak_pass=not args.orders_no_half_peak,
        api_workers=args.orders_api_workers,
        history=History(args.orders_history_users, args.orders_history_orders)
        if args.orders_history_orders
        else None,
    )


def measure_orders(settings: Settings, args: argparse.Namespace) -> list[Row]:
    """The orders benchmark's rows: per level the pgbench ceiling and the API beside it."""
    plan = _orders_plan(args)
    server_log = settings.state_dir / "bench" / "orders-api.log"
    server_log.parent.mkdir(parents=True, exist_ok=True)
    log.info("orders benchmark; the API server logs to %s", server_log)
    return orders_api.measure(settings, host_info(settings), plan, server_log)


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table of the ceilings: figure, unit, conditions, secondary figures."""
    lines = [f"host: {rows[0].result.host.describe()}"] if rows else []
    for row in rows:
        result = row.result
        ratio = "" if row.ceiling is None else f"  ratio {row.ratio:.2f} to {row.ceiling.name}"
        lines.append(f"{result.name:<18} {format_figure(result.value):>12} {result.unit}{ratio}")
        lines.append(f"{'':<18} conditions: {format_conditions(result.conditions)}")
        if result.details:
            lines.append(f"{'':<18} measured:   {format_conditions(result.details)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure the ceilings, print them, and record them as JSON and in docs/BENCHMARKS.md."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(levelname)s %(message)s")
    settings = get_settings()
    write_docs = not args.no_write_docs
    try:
        check_stack(
            settings,
            postgres=args.only not in ("kafka", "fix", "ticks", "recon", "candles-backends"),
            kafka=args.only in (None, "kafka", "ticks", "streams-ticks", "streams-fills", "sse"),
        )
        if args.only in (None, "pgbench", "kafka"):
            _record(measure(settings, args), "ceilings", write_docs=write_docs)
        if args.only in (None, "orders"):
            orders = measure_orders(settings, args)
            _record(orders, "orders", write_docs=write_docs, goals=orders_api.goals(orders))
        if args.only in (None, "orders-front"):
            log_dir = settings.state_dir / "bench"
            rows = orders_front.measure(settings, host_info(settings), _orders_plan(args), log_dir)
            _record(rows, "orders-front", write_docs=write_docs, goals=orders_front.goals(rows))
        if args.only in (None, "fix", "ticks"):
            _fix_and_ticks(settings, args, write_docs=write_docs)
        if args.only in (None, "streams-ticks"):
            load = streams_ticks.TicksLoad(
                args.streams_ticks,
                workers=args.streams_ticks_workers,
                rounds=args.streams_ticks_rounds,
            )
            rows = streams_ticks.measure(settings, host_info(settings), load)
            _record(rows, "streams-ticks", write_docs=write_docs, goals=streams_ticks.goals(rows))
        if args.only in (None, "streams-fills"):
            fills = streams_fills.measure(
                settings, host_info(settings), streams_fills.FillsLoad(args.streams_fills)
            )
            _record(fills, "streams-fills", write_docs=write_docs, goals=streams_fills.goals(fills))
        if args.only in (None, "recon"):
            rows = recon.measure(recon.ReconLoad(args.recon_sizes), settings.state_dir)
            _record(rows, "recon", write_docs=write_docs, goals=recon.goals(rows))
        if args.only in (None, "sse", "candles-query"):
            _client_feeds(settings, args, write_docs=write_docs)
        if args.only in (None, "candles-backends"):
            plan = candles_backends.BackendsPlan(
                symbols=args.candles_backends_symbols,
                days=args.candles_backends_days,
                queries=args.candles_backends_queries,
                query_budget_s=args.candles_backends_budget_seconds,
            )
            rows = candles_backends.measure(settings, plan)
            _record(
                rows, "candles-backends", write_docs=write_docs, goals=candles_backends.goals(rows)
            )
    except StackNotRunningError as exc:
        sys.stderr.write(f"the development stack is not running: {exc}\n")
        return 2
    except BenchError as exc:
        log.error("%s", exc)
        return 1
    return 0


def _fix_and_ticks(settings: Settings, args: argparse.Namespace, *, write_docs: bool) -> None:
    """FIX round trips beside a TCP echo; the simulator's ticks/s beside a raw producer."""
    host = host_info(settings)
    if args.only in (None, "fix"):
        load = fix_roundtrip.FixLoad(args.fix_orders, args.fix_window, args.fix_warmup_orders)
        _record(fix_roundtrip.measure(settings, host, load), "fix", write_docs=write_docs)
    if args.only in (None, "ticks"):
        ticks_load = sim_ticks.TickLoad(
            args.ticks_workers, args.ticks_seconds, args.ticks_warmup_seconds
        )
        ticks = sim_ticks.measure(settings, host, ticks_load)
        _record(ticks, "ticks", write_docs=write_docs, goals=sim_ticks.goals(ticks))


def _client_feeds(settings: Settings, args: argparse.Namespace, *, write_docs: bool) -> None:
    """Issue 6: SSE clients per API process; candles query p99 beside pgbench."""
    host = host_info(settings)
    if args.only in (None, "sse"):
        load = sse.SseLoad(
            clients=args.sse_clients,
            client_procs=args.sse_client_procs,
            ticks_per_s=args.sse_ticks_per_s,
            seconds=args.sse_seconds,
            warmup_s=args.sse_warmup_seconds,
            connects_per_s=args.sse_connects_per_s,
            client_batch_ms=args.sse_client_batch_ms,
        )
        rows = sse.measure(settings, host, load)
        _record(rows, "sse", write_docs=write_docs, goals=sse.goals(rows, settings.conflation_ms))
    if args.only in (None, "candles-query"):
        plan = candles_query.CandlesPlan(queries=args.candles_queries, days=args.candles_days)
        rows = candles_query.measure(settings, host, plan)
        _record(rows, "candles-query", write_docs=write_docs, goals=candles_query.goals(rows))


def _record(
    rows: Sequence[Row], label: str, *, write_docs: bool, goals: Sequence[str] = ()
) -> None:
    """Print the table, write the results (and the docs), then print each goal line."""
    sys.stdout.write(render_table(rows))
    path = publish(
        rows, label=label, results_dir=RESULTS_DIR, docs_path=DOCS_PATH if write_docs else None
    )
    sys.stdout.write(f"results: {os.path.relpath(path)}\n")
    if write_docs:
        sys.stdout.write(f"appended to {os.path.relpath(DOCS_PATH)}\n")
    for line in goals:
        sys.stdout.write(f"goal: {line}\n")


if __name__ == "__main__":
    sys.exit(main())
