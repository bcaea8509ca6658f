"""Command line: ``python -m infra start|stop|status|urls|logs|fetch|migrate|topics``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from core.settings import get_settings
from infra import kafka_node, migrate, postgres, redis_node, stack, topics
from infra.procs import InfraError


def main(argv: list[str] | None = None) -> int:
    """Run one infrastructure command; exit non-zero with the reason when it fails."""
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument(
        "command",
        choices=["start", "stop", "status", "urls", "logs", "fetch", "migrate", "topics"],
        help="start/stop/status the whole stack; print where each service listens; follow a "
        "service's log; fetch the Kafka jars; migrate the database; create the topics",
    )
    parser.add_argument(
        "service", nargs="?", choices=["postgres", "kafka", "redis"], help="for logs"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s infra %(levelname)s %(message)s")
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    log = logging.getLogger("infra")
    settings = get_settings()
    try:
        match args.command:
            case "start":
                stack.start(settings)
                for line in stack.status(settings):
                    log.info(line)
            case "stop":
                stack.stop(settings)
                log.info("stopped")
            case "status":
                lines = stack.status(settings)
                sys.stdout.write("\n".join(lines) + "\n")
                return 0 if all("ready" in line for line in lines) else 3
            case "urls":
                sys.stdout.write("\n".join(stack.urls(settings)) + "\n")
            case "logs":
                path = {
                    "postgres": postgres.log_file,
                    "kafka": kafka_node.log_file,
                    "redis": redis_node.log_file,
                }[args.service or "kafka"](settings)
                os.execvp("tail", ["tail", "-n", "5", "-F", str(path)])  # noqa: S606
            case "fetch":
                log.info("kafka jars in %s", kafka_node.fetch(settings))
            case "migrate":
                log.info("%d migrations applied", migrate.apply_migrations(settings.pg_dsn))
            case "topics":
                log.info("created: %s", topics.ensure_topics(settings) or "none (all exist)")
    except InfraError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
