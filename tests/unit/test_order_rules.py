"""Pure order rules: price fields, lots, ticks, valuation, reserves, fraud rules, bodies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from api.exceptions import FraudRuleError, InvalidRequestError
from api.services import order_rules
from api.services.fraud import check_order_rate, check_order_value
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


def test_quantity_must_be_positive_within_the_maximum_and_whole_lots() -> None:
    order_rules.check_quantity(30, lot_size=10, quantity_max=100)
    for quantity, code in (
        (0, "invalid_quantity"),
        (101, "invalid_quantity"),
        (25, "invalid_lot_size"),
    ):
        with pytest.raises(InvalidRequestError) as refused:
            order_rules.check_quantity(quantity, lot_size=10, quantity_max=100)
        assert refused.value.code == code


def test_a_price_off_the_tick_is_refused_and_one_on_it_passes() -> None:
    order_rules.check_on_tick("price", D("100.05"), D("0.05"))
    order_rules.check_on_tick("price", None, D("0.05"))
    with pytest.raises(
        InvalidRequestError, match=r"not a multiple of the tick size 0\.05"
    ) as refused:
        order_rules.check_on_tick("price", D("100.03"), D("0.05"))
    assert refused.value.code == "invalid_tick"


def test_orders_are_valued_at_limit_then_trigger_then_last_price() -> None:
    assert order_rules.unit_price(OrderType.LIMIT, D("10"), None, D("11"), "X") == D("10")
    assert order_rules.unit_price(OrderType.STOP_LIMIT, D("10"), D("9"), None, "X") == D("10")
    assert order_rules.unit_price(OrderType.STOP_LOSS, None, D("9"), D("11"), "X") == D("9")
    assert order_rules.unit_price(OrderType.MARKET, None, None, D("11"), "X") == D("11")


def test_a_market_order_without_a_last_price_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="no price yet for ACME") as refused:
        order_rules.unit_price(OrderType.MARKET, None, None, None, "ACME")
    assert refused.value.code == "no_price"


def test_a_limit_buy_reserves_value_plus_fee() -> None:
    value = order_rules.order_value(10, D("100.05"))
    assert value == D("1000.5000")
    # 1000.50 * 1.0003 = 1000.80015 -> rounded up to 1000.8002
    assert order_rules.buy_reserve(OrderType.LIMIT, value, 3, 500) == D("1000.8002")
    assert order_rules.buy_reserve(OrderType.STOP_LIMIT, value, 0, 500) == D("1000.5000")


def test_marketable_buys_reserve_the_protection_band_as_well() -> None:
    # 1000 * 1.05 * 1.0003 = 1050.315
    assert order_rules.buy_reserve(OrderType.MARKET, D("1000"), 3, 500) == D("1050.3150")
    assert order_rules.buy_reserve(OrderType.STOP_LOSS, D("1000"), 3, 500) == D("1050.3150")


def test_the_reserve_rounds_up_never_down() -> None:
    # 0.0001 * 1.0003 = 0.00010003 -> 0.0002
    assert order_rules.buy_reserve(OrderType.LIMIT, D("0.0001"), 3, 0) == D("0.0002")


def test_a_value_or_reserve_too_large_for_money_is_refused_not_crashed() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        order_rules.order_value(10_000_000, D("99999999999999"))
    assert refused.value.code == "order_value_too_large"
    with pytest.raises(InvalidRequestError) as refused:
        order_rules.buy_reserve(OrderType.MARKET, D("99999999999999"), 3, 500)
    assert refused.value.code == "order_value_too_large"


def test_fraud_rule_order_value_limit_names_itself() -> None:
    check_order_value(D("1000"), D("1000"))
    with pytest.raises(FraudRuleError, match="order_value_limit") as refused:
        check_order_value(D("1000.0001"), D("1000"))
    assert refused.value.code == "order_value_limit"


def test_fraud_rule_order_rate_limit_refuses_the_order_past_the_maximum() -> None:
    check_order_rate(orders_last_minute=2, orders_per_minute_max=3)
    with pytest.raises(FraudRuleError, match="order_rate_limit") as refused:
        check_order_rate(orders_last_minute=3, orders_per_minute_max=3)
    assert refused.value.code == "order_rate_limit"


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
