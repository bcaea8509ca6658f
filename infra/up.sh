#!/usr/bin/env bash
# Start the whole system: PostgreSQL and Kafka, then every service under supervisord (which
# restarts any that dies), then follow every service's log in the foreground, each line
# prefixed with its service's name. Ctrl-C stops everything, infrastructure too.
set -euo pipefail
cd "$(dirname "$0")/.."

bash infra/setup.sh
# The demo's settings (the market always open); real environment variables win.
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  [[ -v "$key" ]] || export "$key=$value"
done < .env
trap '.venv/bin/python -m infra stop' EXIT
trap 'exit 130' INT TERM
.venv/bin/python -m infra up
.venv/bin/python -m infra urls
echo "status: make status (each service's pid, uptime, restarts); stop: Ctrl-C"
.venv/bin/python -m infra follow
