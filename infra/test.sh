#!/usr/bin/env bash
# Lint, type-check and run every test. The tests start (and stop) their own PostgreSQL and Kafka.
set -euo pipefail
cd "$(dirname "$0")/.."

bash infra/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/pytest "$@"
