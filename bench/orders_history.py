"""A year of history under the orders benchmark: many users, many past orders, indexes grown.

The question it answers: does an order cost more when the tables already hold millions of rows?
Each history user has a wallet, two cash accounts and a deposit; each history order (spread over
the year before the run, so none counts for the rate rule's last minute) is FILLED, with the rows
a placed order leaves: its idempotency key with a stored answer, its reserve posting (a journal
transaction of two entries) and its published outbox row. What a real history also has and this
leaves out: the fills' and fees' postings, executions and holdings, and the order update rows.

Loaded in bulk SQL (``generate_series``) with triggers and foreign key checks off for the
session (``session_replication_role = replica``): the rows are built to satisfy them, and the
invariant queries run over the whole database after the benchmark as after any run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal

import psycopg

from bench.exceptions import BenchError

log = logging.getLogger(__name__)

HISTORY_DEPOSIT = Decimal("1000.0000")
HISTORY_ORDER_RESERVE = Decimal("1.0000")
HISTORY_YEAR_DAYS = 365


@dataclass(frozen=True)
class History:
    """How much history to load: users, and orders shared evenly among them."""

    users: int
    orders: int

    @property
    def orders_per_user(self) -> int:
        """Orders each history user placed."""
        return self.orders // self.users if self.users else 0

    def describe(self) -> str:
        """The conditions field of the benchmark rows."""
        return f"history_users={self.users}, history_orders={self.users * self.orders_per_user}"


def load_history(dsn: str, history: History, *, currency: str, symbol: str, topic: str) -> None:
    """Add ``history`` to the migrated, seeded benchmark database (``topic``: the orders topic)."""
    if history.users < 1 or history.orders_per_user < 1:
        raise BenchError(f"history needs users and at least one order each: {history}")
    per_user = history.orders_per_user
    orders = history.users * per_user
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        first = _scalar(conn, "SELECT coalesce(max(id), 0) + 1 FROM users")
        params: dict[str, object] = {
            "first": first,
            "users": history.users,
            "orders": orders,
            "per_user": per_user,
            "currency": currency,
            "symbol": symbol,
            "topic": topic,
            "deposit": HISTORY_DEPOSIT,
            "reserve": HISTORY_ORDER_RESERVE,
            "days": HISTORY_YEAR_DAYS,
        }
        for name, statement in _STEPS:
            step_started = time.monotonic()
            conn.execute(statement, params)
            if name == "users":
                last = _scalar(conn, "SELECT max(id) FROM users")
                if last != first + history.users - 1:
                    raise BenchError(f"history user ids are not contiguous: {first}..{last}")
            if name == "accounts":
                params["account_base"] = _scalar(
                    conn, "SELECT min(id) FROM ledger_accounts WHERE user_id = %s", (first,)
                )
                _check_account_ids(conn, params)
            log.info("history: %s in %.1f s", name, time.monotonic() - step_started)
    log.info(
        "history: %d users, %d orders loaded in %.0f s",
        history.users,
        orders,
        time.monotonic() - started,
    )


def _scalar(
    conn: psycopg.Connection[tuple[object, ...]],
    query: str,
    args: tuple[object, ...] | dict[str, object] = (),
) -> int:
    row = conn.execute(query, args).fetchone()
    if row is None or row[0] is None:
        raise BenchError(f"no value for {query}")
    return int(str(row[0]))


def _check_account_ids(
    conn: psycopg.Connection[tuple[object, ...]], params: dict[str, object]
) -> None:
    """The entries below compute each user's account ids; make sure they are what was made."""
    wrong = _scalar(
        conn,
        "SELECT count(*) FROM ledger_accounts WHERE user_id BETWEEN %(first)s"
        " AND %(first)s + %(users)s - 1 AND id <> %(account_base)s + 2 * (user_id - %(first)s)"
        " + (kind = 'CASH_LOCKED')::int",
        params,
    )
    if wrong:
        raise BenchError(f"{wrong} history accounts are not where the loader expects them")


# Order n (1-based) belongs to user first + (n - 1) % users, placed at the n-th step of a year that
# ended a day ago. Ids are derived from n (md5 as uuid), so each step can name the rows of another.
_ORDER_TS = (
    "now() - interval '1 day' - (%(days)s * interval '1 day') * (1 - n::float8 / %(orders)s)"
)
_USER_OF_N = "%(first)s + (n - 1) %% %(users)s"

