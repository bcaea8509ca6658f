"""Checks after a run, each a function returning a list of problems (empty: the check holds).

The exchange's side comes from the simulator's own records, read from its state folder:
its FIX message log (every NewOrderSingle it received and every ExecutionReport it sent, in
order; QuickFIX appends to it across restarts) and its end-of-day trade report, written on
SIGUSR1 from its fill journal. The broker's side is PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from core.contracts.enums import ExecType, OrderStatus
from core.settings import Settings
from fixbridge.fix44 import (
    TAG_CL_ORD_ID,
    TAG_CUM_QTY,
    TAG_EXEC_ID,
    TAG_EXEC_TYPE,
    TAG_LAST_PX,
    TAG_LAST_QTY,
    TAG_MSG_TYPE,
    TAG_ORD_STATUS,
    TAG_ORDER_ID,
    TAG_TEXT,
)
from fixbridge.simulator.config import simulator_dir, trade_report_dir
from fixbridge.simulator.fix_messages import EXEC_TYPE_CODES, ORD_STATUS_CODES
from fixbridge.simulator.journal import trading_day
from fixbridge.simulator.matching import TEXT_DUPLICATE
from fixbridge.simulator.trade_report import report_path
from infra.migrate import load_invariants
from pipelines.compare import compare
from pipelines.internal import load_internal_executions
from pipelines.trade_report import load_trade_report
from streams.settlement_rules import oms_status
from tests.chaos.load import OrderRecord, Outcome

TAG_SENDER_COMP_ID = 49
TAG_POSS_DUP_FLAG = 43
MSG_NEW_ORDER_SINGLE = "D"
MSG_EXECUTION_REPORT = "8"
EXEC_TYPE_NEW = EXEC_TYPE_CODES[ExecType.NEW]
EXEC_TYPE_TRADE = "F"
STATUS_OF_CODE = {code: status for status, code in ORD_STATUS_CODES.items()}
# The exchange answers "order id NONE" for orders it does not hold: a duplicate ClOrdID, or a
# status request about an order it never saw (or forgot in a restart). Not an order's state.
NO_ORDER = "NONE"
SETTLE_WAIT_S = 120.0
REPORT_WAIT_S = 30.0
POLL_S = 0.5
SOH = "\x01"

Problems = list[str]


# The exchange's view.


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    """One execution the exchange reported."""

    exec_id: str
    cl_ord_id: str
    qty: int
    price: Decimal


@dataclass
class ExchangeView:
    """What the exchange received and answered, by ClOrdID, from its FIX message log."""

    new_order_messages: Counter[str] = field(default_factory=Counter)  # D received, resends out
    acknowledged: dict[str, set[str]] = field(default_factory=dict)  # NEW/REJECT exec ids
    duplicate_rejects: Counter[str] = field(default_factory=Counter)
    state: dict[str, tuple[OrderStatus, int]] = field(default_factory=dict)  # last word
    fills: dict[str, ExchangeFill] = field(default_factory=dict)  # by exec id
    conflicting_fills: list[str] = field(default_factory=list)


def fix_log_files(settings: Settings) -> list[Path]:
    """The simulator's FIX message logs (one per session) under its state folder."""
    return sorted((simulator_dir(settings) / "fix-log").glob("*.messages*.log"))


def parse_fix_line(line: str) -> dict[int, str]:
    """Tag -> value of one QuickFIX file-log line (``<time> : <message>``)."""
    _, sep, message = line.partition(" : ")
    fields: dict[int, str] = {}
    for part in (message if sep else line).rstrip("\n").split(SOH):
        tag, eq, value = part.partition("=")
        if eq and tag.isdigit():
            fields[int(tag)] = value
    return fields


def exchange_view(messages: Iterable[dict[int, str]], exchange_comp_id: str) -> ExchangeView:
    """Fold the exchange's FIX traffic, in log order, into its view of each order."""
    view = ExchangeView()
    for fields in messages:
        kind = fields.get(TAG_MSG_TYPE)
        outbound = fields.get(TAG_SENDER_COMP_ID) == exchange_comp_id
        resend = fields.get(TAG_POSS_DUP_FLAG) == "Y"
        cl_ord_id = fields.get(TAG_CL_ORD_ID, "")
        if kind == MSG_NEW_ORDER_SINGLE and not outbound and not resend:
            view.new_order_messages[cl_ord_id] += 1
        if kind != MSG_EXECUTION_REPORT or not outbound:
            continue
        exec_id = fields.get(TAG_EXEC_ID, "")
        exec_type = fields.get(TAG_EXEC_TYPE)
        if fields.get(TAG_ORDER_ID) == NO_ORDER:
            if fields.get(TAG_TEXT) == TEXT_DUPLICATE and not resend:
                view.duplicate_rejects[cl_ord_id] += 1
            continue
        if exec_type in {EXEC_TYPE_NEW, EXEC_TYPE_CODES[ExecType.REJECTED]}:
            view.acknowledged.setdefault(cl_ord_id, set()).add(exec_id)
        status = STATUS_OF_CODE.get(fields.get(TAG_ORD_STATUS, ""))
        if status is not None:
            view.state[cl_ord_id] = (status, int(fields.get(TAG_CUM_QTY, "0")))
        if exec_type == EXEC_TYPE_TRADE:
            fill = ExchangeFill(
                exec_id, cl_ord_id, int(fields[TAG_LAST_QTY]), Decimal(fields[TAG_LAST_PX])
            )
            if view.fills.setdefault(exec_id, fill) != fill:
                view.conflicting_fills.append(exec_id)
    return view


