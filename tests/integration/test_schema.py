"""The schema migrations: they apply, re-apply as a no-op, and the ledger refuses bad money."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors

from core import ledger
from core.contracts.orders import ORDER_UPDATES_TOPIC
from core.ids import time_ordered_id
from core.market_profile import PROFILES
from infra import migrate, timescaledb
from streams.outbox_relay import SELECT_DUE

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[tuple[object, ...]]

EXPECTED_TABLES = {
    "users",
    "user_totp",
    "api_keys",
    "kyc_records",
    "ledger_accounts",
    "journal_txns",
    "journal_entries",
    "wallets",
    "instruments",
    "orders",
    "executions",
    "holdings",
    "idempotency_keys",
    "outbox",
    "sent_orders",
    "candles",
    "reconciliation_runs",
    "reconciliation_breaks",
    "reconciliation_heal_audit",
}


def _tables(conn: Conn) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    return {str(row[0]) for row in rows}


def _new_user(conn: Conn, email: str = "ann@example.com") -> int:
    row = conn.execute(
        "INSERT INTO users (email, password_hash) VALUES (%s, 'hash') RETURNING id", (email,)
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _user_account(conn: Conn, user_id: int, kind: str, currency: str = "USD") -> int:
    row = conn.execute(
        "INSERT INTO ledger_accounts (user_id, kind, currency) VALUES (%s, %s, %s) RETURNING id",
        (user_id, kind, currency),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _system_account(conn: Conn, kind: str) -> int:
    row = conn.execute(
        "SELECT id FROM ledger_accounts WHERE user_id IS NULL AND kind = %s AND currency = 'USD'",
        (kind,),
    ).fetchone()
    assert row is not None, f"system account {kind} is not seeded"
    return int(str(row[0]))


def _post(
    conn: Conn,
    entries: list[tuple[int, Decimal]],
    kind: str = "DEPOSIT",
) -> uuid.UUID:
    """Insert one journal transaction and its entries, without committing."""
    txn_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO journal_txns (id, kind, external_ref) VALUES (%s, %s, %s)",
        (txn_id, kind, f"ref-{txn_id}"),
    )
    _add_entries(conn, txn_id, entries)
    return txn_id


def _add_entries(conn: Conn, txn_id: uuid.UUID, entries: list[tuple[int, Decimal]]) -> None:
    """Insert a journal transaction's entries in one statement (checked per statement)."""
    if entries:
        conn.execute(
            "INSERT INTO journal_entries (txn_id, account_id, amount)"
            " SELECT %s, account_id, amount FROM unnest(%s::bigint[], %s::numeric[])"
            " AS e(account_id, amount)",
            (txn_id, [a for a, _ in entries], [m for _, m in entries]),
        )


def _count(conn: Conn, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn) as connection:
        yield connection


@pytest.fixture
def deposit_accounts(conn: Conn) -> tuple[int, int]:
    """A user's CASH_AVAILABLE account and the payment gateway clearing account, committed."""
    user_id = _new_user(conn)
    available = _user_account(conn, user_id, "CASH_AVAILABLE")
    gateway = _system_account(conn, "PAYMENT_GATEWAY_CLEARING")
    conn.commit()
    return available, gateway


def test_migrations_apply_to_an_empty_database_then_reapply_as_a_no_op(empty_db_dsn: str) -> None:
    migration_files = sorted(migrate.MIGRATIONS_DIR.glob("*.sql"))

    assert migrate.apply_migrations(empty_db_dsn) == len(migration_files) > 0
    assert migrate.apply_migrations(empty_db_dsn) == 0

    with psycopg.connect(empty_db_dsn) as conn:
        assert _tables(conn) >= EXPECTED_TABLES


