"""Command line: ``python -m infra COMMAND`` (``--help`` lists them)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from core.settings import Settings, get_settings
from infra import (
    close_day,
    demo,
    front,
    kafka_node,
    migrate,
    postgres,
    services,
    stack,
    supervise,
    timescaledb,
    tls,
    topics,
)
from infra.procs import InfraError

COMMANDS = {
    "up": "PostgreSQL and Kafka, then every service (Redis too) supervised, until the front serves",
    "start": "start Redis, PostgreSQL and Kafka in the background (a second start is harmless)",
    "supervise": "start every service under supervisord and wait until the front serves",
    "stop": "stop every service, then PostgreSQL and Kafka",
    "status": "each server and service: state, pid, uptime, restarts (exit 3 if one is down)",
    "urls": "print where each service listens",
    "logs": "follow one service's log (a name from status, postgres, kafka, redis, etcd)",
    "follow": "follow every service's log, each line prefixed with its service",
    "front-config": "write the front's haproxy.cfg and (unless configured) its certificate",
    "fetch": "fetch the Kafka jars",
    "timescaledb": "install the pinned TimescaleDB release for PostgreSQL unless present",
    "migrate": "create the database if missing and migrate it",
    "topics": "create the topics",
    "close-day": "close the exchange simulator's trading day now and wait for its trade report",
    "demo": "make (or find) the demo trader of the running system and print how to log in",
    "totp": "print the current 2FA code of a TOTP secret (default: the demo trader's)",
}


def main(argv: list[str] | None = None) -> int:
    """Run one infrastructure command; exit non-zero with the reason when it fails."""
    parser = argparse.ArgumentParser(
        prog="python -m infra",
        description="\n".join(f"{k:<10} {v}" for k, v in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("service", nargs="?", help="for logs: which service; for totp: the secret")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s infra %(levelname)s %(message)s")
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log = logging.getLogger("infra")
    settings = get_settings()
    try:
        return _run(args.command, args.service, settings, log)
    except InfraError as exc:
        log.error("%s", exc)
        return 1


def _run(command: str, service: str | None, settings: Settings, log: logging.Logger) -> int:
    match command:
        case "start":
            stack.start(settings)
            for line in stack.status(settings):
                log.info(line)
        case "up":
            services.up(settings)
        case "supervise":
            services.start(settings)
        case "stop":
            supervise.stop(settings)
            stack.stop(settings)
            log.info("stopped")
        case "status":
            lines = services.status_lines(settings)
            sys.stdout.write("\n".join(lines) + "\n")
            return 0 if services.all_up(lines) else 3
        case "urls":
            sys.stdout.write("\n".join(stack.urls(settings)) + "\n")
        case "logs":
            path = services.log_path(settings, service or "kafka")
            os.execvp("tail", ["tail", "-n", "20", "-F", str(path)])  # noqa: S606
        case "follow":
            services.follow(settings)
        case "front-config":
            tls.ensure_certificates(settings)
            log.info("front configuration in %s", front.prepare(settings))
        case "fetch":
            log.info("kafka jars in %s", kafka_node.fetch(settings))
        case "timescaledb":
            log.info("%s", timescaledb.ensure(settings))
        case "migrate":
            # A server started by other means (Docker's Patroni) has no project database yet.
            postgres.ensure_database(settings)
            log.info("%d migrations applied", migrate.apply_migrations(settings.pg_dsn))
        case "topics":
            log.info("created: %s", topics.ensure_topics(settings) or "none (all exist)")
        case "close-day":
            log.info("trade report landed: %s", close_day.close_day(settings))
        case "demo":
            sys.stdout.write("\n".join(demo.ensure_and_describe(settings)) + "\n")
        case "totp":
            return _print_totp(settings, service)
    return 0


def _print_totp(settings: Settings, secret: str | None) -> int:
    if secret is None:
        trader = demo.load(settings)
        if trader is None:
            sys.stderr.write("no demo trader yet (make up makes one): give a secret\n")
            return 2
        secret = trader.totp_secret
    try:
        code = demo.current_code(secret)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        sys.stderr.write("not a base32 TOTP secret (the 'secret' of POST /v1/auth/2fa/enroll)\n")
        return 2
    sys.stdout.write(code + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
