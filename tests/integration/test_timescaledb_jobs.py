"""TimescaleDB's background jobs on the project's cluster: each one runs and none fails.

Candles are written for the last four days (and an hour forty days ago), then each job is
started by TimescaleDB's own scheduler, in the order the aggregates read each other. A job
run by ``CALL run_job`` from a session never showed the failure these jobs had (it runs
inside the caller's portal), so only the scheduler proves it gone.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
import pytest

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[tuple[object, ...]]

SYMBOLS = ("ACME", "ALPHA")
WIDTHS = ("1 second", "1 minute", "5 minutes", "15 minutes", "1 hour", "1 day")
AGGREGATES = ("candles_5m", "candles_15m", "candles_1h", "candles_1d")
JOB_TIMEOUT_S = 90.0
POLL_S = 0.5

# One 1 s candle at the start of each minute, so every minute has a stored 1 m candle.
_WRITE = """
INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close, volume,
                     trade_count)
SELECT s, interval '1 second', t, p, p, p, p, 3, 1
FROM unnest(%(symbols)s::text[]) AS s,
     generate_series(date_bin('1 minute', %(lo)s, timestamptz '2000-01-01'), %(hi)s,
                     interval '1 minute') AS t,
     LATERAL (SELECT (100 + extract(minute FROM t) / 10)::numeric(18,4) AS p) AS price
