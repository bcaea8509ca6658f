"""Routes for orders: place (idempotent), list, fetch by id or client order id, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse

from api.deps import CurrentPrincipal, PoolDep, SettingsDep, VerifiedPrincipal
from api.errors import documented
from api.services import order_cancel, order_queries, orders
from api.services.market import parse_symbol
from api.services.order_models import CLIENT_ORDER_ID_PATTERN, OrderOut, OrderPage, OrderRequest
from core.contracts import OrderStatus, Side

router = APIRouter(prefix="/v1/orders", tags=["orders"])

REPLAY_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_LEN_MAX = 255
NOT_FOUND = documented("No such order of yours", ("order_not_found", "no order ..."))


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    summary="Place an order",
    responses={
        409: documented(
            "client_order_id used before",
            (
                "client_order_id_reused",
                "client_order_id 'my-order-0001' was used before; a client order id can never"
                " be reused",
            ),
        ),
        422: documented(
            "Refused: validation, market closed, funds, fraud rules, idempotency key reuse",
            (
                "insufficient_funds",
                "insufficient funds: the order needs 100.0000 (fees and any market protection"
                " band included), 0.0000 is available",
            ),
        ),
    },
)
async def place_order(
    body: OrderRequest,
    principal: VerifiedPrincipal,
    settings: SettingsDep,
    pool: PoolDep,
    x_idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=IDEMPOTENCY_KEY_LEN_MAX,
            description="Required. One key per intended order: a retry with the same key and"
            " body gets the first response again; the same key with another body is refused.",
        ),
    ],
) -> JSONResponse:
    """Place an order: reserve cash (buy) or lock shares (sell), then send it to the exchange.

    The whole placement is one database transaction. Stops are held until their trigger
    price trades (PENDING_TRIGGER); while the market is closed an order is refused with the
    next open time unless ``amo`` is true, in which case it is held and sent at the open.
    A refusal for funds, shares, a fraud rule or a reused client order id is stored with the
    idempotency key, so a retry gets the same answer (header ``Idempotent-Replayed: true``).
    """
    stored = await orders.place_order(pool, settings, principal.user_id, x_idempotency_key, body)
    headers = {REPLAY_HEADER: "true"} if stored.replayed else None
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


@router.get("", response_model=OrderPage, summary="List your orders, newest first")
async def list_orders(
    principal: CurrentPrincipal,
    settings: SettingsDep,
    pool: PoolDep,
    status: OrderStatus | None = None,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
    side: Side | None = None,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size (default and max in settings).")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page.")
    ] = None,
) -> OrderPage:
    """A page of your orders, optionally filtered by status, symbol and side."""
    return await order_queries.list_orders(
        pool,
        settings,
        principal.user_id,
        status=status,
        symbol=parse_symbol(symbol) if symbol else None,
        side=side,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/by-client-id/{client_order_id}",
    response_model=OrderOut,
    summary="Fetch an order by your client order id",
    responses={404: NOT_FOUND},
)
async def get_order_by_client_id(
    principal: CurrentPrincipal,
    pool: PoolDep,
    client_order_id: Annotated[str, Path(pattern=CLIENT_ORDER_ID_PATTERN)],
) -> OrderOut:
    """One of your orders, by the client order id you gave it."""
    return await order_queries.get_order_by_client_id(pool, principal.user_id, client_order_id)


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="Fetch an order",
    responses={404: NOT_FOUND},
)
async def get_order(principal: CurrentPrincipal, pool: PoolDep, order_id: uuid.UUID) -> OrderOut:
    """One of your orders by id; another user's order answers 404."""
    return await order_queries.get_order(pool, principal.user_id, order_id)


@router.delete(
    "/{order_id}",
    response_model=OrderOut,
    summary="Cancel an order",
    responses={
        200: {"description": "Canceled at once: nothing had reached the exchange"},
        202: {"model": OrderOut, "description": "Cancel requested from the exchange"},
        404: NOT_FOUND,
        409: documented("The order is final", ("order_final", "order ... is FILLED already")),
    },
)
async def cancel_order(
    principal: VerifiedPrincipal, settings: SettingsDep, pool: PoolDep, order_id: uuid.UUID
) -> JSONResponse:
    """Cancel an order.

    A stop waiting for its trigger, or an order not yet sent (an after-market order before the
    open), is canceled at once and its reserve released: 200 with status CANCELED. An order the
    exchange may hold gets a cancel request: 202 with status PENDING_CANCEL.
    """
    result = await order_cancel.cancel_order(pool, settings, principal.user_id, order_id)
    status_code = 200 if result.canceled_locally else 202
    return JSONResponse(result.order.model_dump(mode="json"), status_code=status_code)
