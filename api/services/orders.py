"""Placing an order: one call of ``order_place`` (sql/migrations/0030), key to outbox row.

The API does what needs no database (the request hash, price fields, the quantity range, the
calendar, the NewOrder record) and sends everything else to PostgreSQL as one call, which
claims the idempotency key, reads and locks, validates, applies the fraud rules and the funds
or shares check, writes the order, the ledger reserve, the locked shares, the outbox row and the
stored response, in one transaction. The whole order is one round trip: the call runs alone in
autocommit mode, so it is its own transaction: driving one round trip per statement cost the
API more CPU than PostgreSQL spent running them.

A validation failure the database finds (unknown symbol, lot, tick, closed market, no price, a
value too large, a reused key) raises SQLSTATE BR422 with the detail as message and the code as
hint: the transaction rolls back and the key stays free, as before. Refusals that depend on the
account (fraud rules, funds, shares, a reused client order id) are stored as the key's response.

A call cut by a lost connection (a failover of the database) is sent again, a bounded number of
times: the key makes that safe. Either the first call committed, and the second gets its stored
response, or it did not, and the second places the order.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from api.exceptions import ConflictError, InvalidRequestError
from api.services import idempotency, order_rules
from api.services.idempotency import StoredResponse
from api.services.order_models import OrderRequest
from api.services.outbox import NEW_ORDER_RECORD, RECORD_HEADER
from core.calendar import calendar_from_settings, is_open, next_open
from core.contracts import ORDER_COMMANDS, NewOrder
from core.db import AsyncPool
from core.ids import time_ordered_id
from core.money import MONEY_CONTEXT, MONEY_SCALE
from core.settings import Settings

ORDERS_PATH = "/v1/orders"
# SQLSTATEs order_place raises for a refusal that is not stored (the transaction rolls back).
INVALID_SQLSTATE = "BR422"
CONFLICT_SQLSTATE = "BR409"

_PLACE = (
    "SELECT response_status, response_body, replayed FROM order_place("
    "%(user_id)s, %(key)s, %(request_hash)s, %(order_id)s, %(client_order_id)s, %(symbol)s,"
    " %(side)s, %(order_type)s, %(time_in_force)s, %(quantity)s, %(price)s, %(trigger_price)s,"
    " %(closed_detail)s, %(is_amo)s, %(available_at)s, %(band_bps)s, %(fee_rate_bps)s,"
    " %(value_max)s, %(orders_per_minute_max)s, %(currency)s, %(topic)s, %(outbox_key)s,"
    " %(outbox_payload)s, %(outbox_headers)s)"
)
_NEW_ORDER_HEADERS = Jsonb({RECORD_HEADER: NEW_ORDER_RECORD})


async def place_order(
    pool: AsyncPool,
    settings: Settings,
    user_id: int,
    idempotency_key: str,
    request: OrderRequest,
    now: datetime | None = None,
) -> StoredResponse:
    """Place an order once per idempotency key; return the (stored) HTTP response."""
    # No database needed: a request failing these can never have a stored response of its own.
    order_rules.check_price_fields(request.type, request.price, request.trigger_price)
    order_rules.check_quantity_range(request.quantity, settings.order_quantity_max)
    params = _params(settings, user_id, idempotency_key, request, now or datetime.now(UTC))
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(psycopg.OperationalError),
        stop=stop_after_attempt(settings.pg_failover_retries_max + 1),
        wait=wait_exponential(multiplier=settings.pg_failover_backoff_ms / 1000),
        reraise=True,
    )
    row: tuple[Any, ...] | None = await retrying(_place_once, pool, params)
    if row is None:
        raise ValueError("order_place returned no row")
    return StoredResponse(int(row[0]), row[1], replayed=bool(row[2]))


async def _place_once(pool: AsyncPool, params: dict[str, Any]) -> tuple[Any, ...] | None:
    async with pool.connection() as conn:
        # One statement is its own transaction: no BEGIN and COMMIT to send. Setting autocommit
        # on an idle connection is local to psycopg (no round trip); it is set back before the
        # connection returns to the pool, whose other users expect explicit transactions.
        await conn.set_autocommit(True)
        try:
            cursor = await conn.execute(_PLACE, params)
            row = await cursor.fetchone()
        except psycopg.Error as error:
            refusal = _refusal(error)
            if refusal is None:
                raise
            raise refusal from None
        finally:
            # A broken or busy connection is discarded by the pool, autocommit or not.
            if conn.info.transaction_status is TransactionStatus.IDLE:
                await conn.set_autocommit(False)
    return row


def _params(
    settings: Settings, user_id: int, key: str, request: OrderRequest, now: datetime
) -> dict[str, Any]:
    digest = idempotency.request_hash("POST", ORDERS_PATH, request.model_dump(mode="json"))
    closed_detail, is_amo, available_at = _session(settings, request.amo, now)
    order_id = time_ordered_id()
    record = _new_order(user_id, order_id, request)
    return {
        "user_id": user_id,
        "key": key,
        "request_hash": digest,
        "order_id": order_id,
        "client_order_id": request.client_order_id,
        "symbol": request.symbol,
        "side": request.side.value,
        "order_type": request.type.value,
        "time_in_force": request.time_in_force.value,
        "quantity": request.quantity,
        "price": request.price,
        "trigger_price": request.trigger_price,
        "closed_detail": closed_detail,
        "is_amo": is_amo,
        "available_at": available_at,
        "band_bps": settings.market_protection_band_bps,
        "fee_rate_bps": settings.fee_rate_bps,
        "value_max": settings.order_value_max,
        "orders_per_minute_max": settings.orders_per_minute_max,
        "currency": settings.currency,
        "topic": settings.topic_orders,
        "outbox_key": record.kafka_key(),
        "outbox_payload": ORDER_COMMANDS.encode(record),
        "outbox_headers": _NEW_ORDER_HEADERS,
    }


def _session(
    settings: Settings, amo: bool, now: datetime
) -> tuple[str | None, bool, datetime | None]:
    # While the market is open the amo flag changes nothing: the order goes out at once. A
    # closed market is refused by order_place after the key's claim, so a retry of an order
    # accepted before the close still gets its stored answer.
    calendar = calendar_from_settings(settings)
    if is_open(calendar, now):
        return None, False, None
    opens = next_open(calendar, now)
    if not amo:
        return (
            f"the market is closed; it opens next at {opens.isoformat()}."
            " Send amo=true to place an after-market order, sent at that open",
            False,
            None,
        )
    return None, True, opens


def _new_order(user_id: int, order_id: uuid.UUID, request: OrderRequest) -> NewOrder:
    # Prices as the NUMERIC(18,4) columns hold them (4 places), as the record always carried.
    return NewOrder(
        order_id=str(order_id),
        user_id=user_id,
        symbol=request.symbol,
        side=request.side,
        order_type=request.type,
        quantity=request.quantity,
        price=_money(request.price),
        trigger_price=_money(request.trigger_price),
        time_in_force=request.time_in_force,
        ts_created_ns=time.time_ns(),
    )


def _money(price: Decimal | None) -> Decimal | None:
    return None if price is None else price.quantize(MONEY_SCALE, context=MONEY_CONTEXT)


def _refusal(error: psycopg.Error) -> InvalidRequestError | ConflictError | None:
    """The API error for a refusal order_place raised; None for any other database error."""
    sqlstate = error.diag.sqlstate
    detail = error.diag.message_primary or ""
    code = error.diag.message_hint or "invalid_request"
    if sqlstate == INVALID_SQLSTATE:
        return InvalidRequestError(detail, code=code)
    if sqlstate == CONFLICT_SQLSTATE:
        return ConflictError(detail, code=code)
    return None
