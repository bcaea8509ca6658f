from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Price(_message.Message):
    __slots__ = ("symbol", "price_e4", "ts_ns")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PRICE_E4_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    price_e4: int
    ts_ns: int
    def __init__(self, symbol: _Optional[str] = ..., price_e4: _Optional[int] = ..., ts_ns: _Optional[int] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("id", "kind", "prices", "reason")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PRICES: _ClassVar[Frame.Kind]
        SNAPSHOT: _ClassVar[Frame.Kind]
        RESYNC: _ClassVar[Frame.Kind]
    PRICES: Frame.Kind
    SNAPSHOT: Frame.Kind
    RESYNC: Frame.Kind
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: Frame.Kind
    prices: _containers.RepeatedCompositeFieldContainer[Price]
    reason: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[_Union[Frame.Kind, str]] = ..., prices: _Optional[_Iterable[_Union[Price, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...
