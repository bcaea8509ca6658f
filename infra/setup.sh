#!/usr/bin/env bash
# Install what the project needs on a fresh machine; quick and harmless when all is in place.
# OS packages (PostgreSQL 15, Java 17, Maven, Redis 7) come from Debian, Python packages from the uv lock,
# Kafka's jars from Maven Central through infra/pom.xml, TimescaleDB from its release's source archive
# (BROKER_SOURCE_CACHE_DIR, else downloaded; checked against the digest in infra/timescaledb.py).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
PG_BIN=/usr/lib/postgresql/15/bin

missing=()
[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pgbench" ] || missing+=(postgresql-15 postgresql-contrib)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
# The PostgreSQL HA pair (BROKER_PG_HA): Patroni on the system's Python, etcd as its store.
[ -x /usr/bin/patroni ] || missing+=(patroni python3-etcd)
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v mvn >/dev/null || missing+=(maven)
# The public front (TLS 1.3, load balancing of the API processes).
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The API processes share their rate-limit counters in Redis (infra/redis_node.py runs it).
command -v redis-server >/dev/null || missing+=(redis-server)
# Lets the tests validate docker-compose.yml where the docker client has no compose plugin.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  missing+=(docker-compose)
fi
# The README's first session reads the API's JSON answers with jq.
command -v jq >/dev/null || missing+=(jq)
# The browser test drives Debian's Chromium (a browser download at run time is not possible).
command -v chromium >/dev/null || missing+=(chromium)
# TimescaleDB is built from source (infra/timescaledb.py): Debian has no package for PG 15.
for pkg in postgresql-server-dev-15 cmake gcc make patch libssl-dev libkrb5-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: please install these Debian packages (as root): ${missing[*]}" >&2
    exit 1
  fi
  # The project runs its own cluster; Debian's default one on port 5432 is not wanted.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3.11}
if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$PYTHON" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
export UV_PYTHON_DOWNLOADS=never
uv sync --frozen --quiet --python "$PYTHON"
.venv/bin/python -m infra fetch
# Quick when the pinned release is in place; otherwise a build of about a minute (as root).
.venv/bin/python -m infra timescaledb
