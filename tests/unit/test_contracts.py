"""Message contracts: exact round trips, strict decoding into ContractError, dead letters."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from core.contracts import (
    CONFLATED_PRICES,
    DEAD_LETTERS,
    EXECUTION_REPORTS,
    ORDER_COMMANDS,
    TICKS,
    AnyRecord,
    CancelOrder,
    Codec,
    ConflatedPrice,
    DeadLetter,
    ExecType,
    ExecutionReport,
    NewOrder,
    OrderStatus,
    OrderStatusRequest,
    OrderType,
    Side,
    Tick,
    TimeInForce,
    codec_for_topic,
    codecs_by_topic,
    dead_letter,
    dead_letter_for,
    encode,
)
from core.exceptions import BrokerError, ContractError
from core.settings import Settings

ORDER_ID = "0b7f8c1e-3d52-4c1a-9f0e-6a2d4b8c9e10"
USER_ID = 1234
TS_NS = 1_700_000_000_123_456_789


def make_tick(**changes: Any) -> Tick:
    fields: dict[str, Any] = {
        "symbol": "AAPL",
        "price": Decimal("101.2500"),
        "size": 100,
        "ts_event_ns": TS_NS,
        "seq": 42,
    }
    return Tick(**(fields | changes))


def make_new_order(**changes: Any) -> NewOrder:
    fields: dict[str, Any] = {
        "order_id": ORDER_ID,
        "user_id": USER_ID,
        "symbol": "MSFT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": 10,
        "price": Decimal("410.05"),
        "time_in_force": TimeInForce.DAY,
        "ts_created_ns": TS_NS,
    }
    return NewOrder(**(fields | changes))


def make_report(**changes: Any) -> ExecutionReport:
    fields: dict[str, Any] = {
        "exec_id": "EX-1",
        "order_id": ORDER_ID,
        "exec_type": ExecType.PARTIAL_FILL,
        "order_status": OrderStatus.PARTIALLY_FILLED,
        "symbol": "MSFT",
        "side": Side.BUY,
        "last_qty": 4,
        "last_px": Decimal("410.0500"),
        "cum_qty": 4,
        "leaves_qty": 6,
        "avg_px": Decimal("410.0500"),
        "ts_transact_ns": TS_NS,
    }
    return ExecutionReport(**(fields | changes))


def tick_json(**changes: Any) -> bytes:
    """A tick payload as a foreign producer might write it, with fields changed or removed."""
    fields: dict[str, Any] = {
        "type": "tick.v1",
        "symbol": "AAPL",
        "price": "101.2500",
        "size": 100,
        "ts_event_ns": TS_NS,
        "seq": 42,
    }
    fields |= changes
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


ROUND_TRIPS: list[tuple[Codec[Any], AnyRecord]] = [
    (TICKS, make_tick()),
    (
        CONFLATED_PRICES,
        ConflatedPrice(
            symbol="BRK.B",
            price=Decimal("412.1000"),
            size=5,
            ts_event_ns=TS_NS,
            seq=7,
            ts_conflated_ns=TS_NS + 250_000_000,
        ),
    ),
    (ORDER_COMMANDS, make_new_order()),
    (ORDER_COMMANDS, make_new_order(order_type=OrderType.MARKET, price=None)),
    (
        ORDER_COMMANDS,
        make_new_order(
            order_type=OrderType.STOP_LIMIT,
            price=Decimal("99.50"),
            trigger_price=Decimal("100"),
            time_in_force=TimeInForce.GTC,
        ),
    ),
    (ORDER_COMMANDS, CancelOrder(order_id=ORDER_ID, ts_ns=TS_NS)),
    (ORDER_COMMANDS, OrderStatusRequest(order_id=ORDER_ID, ts_ns=TS_NS)),
    (EXECUTION_REPORTS, make_report()),
    (
        EXECUTION_REPORTS,
        make_report(
            exec_type=ExecType.REJECTED,
            order_status=OrderStatus.REJECTED,
            last_qty=0,
            last_px=None,
            cum_qty=0,
            leaves_qty=0,
            avg_px=Decimal("0"),
            text="insufficient buying power",
        ),
    ),
    (
        DEAD_LETTERS,
        DeadLetter(
            source_topic="md.ticks",
            partition=3,
            offset=12345,
            key=b"AAPL",
            value=b"\x00\xff{not json",
            error="boom",
            error_type="ContractError",
            ts_failed_ns=TS_NS,
            consumer="candles",
        ),
    ),
]


@pytest.mark.parametrize(("codec", "record"), ROUND_TRIPS, ids=lambda x: type(x).__name__)
def test_every_contract_round_trips_exactly(codec: Codec[Any], record: AnyRecord) -> None:
    decoded = codec.decode(codec.encode(record))
    assert decoded == record
    assert type(decoded) is type(record)
    for name in record.__struct_fields__:
        value = getattr(decoded, name)
        if isinstance(value, Decimal):
            assert type(value) is Decimal  # never a subclass leaking out of the decoder
            assert str(value) == str(getattr(record, name))  # scale kept: "101.2500"


def test_wire_format_has_version_tag_decimal_strings_and_integer_nanoseconds() -> None:
    payload = json.loads(TICKS.encode(make_tick()))
    assert payload == {
        "type": "tick.v1",
        "symbol": "AAPL",
        "price": "101.2500",
        "size": 100,
        "ts_event_ns": TS_NS,
        "seq": 42,
    }


def test_encode_writes_the_same_bytes_as_the_topic_codec() -> None:
    assert encode(make_tick()) == TICKS.encode(make_tick())


def test_a_v1_payload_from_another_producer_decodes() -> None:
    tick = TICKS.decode(tick_json(), topic="md.ticks")
    assert tick.price == Decimal("101.25")
    assert str(tick.price) == "101.2500"


def test_unknown_fields_are_ignored_for_additive_changes() -> None:
    assert TICKS.decode(tick_json(venue="XNAS")) == make_tick()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"garbage", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b'{"type":"tick.v1","symbol":"\xff"}', "not valid UTF-8"),
        (b"[1, 2]", "does not match"),
        (tick_json(price=...), "missing required field `price`"),
        (tick_json(type=...), "missing required field `type`"),
        (tick_json(type="tick.v2"), "'tick.v2'"),
        (tick_json(type="order.v1"), "'order.v1'"),
        (tick_json(size="100"), "Expected `int`, got `str`"),
        (tick_json(size=True), "Expected `int`, got `bool`"),
        (tick_json(size=1.0), "Expected `int`, got `float`"),
        (tick_json(size=-5), "size must be an int >= 1"),
        (tick_json(seq=-1), "seq must be an int >= 0"),
        (tick_json(price=1.5), "decimal must be a JSON string, got float"),
        (tick_json(price=101), "decimal must be a JSON string, got int"),
        (tick_json(price="NaN"), "not a finite decimal"),
        (tick_json(price="Infinity"), "not a finite decimal"),
        (tick_json(price="abc"), "not a decimal number"),
        (tick_json(price=" 101.25"), "not a plain decimal string"),
        (tick_json(price="1_000"), "not a plain decimal string"),
        (tick_json(price="-1.00"), "price must be a positive Decimal"),
        (tick_json(price="0"), "price must be a positive Decimal"),
        (tick_json(price="101.25001"), "at most 4 places"),
        (tick_json(price="1E+14"), "below 10**14"),
        (tick_json(symbol="aapl"), "symbol must be"),
        (tick_json(symbol=""), "symbol must be"),
        (tick_json(symbol="A" * 17), "symbol must be"),
        (tick_json(symbol=".A"), "symbol must be"),
    ],
)
def test_malformed_tick_payload_raises_contract_error(payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as caught:
        TICKS.decode(payload, topic="md.ticks")
    assert caught.value.contract == "tick"
    assert caught.value.topic == "md.ticks"
    assert reason in caught.value.reason
    assert str(caught.value).startswith("cannot parse a tick record from topic 'md.ticks': ")


def test_a_record_of_another_topic_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="ExecutionReport record does not belong here"):
        TICKS.decode(EXECUTION_REPORTS.encode(make_report()))


def test_a_tombstone_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="no value"):
        ORDER_COMMANDS.decode(None)


def test_contract_error_is_a_broker_error() -> None:
    assert issubclass(ContractError, BrokerError)


def test_encoding_a_record_with_the_wrong_codec_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="tick codec cannot encode NewOrder"):
        TICKS.encode(make_new_order())  # type: ignore[arg-type]


def test_records_are_immutable() -> None:
    tick = make_tick()
    with pytest.raises(AttributeError):
        tick.price = Decimal("1")  # type: ignore[misc]


def test_a_refused_value_stays_refused_after_valid_ones_were_checked() -> None:
    # The checks remember valid symbols and prices; a bad value must never ride on that.
    assert TICKS.decode(tick_json(price="1.0000")).price == Decimal(1)
    for _ in range(2):
        with pytest.raises(ValueError, match="price must be a positive Decimal"):
            make_tick(price=1)
        with pytest.raises(ContractError, match="at most 4 places"):
            TICKS.decode(tick_json(price="101.25001"))
        with pytest.raises(ContractError, match="symbol must be"):
            TICKS.decode(tick_json(symbol="aapl"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": 101.25}, "price must be a positive Decimal"),
        ({"price": Decimal("NaN")}, "price must be a positive Decimal"),
        ({"price": Decimal("sNaN")}, "price must be a positive Decimal"),
        ({"size": 0}, "size must be an int >= 1"),
        ({"size": True}, "size must be an int >= 1"),
        ({"ts_event_ns": 0}, "ts_event_ns must be an int >= 1"),
    ],
)
def test_building_an_invalid_tick_raises_value_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_tick(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity": 0}, "quantity must be an int >= 1"),
        ({"quantity": -3}, "quantity must be an int >= 1"),
        ({"price": None}, "LIMIT order needs a price"),
        ({"order_type": OrderType.MARKET}, "MARKET order has no price"),
        (
            {"order_type": OrderType.STOP_LOSS, "price": None},
            "STOP_LOSS order needs a trigger_price",
        ),
        ({"trigger_price": Decimal("1")}, "LIMIT order has no trigger_price"),
        ({"user_id": 0}, "user_id must be an int >= 1"),
        ({"user_id": "1234"}, "user_id must be an int >= 1"),
        ({"order_id": "not-a-uuid"}, "order_id must be a lower-case hyphenated UUID"),
        ({"order_id": ORDER_ID.upper()}, "order_id must be a lower-case hyphenated UUID"),
        ({"side": "BUY"}, "side must be a Side"),
    ],
)
def test_building_an_invalid_new_order_raises_value_error(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_new_order(**changes)


def test_order_command_payload_with_unknown_enum_value_is_a_contract_error() -> None:
    payload = json.loads(ORDER_COMMANDS.encode(make_new_order()))
    payload["side"] = "SHORT"
    with pytest.raises(ContractError, match="Invalid enum value 'SHORT'"):
        ORDER_COMMANDS.decode(json.dumps(payload).encode())


def test_order_commands_decode_to_their_own_types() -> None:
    cancel = CancelOrder(order_id=ORDER_ID, ts_ns=TS_NS)
    decoded = ORDER_COMMANDS.decode(ORDER_COMMANDS.encode(cancel))
    assert isinstance(decoded, CancelOrder)
    assert decoded.kafka_key() == ORDER_ID.encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"last_px": None}, "PARTIAL_FILL report needs last_px"),
        ({"last_qty": 0}, "PARTIAL_FILL report needs last_qty > 0"),
        ({"leaves_qty": -1}, "leaves_qty must be an int >= 0"),
        ({"cum_qty": 3}, "cum_qty must be >= last_qty"),
        (
            {"avg_px": Decimal("410.05001")},
            "avg_px must be a Decimal >= 0 below 10..14 with at most 4",
        ),
        ({"avg_px": Decimal("0")}, "avg_px must be > 0 once anything is filled"),
        ({"exec_type": ExecType.FILL}, "exec_type FILL needs order_status FILLED"),
        ({"order_status": OrderStatus.FILLED}, "FILLED has leaves_qty 0"),
        ({"order_status": OrderStatus.PENDING_TRIGGER}, "PENDING_TRIGGER is an OMS state"),
        ({"order_status": OrderStatus.ACCEPTED}, "ACCEPTED is an OMS state"),
        ({"exec_type": ExecType.NEW, "order_status": OrderStatus.NEW}, "NEW report has last_qty 0"),
        ({"exec_id": ""}, "exec_id must be a non-empty string"),
    ],
)
def test_building_an_inconsistent_execution_report_raises_value_error(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_report(**changes)


def test_execution_report_payload_breaking_an_invariant_is_a_contract_error() -> None:
    payload = json.loads(EXECUTION_REPORTS.encode(make_report()))
    payload["leaves_qty"] = -1
    with pytest.raises(ContractError, match="leaves_qty must be an int >= 0"):
        EXECUTION_REPORTS.decode(json.dumps(payload).encode())


def test_kafka_keys_follow_the_topic_table() -> None:
    assert make_tick().kafka_key() == b"AAPL"
    assert make_new_order().kafka_key() == ORDER_ID.encode()
    assert make_report().kafka_key() == ORDER_ID.encode()


class FakeMessage:
    """Stands in for confluent_kafka.Message."""

    def __init__(self, key: bytes | None, value: bytes | None) -> None:
        self._key = key
        self._value = value

    def topic(self) -> str | None:
        return "md.ticks"

    def partition(self) -> int | None:
        return 5

    def offset(self) -> int | None:
        return 987

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


ALL_BYTES = bytes(range(256))


def test_dead_letter_keeps_the_raw_bytes_exactly() -> None:
    message = FakeMessage(key=b"\xffKEY\x00", value=ALL_BYTES)
    with pytest.raises(ContractError) as caught:
        TICKS.decode(message.value())
    letter = dead_letter_for(message, caught.value, consumer="candles")
    wire = DEAD_LETTERS.encode(letter)
    decoded = DEAD_LETTERS.decode(wire)
    assert decoded == letter
    assert decoded.value == ALL_BYTES
    assert decoded.key == b"\xffKEY\x00"
    assert decoded.kafka_key() == b"\xffKEY\x00"
    assert (decoded.source_topic, decoded.partition, decoded.offset) == ("md.ticks", 5, 987)
    assert decoded.error_type == "ContractError"
    assert decoded.error.startswith("cannot parse a tick record")
    assert decoded.consumer == "candles"
    assert decoded.ts_failed_ns > 0


def test_dead_letter_bytes_are_base64_on_the_wire() -> None:
    letter = dead_letter(
        source_topic="oms.orders",
        partition=0,
        offset=1,
        key=None,
        value=b"\x80abc",
        error=ValueError("bad"),
        consumer="fixbridge",
        ts_failed_ns=TS_NS,
    )
    payload = json.loads(DEAD_LETTERS.encode(letter))
    assert payload["type"] == "dead_letter.v1"
    assert payload["key"] is None
    assert base64.b64decode(payload["value"]) == b"\x80abc"


def test_dead_letter_of_a_tombstone_has_no_value() -> None:
    letter = dead_letter_for(FakeMessage(key=b"k", value=None), ValueError("x"), "settle")
    assert DEAD_LETTERS.decode(DEAD_LETTERS.encode(letter)).value is None


def test_dead_letter_truncates_a_huge_error_message() -> None:
    letter = dead_letter_for(FakeMessage(key=None, value=b"x"), ValueError("e" * 10_000), "api")
    assert len(letter.error) == 4096


def test_codecs_by_topic_uses_the_topic_names_from_settings() -> None:
    settings = Settings(
        topic_ticks="t.ticks",
        topic_conflated="t.conflated",
        topic_orders="t.orders",
        topic_execution_reports="t.reports",
        dlq_suffix=".dead",
    )
    codecs = codecs_by_topic(settings)
    assert codecs == {
        "t.ticks": TICKS,
        "t.conflated": CONFLATED_PRICES,
        "t.orders": ORDER_COMMANDS,
        "t.reports": EXECUTION_REPORTS,
        "t.ticks.dead": DEAD_LETTERS,
        "t.conflated.dead": DEAD_LETTERS,
        "t.orders.dead": DEAD_LETTERS,
        "t.reports.dead": DEAD_LETTERS,
    }
    assert codec_for_topic(settings, "t.ticks") is TICKS


def test_codec_for_an_unknown_topic_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="no contract is registered") as caught:
        codec_for_topic(Settings(), "md.unknown")
    assert caught.value.topic == "md.unknown"


def test_contract_error_keeps_the_underlying_msgspec_error_as_cause() -> None:
    with pytest.raises(ContractError) as caught:
        TICKS.decode(b"{")
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)
