"""Schema migrations: the SQL files in sql/migrations applied by yoyo-migrations."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations

from core.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "sql" / "migrations"
INVARIANTS_FILE = PROJECT_ROOT / "sql" / "invariants.sql"

_NAME_LINE = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)


def yoyo_url(dsn: str) -> str:
    """Turn a libpq connection string into the URL yoyo expects (psycopg 3 driver)."""
    parts = conninfo_to_dict(dsn)
    user = quote(str(parts.get("user", "")), safe="")
    password = parts.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    host = str(parts.get("host", "127.0.0.1"))
    port = str(parts.get("port", 5432))
    database = parts.get("dbname", "")
    if "," not in host:
        return f"postgresql+psycopg://{auth}@{host}:{port}/{database}"
    # Several hosts (the HA pair): yoyo hands query arguments to psycopg.connect as they are.
    query = {"host": host, "port": port}
    if "target_session_attrs" in parts:
        query["target_session_attrs"] = str(parts["target_session_attrs"])
    return f"postgresql+psycopg://{auth}@/{database}?{urlencode(query)}"


def apply_migrations(dsn: str, migrations_dir: Path = MIGRATIONS_DIR) -> int:
    """Apply every migration not yet applied to the database; return how many were applied."""
    backend = get_backend(yoyo_url(dsn))
    try:
        migrations = read_migrations(str(migrations_dir))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return len(pending)
    finally:
        backend.connection.close()


def load_invariants(path: Path = INVARIANTS_FILE) -> dict[str, str]:
    """The invariant queries of sql/invariants.sql, by name; each returns the violating rows."""
    text = path.read_text()
    names = list(_NAME_LINE.finditer(text))
    queries: dict[str, str] = {}
    for i, match in enumerate(names):
        end = names[i + 1].start() if i + 1 < len(names) else len(text)
        body = text[match.end() : end].strip().rstrip(";").strip()
        queries[match.group(1)] = body
    return queries
