#!/usr/bin/env bash
# Start the whole system in the foreground: infrastructure, then every service under honcho,
# each log line prefixed with its service's name. Ctrl-C stops everything, infrastructure too.
set -euo pipefail
cd "$(dirname "$0")/.."

bash infra/setup.sh
trap '.venv/bin/python -m infra stop' EXIT
.venv/bin/python -m infra start
.venv/bin/python -m infra urls
.venv/bin/honcho start -f Procfile
