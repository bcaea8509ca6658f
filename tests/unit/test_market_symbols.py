"""Symbols asked in a query are checked before any query: text no symbol has is refused."""

from __future__ import annotations

import pytest

from api.exceptions import InvalidRequestError
from api.services.market import parse_symbol, parse_symbols


def test_a_symbol_is_trimmed_and_upper_cased() -> None:
    assert parse_symbol(" acme ") == "ACME"
    assert parse_symbols("acme, BRK.B,acme", 10) == ["ACME", "BRK.B"]


@pytest.mark.parametrize("text", ["A\x00B", "ACME;--", "\u00c9TAT", "A" * 17, "-ACME", "."])
def test_text_no_symbol_has_is_refused_as_not_a_symbol(text: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse_symbols(f"ACME,{text}", 10)

    assert refused.value.code == "unknown_symbol"
    assert "not a symbol" in refused.value.detail