_STEPS: list[tuple[str, str]] = [
    (
        "users",
        "INSERT INTO users (email, password_hash, created_at, updated_at)"
        " SELECT 'history-' || g || '@example.com', 'not-a-login', now() - interval '400 days',"
        " now() - interval '400 days' FROM generate_series(1, %(users)s) AS g ORDER BY g",
    ),
    (
        "wallets",
        "INSERT INTO wallets (user_id, currency, balance, locked_balance)"
        " SELECT u, %(currency)s, %(deposit)s - %(per_user)s * %(reserve)s,"
        " %(per_user)s * %(reserve)s"
        " FROM generate_series(%(first)s, %(first)s + %(users)s - 1) AS u",
    ),
    (
        "accounts",
        "INSERT INTO ledger_accounts (user_id, kind, currency)"
        " SELECT u, k, %(currency)s"
        " FROM generate_series(%(first)s, %(first)s + %(users)s - 1) AS u,"
        " unnest(ARRAY['CASH_AVAILABLE', 'CASH_LOCKED']) WITH ORDINALITY AS a(k, o)"
        " ORDER BY u, o",
    ),
    (
        "deposits",
        "INSERT INTO journal_txns (id, kind, reference, external_ref, created_at)"
        " SELECT md5('history-deposit-' || u)::uuid, 'DEPOSIT', 'history deposit',"
        " 'history-deposit-' || u, now() - interval '400 days'"
        " FROM generate_series(%(first)s, %(first)s + %(users)s - 1) AS u",
    ),
    (
        "deposit entries",
        "INSERT INTO journal_entries (txn_id, account_id, amount, created_at)"
        " SELECT md5('history-deposit-' || u)::uuid, leg.account_id, leg.amount,"
        " now() - interval '400 days'"
        " FROM generate_series(%(first)s, %(first)s + %(users)s - 1) AS u"
        " CROSS JOIN LATERAL (VALUES"
        "  (%(account_base)s + 2 * (u - %(first)s), %(deposit)s),"
        "  ((SELECT id FROM ledger_accounts WHERE kind = 'PAYMENT_GATEWAY_CLEARING'"
        "    AND currency = %(currency)s), -%(deposit)s)) AS leg(account_id, amount)",
    ),
    (
        "orders",
        "INSERT INTO orders (id, user_id, client_order_id, symbol, side, order_type,"
        " time_in_force, quantity, price, status, cum_qty, avg_px, filled_notional,"
        " reserved_amount, created_at, updated_at)"
        f" SELECT md5('history-order-' || n)::uuid, {_USER_OF_N}, 'history-' || n,"
        " %(symbol)s, 'BUY', 'LIMIT', 'DAY', 1, %(reserve)s, 'FILLED', 1, %(reserve)s,"
        f" %(reserve)s, 0, {_ORDER_TS}, {_ORDER_TS}"
        " FROM generate_series(1, %(orders)s) AS n",
    ),
    (
        "idempotency keys",
        "INSERT INTO idempotency_keys (user_id, key, request_hash, response_status,"
        " response_body, created_at)"
        f" SELECT {_USER_OF_N}, 'history-' || n, decode(md5('history-' || n), 'hex'), 201,"
        " jsonb_build_object('id', md5('history-order-' || n)::uuid, 'status', 'NEW'),"
        f" {_ORDER_TS} FROM generate_series(1, %(orders)s) AS n",
    ),
    (
        "reserves",
        "INSERT INTO journal_txns (id, kind, reference, order_id, created_at)"
        " SELECT md5('history-reserve-' || n)::uuid, 'ORDER_RESERVE', 'history reserve',"
        f" md5('history-order-' || n)::uuid, {_ORDER_TS}"
        " FROM generate_series(1, %(orders)s) AS n",
    ),
    (
        "reserve entries",
        "INSERT INTO journal_entries (txn_id, account_id, amount, created_at)"
        " SELECT md5('history-reserve-' || n)::uuid,"
        f" %(account_base)s + 2 * (({_USER_OF_N}) - %(first)s) + leg.locked, leg.amount,"
        f" {_ORDER_TS}"
        " FROM generate_series(1, %(orders)s) AS n"
        " CROSS JOIN (VALUES (0, -%(reserve)s), (1, %(reserve)s)) AS leg(locked, amount)",
    ),
    (
        "outbox",
        "INSERT INTO outbox (topic, key, payload, headers, created_at, published_at)"
        " SELECT %(topic)s, convert_to(md5('history-order-' || n)::uuid::text, 'UTF8'),"
        " convert_to('history', 'UTF8'), '{\"record\": \"new_order.v1\"}'::jsonb,"
        f" {_ORDER_TS}, {_ORDER_TS} FROM generate_series(1, %(orders)s) AS n",
    ),
]