def read_exchange_view(settings: Settings) -> ExchangeView:
    """The exchange's view from its FIX message logs on disk."""
    messages: list[dict[int, str]] = []
    for path in fix_log_files(settings):
        with path.open(encoding="utf-8", errors="replace") as lines:
            messages.extend(parse_fix_line(line) for line in lines if SOH in line)
    return exchange_view(messages, settings.sim_sender_comp_id)


# The broker's view.


def _rows(settings: Settings, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return conn.execute(query, params).fetchall()


def accepted_ids(records: Iterable[OrderRecord]) -> list[str]:
    """The ids of the orders clients know were placed: answered 201, or found after a failure."""
    return [
        order_id
        for r in records
        if (order_id := r.order_id if r.outcome is Outcome.ACCEPTED else r.found_order_id)
    ]


def order_states(settings: Settings, order_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """(status, cum_qty) of each order in the ``orders`` table."""
    rows = _rows(
        settings,
        "SELECT id::text, status, cum_qty FROM orders WHERE id = ANY(%s::uuid[])",
        (list(order_ids),),
    )
    return {str(i): (str(s), int(q)) for i, s, q in rows}


# (b) every accepted order reaches the state the exchange holds for it.


def state_mismatches(
    order_ids: Sequence[str], broker: Mapping[str, tuple[str, int]], view: ExchangeView
) -> Problems:
    """Orders whose status and filled quantity differ between the broker and the exchange."""
    found: Problems = []
    for order_id in order_ids:
        mine = broker.get(order_id)
        theirs = view.state.get(order_id)
        if mine is None:
            found.append(f"order {order_id}: accepted but not in the orders table")
        elif theirs is None:
            found.append(f"order {order_id}: {mine[0]} here, never acknowledged by the exchange")
        elif mine != (oms_status(theirs[0]).value, theirs[1]):
            found.append(
                f"order {order_id}: {mine[0]} cum_qty {mine[1]} here, exchange {theirs[0].value}"
                f" cum_qty {theirs[1]}"
            )
    return found


def wait_orders_match_exchange(
    settings: Settings, records: Iterable[OrderRecord], wait_s: float = SETTLE_WAIT_S
) -> Problems:
    """Wait (bounded) until every accepted order's row equals the exchange's state; the rest."""
    ids = accepted_ids(records)
    deadline = time.monotonic() + wait_s
    while True:
        found = state_mismatches(ids, order_states(settings, ids), read_exchange_view(settings))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(POLL_S)


def wait_exchange_has_orders(
    settings: Settings, records: Iterable[OrderRecord], wait_s: float = SETTLE_WAIT_S
) -> Problems:
    """Wait (bounded) until the exchange acknowledged every accepted order; the missing ones.

    The end of day must come after this: an order that reaches the exchange after its trade
    report was written would fill outside the report, a break the system did not make.
    """
    ids = accepted_ids(records)
    deadline = time.monotonic() + wait_s
    while True:
        view = read_exchange_view(settings)
        missing = [i for i in ids if i not in view.acknowledged]
        if not missing or time.monotonic() > deadline:
            return [f"order {i}: not acknowledged by the exchange" for i in missing]
        time.sleep(POLL_S)


# (c) the exchange saw each ClOrdID as a new order once.


def new_order_problems(order_ids: Iterable[str], view: ExchangeView) -> Problems:
    """ClOrdIDs received as NewOrderSingle more than once, or acknowledged other than once."""
    found: Problems = []
    for cl_ord_id, count in sorted(view.new_order_messages.items()):
        if count > 1:
            found.append(f"ClOrdID {cl_ord_id}: {count} NewOrderSingle messages (not resends)")
    for cl_ord_id, count in sorted(view.duplicate_rejects.items()):
        found.append(f"ClOrdID {cl_ord_id}: the exchange refused {count} duplicates of it")
    for order_id in order_ids:
        acks = len(view.acknowledged.get(order_id, ()))
        if acks != 1:
            found.append(f"ClOrdID {order_id}: acknowledged as new {acks} times")
    return found


# (d) every fill settled exactly once.


def fill_problems(settings: Settings, view: ExchangeView) -> Problems:
    """Exchange fills against the executions table: each settled once, equal, none extra."""
    found = [f"exec id {e}: reported with different contents" for e in view.conflicting_fills]
    rows = _rows(
        settings,
        "SELECT exec_id, order_id::text, last_qty, last_px, settled_at IS NOT NULL"
        " FROM executions WHERE order_id = ANY(%s::uuid[])",
        (sorted(view.state),),
    )
    mine: dict[str, list[tuple[str, int, Decimal, bool]]] = {}
    for exec_id, order_id, qty, px, settled in rows:
        mine.setdefault(str(exec_id), []).append((str(order_id), int(qty), Decimal(px), settled))
    for exec_id, fill in sorted(view.fills.items()):
        got = mine.get(exec_id, [])
        if len(got) != 1:
            found.append(f"exec id {exec_id}: recorded {len(got)} times")
        elif got[0] != (fill.cl_ord_id, fill.qty, fill.price, True):
            found.append(f"exec id {exec_id}: exchange {fill}, here {got[0]}")
    found += [
        f"exec id {e}: settled here, unknown to the exchange"
        for e in mine.keys() - view.fills.keys()
    ]
    return found


# (a) the five ledger invariants.


def invariant_problems(settings: Settings) -> Problems:
    """Each violating row of the invariant queries of sql/invariants.sql."""
    found: Problems = []
    with psycopg.connect(settings.pg_dsn) as conn:
        for name, query in load_invariants().items():
            found += [f"{name}: {row}" for row in conn.execute(query).fetchall()]
    return found


# (e) the day's reconciliation.


def force_end_of_day(
    settings: Settings, signal_simulator: Callable[[], None], day: date | None = None
) -> Path:
    """Make the simulator write the day's trade report now (SIGUSR1); return the report's path.

    ``signal_simulator`` sends the signal (e.g. ``lambda: os.kill(pid, signal.SIGUSR1)``, or
    the supervisor's signal command). End of day also expires resting DAY orders.
    """
    day = day or trading_day(time.time_ns(), ZoneInfo(settings.market_tz))
    path = report_path(trade_report_dir(settings), day)
    before = path.stat().st_mtime_ns if path.exists() else None
    signal_simulator()
    deadline = time.monotonic() + REPORT_WAIT_S
    while not path.exists() or path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no new trade report at {path} after {REPORT_WAIT_S}s")
        time.sleep(POLL_S / 5)
    return path


def signal_pid(pid: int) -> Callable[[], None]:
    """A ``signal_simulator`` for a simulator process known by its pid."""
    return lambda: os.kill(pid, signal.SIGUSR1)


def reconciliation_problems(settings: Settings, report_csv: Path, day: date) -> Problems:
    """Breaks of the pipelines' comparison of the trade report with the day's settled fills."""
    report = load_trade_report(report_csv)
    found = [f"report row set aside: {row}" for row in report.rejected.iter_rows(named=True)]
    with psycopg.connect(settings.pg_dsn) as conn:
        internal = load_internal_executions(conn, day, ZoneInfo(settings.market_tz))
    comparison = compare(report.rows, internal)
    found += [f"break: {row}" for row in comparison.breaks.iter_rows(named=True)]
    return found


# (f) no refused order was half-done.


def refusal_problems(
    settings: Settings, records: Sequence[OrderRecord], start: float, end: float
) -> Problems:
    """Refused or failed orders that left something behind, and orders nobody was told about.

    From the schema: a placement is one transaction that stores the answer with the key
    (idempotency_keys), so a refused key must not hold a 201; every order placed by the load's
    users in [start, end] must be one a client was answered 201 for; what is locked must equal
    what open orders reserve (wallets vs orders.reserved_amount, holdings vs open sells); and
    every order message in the outbox must name an order and have been published.
    """
    found: Problems = []
    users = sorted({r.user_id for r in records})
    keys = {
        (int(u), str(k)): (s, b)
        for u, k, s, b in _rows(
            settings,
            "SELECT user_id, key, response_status, response_body FROM idempotency_keys"
            " WHERE user_id = ANY(%s)",
            (users,),
        )
    }
    for record in records:
        stored = keys.get((record.user_id, record.key))
        if record.outcome is Outcome.REFUSED and stored is not None and stored[0] == 201:
            found.append(f"key {record.key}: refused ({record.error_code}) but placed: {stored[1]}")
    # Told: answered 201, or found by its client order id after the request failed.
    told = set(accepted_ids(records))
    for order_id, user_id in _rows(
        settings,
        "SELECT id::text, user_id FROM orders WHERE user_id = ANY(%s)"
        " AND created_at >= to_timestamp(%s) AND created_at <= to_timestamp(%s)",
        (users, start, end),
    ):
        if order_id not in told:
            found.append(f"order {order_id} of user {user_id}: placed, no client was told")
    found += [
        f"user {u}: {locked} cash locked, open orders reserve {reserved}"
        for u, locked, reserved in _rows(
            settings,
            "SELECT w.user_id, w.locked_balance, coalesce(sum(o.reserved_amount), 0)"
            " FROM wallets w LEFT JOIN orders o ON o.user_id = w.user_id"
            " WHERE w.user_id = ANY(%s) GROUP BY w.user_id, w.locked_balance"
            " HAVING w.locked_balance <> coalesce(sum(o.reserved_amount), 0)",
            (users,),
        )
    ]
    found += [
        f"user {u} {s}: {locked} shares locked, open sells need {open_qty}"
        for u, s, locked, open_qty in _rows(
            settings,
            "SELECT h.user_id, h.symbol, h.locked_quantity, coalesce(sum(o.quantity - o.cum_qty)"
            "  FILTER (WHERE o.side = 'SELL' AND o.status IN"
            "  ('NEW', 'SENT', 'ACCEPTED', 'PARTIALLY_FILLED', 'PENDING_CANCEL')), 0)"
            " FROM holdings h LEFT JOIN orders o ON o.user_id = h.user_id AND o.symbol = h.symbol"
            " WHERE h.user_id = ANY(%s) GROUP BY h.user_id, h.symbol, h.locked_quantity"
            " HAVING h.locked_quantity <> coalesce(sum(o.quantity - o.cum_qty)"
            "  FILTER (WHERE o.side = 'SELL' AND o.status IN"
            "  ('NEW', 'SENT', 'ACCEPTED', 'PARTIALLY_FILLED', 'PENDING_CANCEL')), 0)",
            (users,),
        )
    ]
    found += [
        f"outbox row {i}: {'no order ' + str(k) if missing else 'never published'}"
        for i, k, missing in _rows(
            settings,
            "SELECT x.id, convert_from(x.key, 'UTF8'), o.id IS NULL FROM outbox x"
            " LEFT JOIN orders o ON o.id::text = convert_from(x.key, 'UTF8')"
            " WHERE x.topic = %s AND (o.id IS NULL"
            "  OR (x.published_at IS NULL AND x.canceled_at IS NULL))",
            (settings.topic_orders,),
        )
    ]
    return found


# (g) the load: nothing failed after retries.


def load_problems(records: Iterable[OrderRecord]) -> Problems:
    """Each order that failed after every retry (a careful client saw a failure)."""
    return [
        f"key {r.key}: failed after {r.attempts} attempts in {r.latency_s:.1f}s: {r.last_error}"
        for r in records
        if r.outcome is Outcome.FAILED
    ]


# All of them, in the order that lets the system settle first.


def run_all_checks(
    settings: Settings,
    records: Sequence[OrderRecord],
    load_window: tuple[float, float],
    signal_simulator: Callable[[], None],
    *,
    settle_wait_s: float = SETTLE_WAIT_S,
) -> dict[str, Problems]:
    """Wait until the exchange has every accepted order, end the day (DAY orders expire, the
    report is written), let everything settle, then check.

    ``load_window`` is (start, end) of the load in epoch seconds. Keys of the answer:
    invariants, orders_match_exchange, new_order_once, fills_settled_once, reconciliation,
    refusals_clean, load_no_failures.
    """
    unsent = wait_exchange_has_orders(settings, records, settle_wait_s)
    day = trading_day(time.time_ns(), ZoneInfo(settings.market_tz))
    report_csv = force_end_of_day(settings, signal_simulator, day)
    matched = unsent + wait_orders_match_exchange(settings, records, settle_wait_s)
    view = read_exchange_view(settings)
    ids = accepted_ids(records)
    return {
        "invariants": invariant_problems(settings),
        "orders_match_exchange": matched,
        "new_order_once": new_order_problems(ids, view),
        "fills_settled_once": fill_problems(settings, view),
        "reconciliation": reconciliation_problems(settings, report_csv, day),
        "refusals_clean": refusal_problems(settings, records, *load_window),
        "load_no_failures": load_problems(records),
    }
