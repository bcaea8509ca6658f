"""The order rules decided before the database (price fields, quantity range) and bodies.

The rules order_place decides are pinned by tests/integration/test_order_place_cases.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from api.exceptions import InvalidRequestError
from api.services import order_rules
from api.services.idempotency import request_hash
from api.services.order_models import OrderRequest
from core.contracts import OrderType
from core.instruments import DEFAULT_INSTRUMENTS, instrument_universe
from core.money import is_on_tick

D = Decimal


@pytest.mark.parametrize(
    ("order_type", "price", "trigger", "code"),
    [
        (OrderType.LIMIT, None, None, "price_required"),
        (OrderType.STOP_LIMIT, None, D("9"), "price_required"),
        (OrderType.MARKET, D("10"), None, "price_not_allowed"),
        (OrderType.STOP_LOSS, D("10"), D("9"), "price_not_allowed"),
        (OrderType.STOP_LOSS, None, None, "trigger_price_required"),
        (OrderType.STOP_LIMIT, D("10"), None, "trigger_price_required"),
        (OrderType.LIMIT, D("10"), D("9"), "trigger_price_not_allowed"),
        (OrderType.MARKET, None, D("9"), "trigger_price_not_allowed"),
    ],
)
def test_a_price_field_missing_or_out_of_place_is_refused_with_its_reason(
    order_type: OrderType, price: Decimal | None, trigger: Decimal | None, code: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        order_rules.check_price_fields(order_type, price, trigger)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("order_type", "price", "trigger"),
    [
        (OrderType.MARKET, None, None),
        (OrderType.LIMIT, D("10"), None),
        (OrderType.STOP_LOSS, None, D("9")),
        (OrderType.STOP_LIMIT, D("10"), D("9")),
    ],
)
def test_each_type_with_exactly_its_price_fields_passes(
    order_type: OrderType, price: Decimal | None, trigger: Decimal | None
) -> None:
    order_rules.check_price_fields(order_type, price, trigger)


def test_quantity_must_be_positive_and_within_the_maximum() -> None:
    order_rules.check_quantity_range(100, quantity_max=100)
    for quantity in (0, -1, 101):
        with pytest.raises(InvalidRequestError) as refused:
            order_rules.check_quantity_range(quantity, quantity_max=100)
        assert refused.value.code == "invalid_quantity"


def body(**fields: object) -> dict[str, object]:
    return {
        "symbol": "ACME",
        "side": "BUY",
        "quantity": 10,
        "type": "LIMIT",
        "price": "10",
    } | fields


def test_prices_are_accepted_as_strings_and_whole_numbers() -> None:
    assert OrderRequest.model_validate(body(price="1520.40")).price == D("1520.40")
    assert OrderRequest.model_validate(body(price=1520)).price == D("1520")


@pytest.mark.parametrize(
    "price", [1520.4, "1e3", "-1", "0", "1.00001", "NaN", True, "123456789012345", " 1"]
)
def test_floats_and_malformed_prices_are_refused(price: object) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(body(price=price))


@pytest.mark.parametrize("quantity", [10.0, 10.5, "10", 0, -5, True])
def test_quantity_must_be_a_positive_json_integer(quantity: object) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(body(quantity=quantity))


def test_symbols_are_upper_cased_and_unknown_fields_refused() -> None:
    assert OrderRequest.model_validate(body(symbol=" acme ")).symbol == "ACME"
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(body(symbol="AC ME"))
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(body(leverage=10))


def test_the_request_hash_ignores_spelling_but_not_content() -> None:
    one = OrderRequest.model_validate(body(symbol="acme", price=10)).model_dump(mode="json")
    same = OrderRequest.model_validate(body(price="10")).model_dump(mode="json")
    other = OrderRequest.model_validate(body(price="10.05")).model_dump(mode="json")
    assert request_hash("POST", "/v1/orders", one) == request_hash("POST", "/v1/orders", same)
    assert request_hash("POST", "/v1/orders", one) != request_hash("POST", "/v1/orders", other)


def test_the_default_universe_has_fifty_distinct_symbols_priced_on_their_ticks() -> None:
    assert len(DEFAULT_INSTRUMENTS) == 50
    assert len({i.symbol for i in DEFAULT_INSTRUMENTS}) == 50
    for instrument in instrument_universe(200):
        assert instrument.tick_size in (D("0.05"), D("0.01"))
        assert is_on_tick(instrument.reference_price, instrument.tick_size), instrument
    assert instrument_universe(200) == instrument_universe(200)
    assert instrument_universe(60)[:50] == list(DEFAULT_INSTRUMENTS)