"""


def _write_candles(conn: Conn, lo: datetime, hi: datetime) -> None:
    conn.execute(_WRITE, {"symbols": list(SYMBOLS), "lo": lo, "hi": hi})
    conn.execute("SELECT candles_rebuild_rollups(%s, %s)", (lo, hi))


def _answers(conn: Conn, lo: datetime, hi: datetime) -> dict[str, list[tuple[object, ...]]]:
    return {
        f"{symbol} {width}": conn.execute(
            "SELECT * FROM candles_between(%s, %s::interval, %s, %s)", (symbol, width, lo, hi)
        ).fetchall()
        for symbol in SYMBOLS
        for width in WIDTHS
    }


def _failures(conn: Conn) -> dict[object, object]:
    rows = conn.execute(
        "SELECT job_id, coalesce(total_failures, 0) FROM timescaledb_information.job_stats"
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def _job_id(conn: Conn, proc_name: str, target: str | None = None) -> int:
    query = "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s"
    params: tuple[str, ...] = (proc_name,)
    if target is not None:
        query += " AND hypertable_name = %s"  # an aggregate's policies name the view
        params += (target,)
    row = conn.execute(query, params).fetchone()
    assert row is not None, (proc_name, target)
    return int(str(row[0]))


def _run_by_scheduler(conn: Conn, job_id: int) -> None:
    """Have the scheduler start the job now and wait until that run has finished."""
    runs_before = conn.execute(
        "SELECT coalesce(total_runs, 0) FROM timescaledb_information.job_stats WHERE job_id = %s",
        (job_id,),
    ).fetchone()
    before = int(str(runs_before[0])) if runs_before else 0
    conn.execute("SELECT alter_job(%s, next_start => now())", (job_id,))
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT total_runs, job_status FROM timescaledb_information.job_stats"
            " WHERE job_id = %s",
            (job_id,),
        ).fetchone()
        if row is not None and int(str(row[0])) > before and row[1] != "Running":
            return
        time.sleep(POLL_S)
    state = conn.execute(
        "SELECT job_status, last_run_status, total_runs, last_run_started_at::text"
        " FROM timescaledb_information.job_stats WHERE job_id = %s",
        (job_id,),
    ).fetchall()
    pytest.fail(f"job {job_id} did not run within {JOB_TIMEOUT_S} s: {state}")


def test_every_job_runs_by_the_scheduler_and_the_aggregates_materialize(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        # A database copied from a template gets its scheduler once asked.
        conn.execute("SELECT _timescaledb_functions.start_background_workers()")
        now = conn.execute("SELECT date_trunc('minute', now()), now()").fetchone()
        assert now is not None
        end, started = now
        assert isinstance(end, datetime)
        # The template's scheduler ran (and was stopped) while it was migrated; its records
        # come with the copy, so count from here.
        failures_before = _failures(conn)
        _write_candles(conn, end - timedelta(days=4), end - timedelta(minutes=1))
        old = end - timedelta(days=40)
        _write_candles(conn, old, old + timedelta(hours=1))
        span = (end - timedelta(days=41), end + timedelta(days=1))
        real_time = _answers(conn, *span)

        refresh = {
            name: _job_id(conn, "policy_refresh_continuous_aggregate", name) for name in AGGREGATES
        }
        # The candles above arrived at once, not over forty days as ticks would: let each
        # level look back over all of them, as its refreshes would have while they arrived.
        # (A backfill older than a level's window is refreshed by hand: docs/ANALYSTS.md.)
        conn.execute(
            "SELECT alter_job(job_id, config => jsonb_set(config, '{start_offset}', '\"45 days\"'))"
            " FROM timescaledb_information.jobs WHERE job_id = ANY(%s)",
            ([refresh[name] for name in AGGREGATES[:-1]],),
        )
        jobs = [refresh[name] for name in AGGREGATES]
        for job_id in jobs:
            _run_by_scheduler(conn, job_id)
        # Before retention drops the old 1 s candles.
        after = _answers(conn, *span)
        jobs.append(_job_id(conn, "policy_compression"))
        jobs.append(_job_id(conn, "candles_drop_second_rows"))
        jobs += [
            int(str(r[0]))
            for r in conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs"
                " WHERE proc_name IN ('policy_retention', 'policy_job_stat_history_retention')"
            ).fetchall()
        ]
        for job_id in jobs[len(AGGREGATES) :]:
            _run_by_scheduler(conn, job_id)

        # A job whose schedule came round again may be running now: its last status is then
        # empty, and its success since the start is what counts.
        stats = conn.execute(
            "SELECT j.job_id, j.proc_name,"
            " CASE WHEN s.job_status = 'Running' THEN 'Running' ELSE s.last_run_status END,"
            " s.last_successful_finish > %s"
            " FROM timescaledb_information.jobs AS j"
            " LEFT JOIN timescaledb_information.job_stats AS s USING (job_id)"
            " WHERE j.proc_name <> 'policy_telemetry' ORDER BY j.job_id",
            (started,),
        ).fetchall()
        failures_after = _failures(conn)
        failed = conn.execute(
            "SELECT job_id, err_message FROM timescaledb_information.job_history"
            " WHERE NOT succeeded AND start_time >= %s",
            (started,),
        ).fetchall()
        telemetry = conn.execute(
            "SELECT coalesce(s.total_runs, 0) FROM timescaledb_information.jobs AS j"
            " LEFT JOIN timescaledb_information.job_stats AS s USING (job_id)"
            " WHERE j.proc_name = 'policy_telemetry'"
        ).fetchall()
        materialized = {
            name: conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
            for name, schema, table in conn.execute(
                "SELECT view_name, materialization_hypertable_schema,"
                " materialization_hypertable_name"
                " FROM timescaledb_information.continuous_aggregates"
            ).fetchall()
        }
        old_rows = conn.execute(
            "SELECT bucket_width, count(*) FROM candles WHERE bucket_start < %s"
            " GROUP BY bucket_width ORDER BY bucket_width",
            (old + timedelta(days=1),),
        ).fetchall()
        compressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'candles' AND is_compressed AND range_end <= %s",
            (old + timedelta(days=7),),
        ).fetchone()
    assert failed == []
    assert len(stats) == len(jobs) == 10
    assert all(s[2] in ("Success", "Running") and s[3] is True for s in stats), stats
    assert failures_after == failures_before
    # Off by infra/postgres.py (timescaledb.telemetry_level): never started.
    assert telemetry == [(0,)]
    assert failed == []
    assert set(materialized) == set(AGGREGATES)
    assert all(count is not None and int(str(count[0])) > 0 for count in materialized.values()), (
        materialized
    )
    # Materialized or rolled up at query time, the same candles.
    assert after == real_time
    # The 1 s candles of forty days ago are gone, their 1 m and 1 d candles kept, compressed.
    assert [(str(width), count) for width, count in old_rows] == [
        ("0:01:00", 2 * 61),
        ("1 day, 0:00:00", 2),
    ]
    assert compressed == (1,)