def test_each_migration_file_can_run_again_on_a_migrated_database(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        for path in sorted(migrate.MIGRATIONS_DIR.glob("*.sql")):
            conn.execute(path.read_text())  # several statements, no parameters
            conn.commit()
        assert _tables(conn) >= EXPECTED_TABLES
        # The seeded system accounts, once: three per market profile's currency.
        assert _count(conn, "ledger_accounts") == 3 * len(PROFILES)


def test_every_market_profiles_currency_has_its_system_accounts(conn: Conn) -> None:
    rows = conn.execute(
        "SELECT kind, currency FROM ledger_accounts WHERE user_id IS NULL ORDER BY kind, currency"
    ).fetchall()
    kinds = ("EXCHANGE_CLEARING", "FEES", "PAYMENT_GATEWAY_CLEARING")
    currencies = sorted({profile.currency for profile in PROFILES.values()})
    assert rows == [(kind, currency) for kind in kinds for currency in currencies]


def test_balanced_journal_transaction_commits(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, gateway = deposit_accounts
    txn_id = _post(conn, [(available, Decimal("100.0000")), (gateway, Decimal("-100.0000"))])
    conn.commit()

    rows = conn.execute(
        "SELECT account_id, amount FROM journal_entries WHERE txn_id = %s ORDER BY amount",
        (txn_id,),
    ).fetchall()
    assert rows == [(gateway, Decimal("-100.0000")), (available, Decimal("100.0000"))]


def test_unbalanced_journal_transaction_is_refused_at_its_insert(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, gateway = deposit_accounts
    with pytest.raises(errors.CheckViolation, match="unbalanced"):
        _post(conn, [(available, Decimal("100.0000")), (gateway, Decimal("-99.9999"))])
    conn.rollback()

    assert _count(conn, "journal_txns") == 0
    assert _count(conn, "journal_entries") == 0


def test_single_entry_journal_transaction_is_refused_at_its_insert(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, _ = deposit_accounts
    with pytest.raises(errors.CheckViolation, match="has 1 entries; at least 2"):
        _post(conn, [(available, Decimal("5"))])
    conn.rollback()

    assert _count(conn, "journal_entries") == 0


def test_journal_transaction_without_entries_is_refused_at_commit(
    conn: Conn,
) -> None:
    _post(conn, [])

    with pytest.raises(errors.CheckViolation, match="has 0 entries; at least 2"):
        conn.commit()

    assert _count(conn, "journal_txns") == 0


def test_journal_transaction_balanced_only_across_currencies_is_refused(
    conn: Conn,
) -> None:
    user_id = _new_user(conn)
    usd = _user_account(conn, user_id, "CASH_AVAILABLE", "USD")
    eur = _user_account(conn, user_id, "CASH_AVAILABLE", "EUR")
    conn.commit()
    with pytest.raises(errors.CheckViolation, match="unbalanced"):
        _post(conn, [(usd, Decimal("10")), (eur, Decimal("-10"))], kind="ADJUSTMENT")


def test_a_later_statement_that_unbalances_a_transaction_is_refused(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, gateway = deposit_accounts
    fees = _system_account(conn, "FEES")
    txn_id = _post(conn, [(available, Decimal("100")), (gateway, Decimal("-100"))])
    # The check counts every entry of the transaction, not only the statement's own rows.
    unbalanced = f"{txn_id} is unbalanced: USD entries sum to 1"
    with pytest.raises(errors.CheckViolation, match=unbalanced):
        _add_entries(conn, txn_id, [(fees, Decimal("1"))])
    conn.rollback()
    assert _count(conn, "journal_entries") == 0


def test_a_committed_transaction_cannot_be_unbalanced_later(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, gateway = deposit_accounts
    txn_id = _post(conn, [(available, Decimal("100")), (gateway, Decimal("-100"))])
    conn.commit()
    # Its commit-time check ran already; the statement check still guards it.
    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(errors.CheckViolation, match="unbalanced"):
        _add_entries(conn, txn_id, [(available, Decimal("-5"))])
    conn.rollback()
    assert _count(conn, "journal_entries") == 2


def test_entries_written_one_by_one_are_refused_at_the_first_unbalanced_statement(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, _ = deposit_accounts
    # Every writer inserts a transaction's entries in one statement; a balance checked per
    # statement is what keeps the check to one index lookup per journal transaction.
    txn_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO journal_txns (id, kind, external_ref) VALUES (%s, 'DEPOSIT', %s)",
        (txn_id, f"ref-{txn_id}"),
    )
    with pytest.raises(errors.CheckViolation, match="has 1 entries"):
        _add_entries(conn, txn_id, [(available, Decimal("100"))])
    conn.rollback()
    assert _count(conn, "journal_entries") == 0


def test_entries_of_many_transactions_in_one_statement_are_checked_each(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, gateway = deposit_accounts
    good, bad = uuid.uuid4(), uuid.uuid4()
    for txn_id in (good, bad):
        conn.execute(
            "INSERT INTO journal_txns (id, kind, external_ref) VALUES (%s, 'DEPOSIT', %s)",
            (txn_id, f"ref-{txn_id}"),
        )
    with pytest.raises(errors.CheckViolation, match=f"{bad} is unbalanced: USD entries sum to 1"):
        conn.execute(
            "INSERT INTO journal_entries (txn_id, account_id, amount)"
            " VALUES (%s, %s, 10), (%s, %s, -10), (%s, %s, 3), (%s, %s, -2)",
            (good, available, good, gateway, bad, available, bad, gateway),
        )
    conn.rollback()
    assert _count(conn, "journal_entries") == 0


def test_the_balance_check_reads_the_statement_rows_not_the_journal(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, gateway = deposit_accounts
    _post(conn, [(available, Decimal("100")), (gateway, Decimal("-100"))])
    # A journal lookup per statement would have a plan that depends on journal_entries'
    # statistics, cached for the session: quadratic when planned before the first ANALYZE.
    scans = conn.execute(
        "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables"
        " WHERE relname = 'journal_entries'"
    ).fetchone()
    assert scans == (0, 0)


def test_entries_of_a_journal_transaction_that_does_not_exist_are_refused(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, gateway = deposit_accounts
    missing = uuid.uuid4()
    with pytest.raises(errors.ForeignKeyViolation, match=f"{missing}, which does not exist"):
        _add_entries(conn, missing, [(available, Decimal("1")), (gateway, Decimal("-1"))])
    conn.rollback()
    assert _count(conn, "journal_entries") == 0


def test_entries_naming_a_ledger_account_that_does_not_exist_are_refused(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    available, _ = deposit_accounts
    missing = 1 << 62
    with pytest.raises(errors.ForeignKeyViolation, match=f"account {missing}, which does not"):
        _post(conn, [(available, Decimal("1")), (missing, Decimal("-1"))])
    conn.rollback()
    assert _count(conn, "journal_entries") == 0


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM ledger_accounts WHERE id = %s",
        "UPDATE ledger_accounts SET currency = 'EUR' WHERE id = %s",
        "UPDATE ledger_accounts SET kind = 'CASH_LOCKED' WHERE id = %s",
    ],
)
def test_a_ledger_account_cannot_be_removed_or_become_another(
    conn: Conn, deposit_accounts: tuple[int, int], statement: str
) -> None:
    available, gateway = deposit_accounts
    _post(conn, [(available, Decimal("1")), (gateway, Decimal("-1"))])
    conn.commit()
    with pytest.raises(errors.RestrictViolation, match="ledger_accounts is append-only"):
        conn.execute(statement, (available,))
    conn.rollback()


def test_posting_finds_each_account_through_an_index_not_a_scan(conn: Conn) -> None:
    # Sequential scans priced out: a plan that still reads ledger_accounts in full has no
    # index that serves the join (it did, once, at ~110 ms per posting with 400k users).
    # settle_apply (0019) joins on the same equality.
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(
        str(row[0])
        for row in conn.execute(
            f"EXPLAIN {ledger.INSERT_ENTRIES}",
            (uuid.uuid4(), [1, None], ["CASH_AVAILABLE", "FEES"], [Decimal(1), Decimal(-1)], "USD"),
        ).fetchall()
    )
    conn.rollback()
    assert "ledger_accounts_kind_currency_owner_key" in plan
    assert "Seq Scan on ledger_accounts" not in plan


def test_the_statement_check_looks_up_accounts_and_transactions_by_key_not_by_scan(
    conn: Conn, deposit_accounts: tuple[int, int]
) -> None:
    # A few hundred accounts (the orders benchmark's 200 users), where a join planned without
    # knowing the statement's size read them all, and more transactions than one page holds.
    # Never committed: the transactions have no entries, which the commit would refuse.
    conn.execute(
        "WITH u AS (INSERT INTO users (email, password_hash)"
        " SELECT 'plan-' || g || '@example.com', 'x' FROM generate_series(1, 200) g RETURNING id)"
        " INSERT INTO ledger_accounts (user_id, kind, currency)"
        " SELECT id, k, 'USD' FROM u, unnest(ARRAY['CASH_AVAILABLE', 'CASH_LOCKED']) k"
    )
    conn.execute(
        "INSERT INTO journal_txns (kind, reference)"
        " SELECT 'ADJUSTMENT', 'plan-' || g FROM generate_series(1, 10000) g"
    )
    conn.execute("ANALYZE ledger_accounts")
    conn.execute("ANALYZE journal_txns")
    # auto_explain shows the plans of the statements the trigger runs, sent to this client.
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(str(diag.message_primary)))
    conn.execute("LOAD 'auto_explain'")
    for setting, value in (
        ("log_min_duration", "0"),
        ("log_nested_statements", "on"),
        ("log_level", "notice"),
    ):
        conn.execute(f"SET auto_explain.{setting} = {value}")
    available, gateway = deposit_accounts
    _post(conn, [(available, Decimal("1.0000")), (gateway, Decimal("-1.0000"))])
    conn.rollback()
    plans = "\n".join(notices)
    assert "new_entries" in plans, "auto_explain showed no plan of the trigger's queries"
    assert "Seq Scan on ledger_accounts" not in plans
    assert "Seq Scan on journal_txns" not in plans


def test_zero_amount_entry_is_refused(conn: Conn, deposit_accounts: tuple[int, int]) -> None:
    available, gateway = deposit_accounts
    with pytest.raises(errors.CheckViolation, match="journal_entries_amount_nonzero"):
        _post(conn, [(available, Decimal("0")), (gateway, Decimal("0"))])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET amount = amount * 2",
        "DELETE FROM journal_entries",
        "UPDATE journal_txns SET reference = 'rewritten'",
        "DELETE FROM journal_txns",
        "TRUNCATE journal_entries",
    ],
)
def test_journal_is_append_only(
    conn: Conn,
    deposit_accounts: tuple[int, int],
    statement: str,
) -> None:
    available, gateway = deposit_accounts
    _post(conn, [(available, Decimal("100")), (gateway, Decimal("-100"))])
    conn.commit()

    with pytest.raises(errors.RestrictViolation, match="append-only"):
        conn.execute(statement)
    conn.rollback()

    assert _count(conn, "journal_entries") == 2


def test_gateway_webhook_reference_credits_at_most_once(
    conn: Conn,
) -> None:
    conn.execute("INSERT INTO journal_txns (kind, external_ref) VALUES ('DEPOSIT', 'pay-1')")
    with pytest.raises(errors.UniqueViolation):
        conn.execute("INSERT INTO journal_txns (kind, external_ref) VALUES ('DEPOSIT', 'pay-1')")


def test_wallet_cannot_go_negative(conn: Conn) -> None:
    user_id = _new_user(conn)
    conn.execute("INSERT INTO wallets (user_id) VALUES (%s)", (user_id,))
    with pytest.raises(errors.CheckViolation, match="wallets_balance_nonnegative"):
        conn.execute("UPDATE wallets SET balance = -0.0001 WHERE user_id = %s", (user_id,))


def _insert_order(conn: Conn, **overrides: object) -> None:
    values: dict[str, object] = {
        "user_id": _new_user(conn, f"{uuid.uuid4().hex}@example.com"),
        "client_order_id": "c-1",
        "symbol": "ACME",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": 10,
        "price": Decimal("100"),
        "trigger_price": None,
        "status": "NEW",
    }
    values.update(overrides)
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    conn.execute(f"INSERT INTO orders ({columns}) VALUES ({placeholders})", values)


@pytest.fixture
def instrument(conn: Conn) -> str:
    conn.execute("INSERT INTO instruments (symbol, tick_size, lot_size) VALUES ('ACME', 0.01, 1)")
    conn.commit()
    return "ACME"


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"price": None}, "orders_price_matches_type"),
        ({"order_type": "MARKET"}, "orders_price_matches_type"),
        ({"order_type": "STOP_LOSS", "price": None}, "orders_trigger_price_matches_type"),
        ({"order_type": "STOP_LIMIT"}, "orders_trigger_price_matches_type"),
        ({"status": "PENDING_TRIGGER"}, "orders_pending_trigger_is_stop_unfilled"),
        ({"status": "FILLED"}, "orders_filled_means_all_filled"),
        ({"quantity": 0}, "orders_quantity_check"),
        ({"price": Decimal("-1")}, "orders_price_check"),
        ({"side": "HOLD"}, "orders_side_check"),
    ],
)
def test_order_checks_refuse_inconsistent_orders(
    conn: Conn,
    instrument: str,
    overrides: dict[str, object],
    constraint: str,
) -> None:
    with pytest.raises(errors.CheckViolation, match=constraint):
        _insert_order(conn, **overrides)


def test_valid_stop_limit_order_pending_trigger_is_accepted(conn: Conn, instrument: str) -> None:
    _insert_order(
        conn, order_type="STOP_LIMIT", trigger_price=Decimal("95"), status="PENDING_TRIGGER"
    )
    conn.commit()
    assert _count(conn, "orders") == 1


def test_client_order_id_is_unique_per_user(conn: Conn, instrument: str) -> None:
    user_id = _new_user(conn)
    _insert_order(conn, user_id=user_id)
    with pytest.raises(errors.UniqueViolation, match="orders_client_order_id_key"):
        _insert_order(conn, user_id=user_id)


def test_execution_must_match_its_order_symbol_and_side(conn: Conn, instrument: str) -> None:
    _insert_order(conn)
    with pytest.raises(errors.ForeignKeyViolation, match="executions_order_fkey"):
        conn.execute(
            "INSERT INTO executions (exec_id, order_id, symbol, side, last_qty, last_px,"
            " executed_at) SELECT 'E-1', id, symbol, 'SELL', 1, 100, now() FROM orders"
        )


@pytest.mark.both_backends
def test_candles_primary_key_is_symbol_width_and_bucket_start(
    conn: Conn,
) -> None:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = 'candles'::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey, a.attnum)"
    ).fetchall()
    assert [row[0] for row in rows] == ["symbol", "bucket_width", "bucket_start"]


