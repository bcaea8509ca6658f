"""The invariant queries of sql/invariants.sql: silent on consistent books, loud on broken ones.

Each test builds the same small, consistent set of books (a deposit, a buy reserved, filled and
released, a sell filled), then breaks one invariant with ordinary SQL: where the schema itself
forbids the damage, the test first drops the constraint or disables the trigger in its own
throwaway database, as a bug or a careless migration might.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import psycopg
import pytest

from infra import migrate

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[tuple[object, ...]]

INVARIANT_NAMES = {
    "journal_txn_sums_to_zero",
    "wallet_matches_ledger",
    "no_negative_balances",
    "holding_matches_fills",
    "fill_settled_once",
}

SYMBOL = "ACME"


@dataclass(frozen=True)
class Books:
    """Ids of the consistent dataset, for tests that damage a chosen part of it."""

    user_id: int
    available_account: int
    locked_account: int
    deposit_txn: uuid.UUID
    buy_order: uuid.UUID
    sell_order: uuid.UUID


def _one(conn: Conn, query: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _system_account(conn: Conn, kind: str) -> int:
    query = (
        "SELECT id FROM ledger_accounts WHERE user_id IS NULL AND kind = %s AND currency = 'USD'"
    )
    return int(str(_one(conn, query, (kind,))))


def _post(
    conn: Conn,
    kind: str,
    entries: list[tuple[int, Decimal]],
    *,
    order_id: uuid.UUID | None = None,
    exec_id: str | None = None,
    external_ref: str | None = None,
) -> uuid.UUID:
    """Insert one journal transaction with its entries; the caller commits."""
    txn_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO journal_txns (id, kind, order_id, exec_id, external_ref)"
        " VALUES (%s, %s, %s, %s, %s)",
        (txn_id, kind, order_id, exec_id, external_ref),
    )
    if entries:
        # One statement: the ledger checks a transaction's balance after each statement.
        conn.execute(
            "INSERT INTO journal_entries (txn_id, account_id, amount)"
            " SELECT %s, account_id, amount FROM unnest(%s::bigint[], %s::numeric[])"
            " AS e(account_id, amount)",
            (txn_id, [a for a, _ in entries], [m for _, m in entries]),
        )
    return txn_id


def _move_wallet(conn: Conn, user_id: int, available: Decimal, locked: Decimal) -> None:
    conn.execute(
        "UPDATE wallets SET balance = balance + %s, locked_balance = locked_balance + %s,"
        " updated_at = now() WHERE user_id = %s",
        (available, locked, user_id),
    )


def _insert_execution(
    conn: Conn,
    exec_id: str,
    order_id: uuid.UUID,
    side: str,
    qty: int,
    px: Decimal,
    fee: Decimal,
    txn_id: uuid.UUID | None,
) -> None:
    conn.execute(
        "INSERT INTO executions (exec_id, order_id, symbol, side, last_qty, last_px, fee,"
        " executed_at, journal_txn_id, settled_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now(), %s,"
        " CASE WHEN %s::uuid IS NULL THEN NULL ELSE now() END)",
        (exec_id, order_id, SYMBOL, side, qty, px, fee, txn_id, txn_id),
    )


def _open_user(conn: Conn) -> tuple[int, int, int]:
    insert_user = "INSERT INTO users (email, password_hash) VALUES ('bo@example.com', 'h')"
    user_id = int(str(_one(conn, insert_user + " RETURNING id")))
    accounts = conn.execute(
        "INSERT INTO ledger_accounts (user_id, kind, currency)"
        " VALUES (%s, 'CASH_AVAILABLE', 'USD'), (%s, 'CASH_LOCKED', 'USD') RETURNING id",
        (user_id, user_id),
    ).fetchall()
    conn.execute("INSERT INTO wallets (user_id, currency) VALUES (%s, 'USD')", (user_id,))
    conn.execute(
        "INSERT INTO instruments (symbol, tick_size, lot_size) VALUES (%s, 0.01, 1)", (SYMBOL,)
    )
    return user_id, int(str(accounts[0][0])), int(str(accounts[1][0]))


@dataclass(frozen=True)
class _Accounts:
    available: int
    locked: int
    gateway: int
    clearing: int
    fees: int


def _deposit(conn: Conn, user_id: int, acc: _Accounts) -> uuid.UUID:
    """Deposit 10,000 through the payment gateway."""
    txn = _post(
        conn,
        "DEPOSIT",
        [(acc.available, Decimal(10000)), (acc.gateway, Decimal(-10000))],
        external_ref="pay-1",
    )
    _move_wallet(conn, user_id, Decimal(10000), Decimal(0))
    conn.commit()
    return txn


def _buy_filled(conn: Conn, user_id: int, acc: _Accounts) -> uuid.UUID:
    """Buy 10 limit 100: reserve 1,001 (fee allowance 1), fill 10 @ 99 fee 1, release 10."""
    buy = uuid.uuid4()
    conn.execute(
        "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type, quantity,"
        " price, status, reserved_amount) VALUES (%s, %s, 'c-buy', %s, 'BUY', 'LIMIT', 10, 100,"
        " 'SENT', 1001)",
        (buy, user_id, SYMBOL),
    )
    reserve = [(acc.available, Decimal(-1001)), (acc.locked, Decimal(1001))]
    _post(conn, "ORDER_RESERVE", reserve, order_id=buy)
    _move_wallet(conn, user_id, Decimal(-1001), Decimal(1001))
    conn.commit()

    fill_entries = [
        (acc.locked, Decimal(-990)),
        (acc.clearing, Decimal(990)),
        (acc.locked, Decimal(-1)),
        (acc.fees, Decimal(1)),
    ]
    fill = _post(conn, "FILL", fill_entries, order_id=buy, exec_id="E-1")
    _insert_execution(conn, "E-1", buy, "BUY", 10, Decimal(99), Decimal(1), fill)
    conn.execute(
        "INSERT INTO holdings (user_id, symbol, quantity, avg_buy_price) VALUES (%s, %s, 10, 99)",
        (user_id, SYMBOL),
    )
    # The order is final: the unused 10 of the reserve goes back to available.
    _post(
        conn,
        "ORDER_RELEASE",
        [(acc.locked, Decimal(-10)), (acc.available, Decimal(10))],
        order_id=buy,
    )
    _move_wallet(conn, user_id, Decimal(10), Decimal(-1001))
    conn.execute(
        "UPDATE orders SET cum_qty = 10, avg_px = 99, status = 'FILLED', reserved_amount = 0"
        " WHERE id = %s",
        (buy,),
    )
    conn.commit()
    return buy


def _sell_filled(conn: Conn, user_id: int, acc: _Accounts) -> uuid.UUID:
    """Sell 4 at market: lock 4 shares, fill 4 @ 105, fee 1 taken from the proceeds."""
    sell = uuid.uuid4()
    conn.execute(
        "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type, quantity,"
        " status) VALUES (%s, %s, 'c-sell', %s, 'SELL', 'MARKET', 4, 'SENT')",
        (sell, user_id, SYMBOL),
    )
    conn.execute(
        "UPDATE holdings SET locked_quantity = 4 WHERE user_id = %s AND symbol = %s",
        (user_id, SYMBOL),
    )
    conn.commit()

    fill_entries = [
        (acc.clearing, Decimal(-420)),
        (acc.available, Decimal(420)),
        (acc.available, Decimal(-1)),
        (acc.fees, Decimal(1)),
    ]
    fill = _post(conn, "FILL", fill_entries, order_id=sell, exec_id="E-2")
    _insert_execution(conn, "E-2", sell, "SELL", 4, Decimal(105), Decimal(1), fill)
    conn.execute(
        "UPDATE holdings SET quantity = quantity - 4, locked_quantity = locked_quantity - 4,"
        " realized_pnl = realized_pnl + 23 WHERE user_id = %s AND symbol = %s",
        (user_id, SYMBOL),
    )
    _move_wallet(conn, user_id, Decimal(419), Decimal(0))
    conn.execute(
        "UPDATE orders SET cum_qty = 4, avg_px = 105, status = 'FILLED' WHERE id = %s", (sell,)
    )
    conn.commit()
    return sell


def _build_consistent_books(conn: Conn) -> Books:
    """A deposit, a buy reserved, filled and released, and a sell of part of it, all settled."""
    user_id, available, locked = _open_user(conn)
    acc = _Accounts(
        available=available,
        locked=locked,
        gateway=_system_account(conn, "PAYMENT_GATEWAY_CLEARING"),
        clearing=_system_account(conn, "EXCHANGE_CLEARING"),
        fees=_system_account(conn, "FEES"),
    )
    deposit = _deposit(conn, user_id, acc)
    buy = _buy_filled(conn, user_id, acc)
    sell = _sell_filled(conn, user_id, acc)
    return Books(user_id, available, locked, deposit, buy, sell)


@pytest.fixture(scope="module")
def invariants() -> dict[str, str]:
    return migrate.load_invariants()


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn) as connection:
        yield connection


@pytest.fixture
def books(conn: Conn) -> Books:
    return _build_consistent_books(conn)


def _violations(conn: Conn, invariants: dict[str, str], name: str) -> list[tuple[object, ...]]:
    rows = conn.execute(invariants[name]).fetchall()
    conn.rollback()
    return rows


def _run_in_own_transaction(conn: Conn, *statements: str) -> None:
    """Run DDL that relaxes the schema, committed before the damaging DML that follows."""
    for statement in statements:
        conn.execute(statement)
    conn.commit()


def test_invariants_file_defines_the_five_invariants(invariants: dict[str, str]) -> None:
    assert set(invariants) == INVARIANT_NAMES
    assert all(
        query.lstrip().upper().startswith(("SELECT", "WITH", "--")) for query in invariants.values()
    )


@pytest.mark.parametrize("name", sorted(INVARIANT_NAMES))
def test_invariant_holds_on_an_empty_database(
    conn: Conn, invariants: dict[str, str], name: str
) -> None:
    assert _violations(conn, invariants, name) == []


@pytest.mark.parametrize("name", sorted(INVARIANT_NAMES))
def test_invariant_holds_on_consistent_books(
    conn: Conn, books: Books, invariants: dict[str, str], name: str
) -> None:
    assert _violations(conn, invariants, name) == []


def test_consistent_books_end_with_the_expected_balances(conn: Conn, books: Books) -> None:
    wallet = conn.execute(
        "SELECT balance, locked_balance FROM wallets WHERE user_id = %s", (books.user_id,)
    ).fetchone()
    holding = conn.execute(
        "SELECT quantity, locked_quantity FROM holdings WHERE user_id = %s", (books.user_id,)
    ).fetchone()
    assert wallet == (Decimal("9428.0000"), Decimal("0.0000"))
    assert holding == (6, 0)


# 1. journal_txn_sums_to_zero


def test_unbalanced_journal_txn_breaks_journal_txn_sums_to_zero(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    _run_in_own_transaction(
        conn,
        "ALTER TABLE journal_entries DISABLE TRIGGER journal_entry_txn_balanced",
        "ALTER TABLE journal_txns DISABLE TRIGGER journal_txn_balanced",
    )
    gateway = _system_account(conn, "PAYMENT_GATEWAY_CLEARING")
    bad = _post(conn, "ADJUSTMENT", [(books.available_account, Decimal(5)), (gateway, Decimal(-4))])
    conn.commit()

    rows = _violations(conn, invariants, "journal_txn_sums_to_zero")
    assert [(row[0], row[4]) for row in rows] == [(bad, Decimal("1.0000"))]


def test_single_entry_journal_txn_breaks_journal_txn_sums_to_zero(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    _run_in_own_transaction(
        conn,
        "ALTER TABLE journal_entries DISABLE TRIGGER journal_entry_txn_balanced",
        "ALTER TABLE journal_txns DISABLE TRIGGER journal_txn_balanced",
    )
    empty = _post(conn, "ADJUSTMENT", [])
    lonely = _post(conn, "ADJUSTMENT", [(books.available_account, Decimal(5))])
    conn.commit()

    rows = _violations(conn, invariants, "journal_txn_sums_to_zero")
    assert {row[0] for row in rows} == {empty, lonely}


def test_entries_without_their_journal_txn_break_journal_txn_sums_to_zero(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    # The ledger's statement trigger refuses this; with it off, the invariant still finds it.
    _run_in_own_transaction(
        conn, "ALTER TABLE journal_entries DISABLE TRIGGER journal_entry_txn_balanced"
    )
    gateway = _system_account(conn, "PAYMENT_GATEWAY_CLEARING")
    orphan = uuid.uuid4()
    conn.execute(
        "INSERT INTO journal_entries (txn_id, account_id, amount) VALUES (%s, %s, 5), (%s, %s, -5)",
        (orphan, books.available_account, orphan, gateway),
    )
    conn.commit()

    rows = _violations(conn, invariants, "journal_txn_sums_to_zero")
    assert [(row[0], row[1], row[3], row[4]) for row in rows] == [(orphan, None, 2, Decimal(0))]


def test_deleted_entry_breaks_journal_txn_sums_to_zero(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    _run_in_own_transaction(
        conn, "ALTER TABLE journal_entries DISABLE TRIGGER journal_entries_append_only"
    )
    conn.execute(
        "DELETE FROM journal_entries WHERE txn_id = %s AND amount < 0", (books.deposit_txn,)
    )
    conn.commit()

    rows = _violations(conn, invariants, "journal_txn_sums_to_zero")
    assert [row[0] for row in rows] == [books.deposit_txn]


# 2. wallet_matches_ledger


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE wallets SET balance = balance + 0.0001",
        "UPDATE wallets SET locked_balance = locked_balance + 1",
        "DELETE FROM wallets",
    ],
)
def test_wallet_projection_disagreeing_with_ledger_breaks_wallet_matches_ledger(
    conn: Conn, books: Books, invariants: dict[str, str], damage: str
) -> None:
    conn.execute(damage)
    conn.commit()

    rows = _violations(conn, invariants, "wallet_matches_ledger")
    assert [row[0] for row in rows] == [books.user_id]


def test_ledger_move_without_wallet_update_breaks_wallet_matches_ledger(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    # A balanced reserve the application forgot to project onto the wallet.
    _post(
        conn,
        "ORDER_RESERVE",
        [(books.available_account, Decimal(-50)), (books.locked_account, Decimal(50))],
        order_id=books.buy_order,
    )
    conn.commit()

    rows = _violations(conn, invariants, "wallet_matches_ledger")
    assert rows == [
        (
            books.user_id,
            "USD",
            Decimal("9428.0000"),
            Decimal("9378.0000"),
            Decimal("0.0000"),
            Decimal("50.0000"),
        )
    ]


# 3. no_negative_balances


@pytest.mark.parametrize(
    ("dropped_constraints", "damage", "source"),
    [
        (["wallets_balance_nonnegative"], "UPDATE wallets SET balance = -1", "wallet"),
        (
            ["wallets_locked_balance_nonnegative"],
            "UPDATE wallets SET locked_balance = -1",
            "wallet",
        ),
        (
            ["holdings_quantity_nonnegative", "holdings_locked_within_quantity"],
            "UPDATE holdings SET quantity = -2",
            "holding",
        ),
        (
            ["holdings_locked_quantity_nonnegative"],
            "UPDATE holdings SET locked_quantity = -1",
            "holding",
        ),
        (
            ["holdings_locked_within_quantity"],
            "UPDATE holdings SET locked_quantity = quantity + 1",
            "holding",
        ),
    ],
)
def test_negative_projection_breaks_no_negative_balances(
    conn: Conn,
    books: Books,
    invariants: dict[str, str],
    dropped_constraints: list[str],
    damage: str,
    source: str,
) -> None:
    table = "wallets" if source == "wallet" else "holdings"
    _run_in_own_transaction(
        conn, *(f"ALTER TABLE {table} DROP CONSTRAINT {name}" for name in dropped_constraints)
    )
    conn.execute(damage)
    conn.commit()

    rows = _violations(conn, invariants, "no_negative_balances")
    assert [(row[0], row[1]) for row in rows] == [(source, books.user_id)]


def test_overdrawn_ledger_account_breaks_no_negative_balances(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    # Balanced, so the ledger accepts it, but it releases more than was ever locked.
    _post(
        conn,
        "ORDER_RELEASE",
        [(books.locked_account, Decimal(-5)), (books.available_account, Decimal(5))],
        order_id=books.buy_order,
    )
    conn.commit()

    rows = _violations(conn, invariants, "no_negative_balances")
    assert rows == [("ledger_account", books.user_id, "USD:CASH_LOCKED", Decimal("-5.0000"), None)]


# 4. holding_matches_fills


@pytest.mark.parametrize(
    ("damage", "expected_holding", "expected_fills"),
    [
        ("UPDATE holdings SET quantity = quantity + 5", 11, 6),
        ("DELETE FROM holdings", None, 6),
    ],
)
def test_holding_differing_from_fills_breaks_holding_matches_fills(
    conn: Conn,
    books: Books,
    invariants: dict[str, str],
    damage: str,
    expected_holding: int | None,
    expected_fills: int,
) -> None:
    conn.execute(damage)
    conn.commit()

    rows = _violations(conn, invariants, "holding_matches_fills")
    assert rows == [(books.user_id, SYMBOL, expected_holding, expected_fills)]


def test_holding_without_fills_breaks_holding_matches_fills(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    conn.execute("INSERT INTO instruments (symbol) VALUES ('GIFT')")
    conn.execute(
        "INSERT INTO holdings (user_id, symbol, quantity) VALUES (%s, 'GIFT', 3)", (books.user_id,)
    )
    conn.commit()

    rows = _violations(conn, invariants, "holding_matches_fills")
    assert rows == [(books.user_id, "GIFT", 3, 0)]


# 5. fill_settled_once


def _problems(rows: list[tuple[object, ...]]) -> set[tuple[object, object]]:
    return {(row[0], row[1]) for row in rows}


def test_unsettled_execution_breaks_fill_settled_once(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    _insert_execution(conn, "E-3", books.sell_order, "SELL", 1, Decimal(105), Decimal(0), None)
    conn.commit()

    rows = _violations(conn, invariants, "fill_settled_once")
    assert _problems(rows) == {("unsettled", "E-3")}


def test_exec_id_settled_twice_breaks_fill_settled_once(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    _run_in_own_transaction(conn, "DROP INDEX journal_txns_exec_id_key")
    clearing = _system_account(conn, "EXCHANGE_CLEARING")
    _post(
        conn,
        "FILL",
        [(books.locked_account, Decimal(-1)), (clearing, Decimal(1))],
        order_id=books.buy_order,
        exec_id="E-1",
    )
    conn.commit()

    rows = _violations(conn, invariants, "fill_settled_once")
    assert _problems(rows) == {
        ("exec_id_in_several_txns", "E-1"),
        ("fill_txn_without_its_execution", "E-1"),
    }


def test_fill_txn_without_execution_breaks_fill_settled_once(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    clearing = _system_account(conn, "EXCHANGE_CLEARING")
    _post(
        conn,
        "FILL",
        [(books.locked_account, Decimal(-1)), (clearing, Decimal(1))],
        order_id=books.buy_order,
        exec_id="E-404",
    )
    conn.commit()

    rows = _violations(conn, invariants, "fill_settled_once")
    assert _problems(rows) == {("fill_txn_without_its_execution", "E-404")}


def test_execution_settled_by_a_non_fill_txn_breaks_fill_settled_once(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    conn.execute(
        "UPDATE executions SET journal_txn_id = %s WHERE exec_id = 'E-2'", (books.deposit_txn,)
    )
    conn.commit()

    rows = _violations(conn, invariants, "fill_settled_once")
    # The execution points at a deposit, and E-2's real FILL txn is left without its execution.
    assert _problems(rows) == {
        ("settled_by_wrong_txn", "E-2"),
        ("fill_txn_without_its_execution", "E-2"),
    }


def test_duplicate_execution_row_breaks_fill_settled_once(
    conn: Conn, books: Books, invariants: dict[str, str]
) -> None:
    _run_in_own_transaction(conn, "ALTER TABLE executions DROP CONSTRAINT executions_exec_id_key")
    _insert_execution(conn, "E-2", books.sell_order, "SELL", 4, Decimal(105), Decimal(1), None)
    conn.commit()

    rows = _violations(conn, invariants, "fill_settled_once")
    assert _problems(rows) == {("duplicate_execution", "E-2"), ("unsettled", "E-2")}
