"""Wire-level building blocks shared by every contract: the record base, decimals, checks.

Decimals travel as JSON strings. msgspec would also accept a JSON number for a ``Decimal`` field;
contracts refuse that, because other readers of the topics (jq, Kafka UIs, other languages) parse
JSON numbers as binary floats. Fields typed ``DecimalStr`` accept only strings on decode.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import msgspec

from core.money import is_money

SYMBOL_LEN_MAX = 16
ID_LEN_MAX = 64
# The same rule as the CHECK on instruments.symbol in sql/migrations/0003_orders.sql.
_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,15}")
# The canonical text of a UUID as ``str(uuid.uuid4())`` writes it: lower case, hyphenated.
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The tick firehose repeats a few thousand symbols and prices: each distinct decimal string,
# symbol and price is checked once, not once per message (checks were a third of decoding a
# tick). Only valid values are cached; a bad one is checked, and refused, every time. The
# caches are bounded (LRU: a random walk revisits recent prices), ~2 MB at most in a process.
DECIMAL_CACHE_SIZE = 4_096
SYMBOL_CACHE_SIZE = 65_536
_valid_symbols: set[str] = set()


class Record(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every Kafka record: immutable, tagged with ``type`` = "<name>.v<version>"."""


if TYPE_CHECKING:
    DecimalStr = Decimal
else:

    class _DecimalStrMeta(type):
        # msgspec checks a dec_hook's result with isinstance; this lets the hook return a
        # plain Decimal, so decoded records hold exact Decimals, never a subclass.
        def __instancecheck__(cls, obj: object) -> bool:
            return type(obj) is Decimal

    class DecimalStr(metaclass=_DecimalStrMeta):
        """Marker type: a Decimal field that is a JSON string on the wire."""


def dec_hook(type_: type[Any], obj: Any) -> Any:
    """Decode a ``DecimalStr`` field from its JSON string; refuse numbers and non-finite values."""
    if type_ is not DecimalStr:
        raise NotImplementedError(f"no decoder for {type_!r}")
    if type(obj) is not str:
        raise ValueError(f"a decimal must be a JSON string, got {type(obj).__name__}")
    return _decimal_of(obj)


@functools.lru_cache(maxsize=DECIMAL_CACHE_SIZE)
def _decimal_of(obj: str) -> Decimal:
    # Decimals are immutable, so one parsed value can stand in every record that carries it.
    # Decimal() tolerates spaces and underscores; the wire format does not.
    if "_" in obj or obj.strip() != obj:
        raise ValueError(f"{obj!r} is not a plain decimal string")
    try:
        value = Decimal(obj)
    except InvalidOperation:
        raise ValueError(f"{obj!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{obj!r} is not a finite decimal")
    return value


def check_symbol(value: str) -> None:
    """Raise ValueError unless ``value`` is an upper-case ticker of 1 to 16 characters."""
    if type(value) is str and value in _valid_symbols:
        return
    if type(value) is not str or _SYMBOL_RE.fullmatch(value) is None:
        raise ValueError(
            f"symbol must be 1-{SYMBOL_LEN_MAX} characters of A-Z, 0-9, '.', '-' "
            f"starting with a letter or digit, got {value!r}"
        )
    if len(_valid_symbols) >= SYMBOL_CACHE_SIZE:
        _valid_symbols.clear()
    _valid_symbols.add(value)


def check_uuid(value: str, name: str) -> None:
    """Raise ValueError unless ``value`` is a UUID in canonical lower-case text."""
    if type(value) is not str or _UUID_RE.fullmatch(value) is None:
        raise ValueError(f"{name} must be a lower-case hyphenated UUID, got {value!r}")


def check_text(value: str, name: str, len_max: int = ID_LEN_MAX) -> None:
    """Raise ValueError unless ``value`` is a non-empty string of at most ``len_max`` chars."""
    if type(value) is not str or not 0 < len(value) <= len_max:
        raise ValueError(f"{name} must be a non-empty string of at most {len_max} characters")


def check_price(value: Decimal, name: str) -> None:
    """Raise ValueError unless ``value`` is a positive Decimal that fits NUMERIC(18,4)."""
    # The type test comes first: 1 and Decimal(1) are equal keys to the cache. A signalling
    # NaN cannot be hashed, so non-finite values are refused before the cache is asked.
    if type(value) is not Decimal or not value.is_finite() or not _is_positive_money(value):
        raise ValueError(
            f"{name} must be a positive Decimal below 10**14 with at most 4 places, got {value!r}"
        )


@functools.lru_cache(maxsize=DECIMAL_CACHE_SIZE)
def _is_positive_money(value: Decimal) -> bool:
    return is_money(value) and value > 0


def check_money(value: Decimal, name: str) -> None:
    """Raise ValueError unless ``value`` is a non-negative Decimal that fits NUMERIC(18,4)."""
    if not is_money(value) or value < 0:
        raise ValueError(
            f"{name} must be a Decimal >= 0 below 10**14 with at most 4 places, got {value!r}"
        )


def check_int(value: int, name: str, minimum: int) -> None:
    """Raise ValueError unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if type(value) is not int or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def check(condition: bool, message: str) -> None:
    """Raise ValueError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(message)