@pytest.mark.both_backends
def test_candles_is_a_hypertable_on_timescaledb_and_a_plain_table_without(
    conn: Conn, pg_backend: str
) -> None:
    on_timescaledb = pg_backend == "timescaledb"
    extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    # The release setup builds (infra/timescaledb.py), or none at all.
    assert extension.fetchall() == ([(timescaledb.VERSION,)] if on_timescaledb else [])
    if on_timescaledb:
        hypertable = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'candles'"
        )
        assert hypertable.fetchone() == (1,)
    relkind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'candles'::regclass")
    assert relkind.fetchone() == ("r",)
    conn.execute(
        "INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close, volume,"
        " trade_count) VALUES ('ACME', '1 minute', '2024-01-02 14:30Z', 10, 12, 9, 11, 500, 7)"
    )
    with pytest.raises(errors.UniqueViolation):
        conn.execute(
            "INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close)"
            " VALUES ('ACME', '1 minute', '2024-01-02 14:30Z', 10, 12, 9, 11)"
        )


@pytest.mark.both_backends
def test_candle_high_below_low_is_refused(conn: Conn) -> None:
    with pytest.raises(errors.CheckViolation, match="candles_high_low_bound_prices"):
        conn.execute(
            "INSERT INTO candles (symbol, bucket_width, bucket_start, open, high, low, close)"
            " VALUES ('ACME', '1 minute', now(), 10, 9, 11, 10)"
        )


def test_the_relay_finds_due_rows_by_the_pending_index_not_by_reading_the_published_ones(
    conn: Conn,
) -> None:
    conn.execute(
        "INSERT INTO outbox (topic, key, payload, published_at)"
        " SELECT 't', int8send(g), '\\x00', now() FROM generate_series(1, 20000) AS g"
    )
    conn.execute("INSERT INTO outbox (topic, key, payload) VALUES ('t', '\\x01', '\\x00')")
    conn.commit()
    conn.execute("ANALYZE outbox")

    plan = conn.execute("EXPLAIN (FORMAT JSON) " + SELECT_DUE.replace("%s", "100")).fetchone()
    assert plan is not None
    text = json.dumps(plan[0])

    assert "outbox_pending_txid_idx" in text, text
    assert "Seq Scan" not in text, text


def test_the_order_update_triggers_write_to_the_topic_the_order_feed_reads(conn: Conn) -> None:
    rows = conn.execute(
        "SELECT tgname, encode(tgargs, 'escape') FROM pg_trigger"
        " WHERE tgrelid = 'orders'::regclass AND tgfoid = 'orders_enqueue_update'::regproc"
        " ORDER BY tgname"
    ).fetchall()
    # tgargs ends each argument with a NUL byte, shown as \000 by the escape encoding.
    assert rows == [
        ("orders_update_insert", ORDER_UPDATES_TOPIC + "\\000"),
        ("orders_update_update", ORDER_UPDATES_TOPIC + "\\000"),
    ]


def test_sql_and_python_make_version_7_ids_that_sort_by_time(conn: Conn) -> None:
    def sql_id() -> uuid.UUID:
        row = conn.execute("SELECT uuid_v7()").fetchone()
        assert row is not None and isinstance(row[0], uuid.UUID)
        return row[0]

    made = []
    for make in (sql_id, time_ordered_id, sql_id, time_ordered_id):
        made.append(make())
        time.sleep(0.002)  # a new millisecond, so each id sorts after the one before
    assert [i.version for i in made] == [7, 7, 7, 7]
    assert made == sorted(made)
    # The first 48 bits are the Unix time in milliseconds.
    now_ms = time.time() * 1000
    assert all(now_ms - 5000 < (i.int >> 80) <= now_ms for i in made)
    default = conn.execute(
        "SELECT column_default FROM information_schema.columns"
        " WHERE table_name = 'journal_txns' AND column_name = 'id'"
    ).fetchone()
    assert default == ("uuid_v7()",)
