"""The simulator's instruments: ``core.instruments``' universe plus each symbol's price dynamics.

The symbols, tick and lot sizes and reference prices come from ``core.instruments`` (so the OMS and
the exchange agree on every symbol, synthetic ones included); drift and volatility are the
simulator's own and are derived from the symbol, so the same universe always moves the same way
for a given walk seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from core import instruments as core_instruments
from fixbridge.exceptions import SimulatorConfigError

SYMBOLS_COUNT_MAX = 20_000
_VOLATILITY_ANNUAL_MIN = 0.15
_VOLATILITY_ANNUAL_SPAN = 0.45
_DRIFT_ANNUAL_MIN = -0.05
_DRIFT_ANNUAL_SPAN = 0.20


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol as the exchange simulator sees it."""

    symbol: str
    tick_size: Decimal
    lot_size: int
    ref_price: Decimal
    drift_annual: float  # mu of the geometric Brownian motion, per year
    volatility_annual: float  # sigma of the geometric Brownian motion, per sqrt(year)


def _unit(symbol: str, salt: str) -> float:
    """A number in [0, 1) fixed by ``symbol`` and ``salt`` (not by Python's hash seed)."""
    digest = hashlib.blake2b(f"{salt}:{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def with_dynamics(base: core_instruments.Instrument) -> Instrument:
    """The simulator's view of a listed instrument: its drift and volatility added."""
    return Instrument(
        symbol=base.symbol,
        tick_size=base.tick_size,
        lot_size=base.lot_size,
        ref_price=base.reference_price,
        drift_annual=_DRIFT_ANNUAL_MIN + _DRIFT_ANNUAL_SPAN * _unit(base.symbol, "drift"),
        volatility_annual=_VOLATILITY_ANNUAL_MIN
        + _VOLATILITY_ANNUAL_SPAN * _unit(base.symbol, "volatility"),
    )


def build_universe(
    count: int, bases: Sequence[core_instruments.Instrument] | None = None
) -> list[Instrument]:
    """The first ``count`` instruments of the shared universe (or of ``bases``), with dynamics."""
    if not 1 <= count <= SYMBOLS_COUNT_MAX:
        raise SimulatorConfigError(
            f"BROKER_SIM_SYMBOLS_COUNT must be 1..{SYMBOLS_COUNT_MAX}, got {count}"
        )
    chosen = core_instruments.instrument_universe(count) if bases is None else bases[:count]
    return [with_dynamics(base) for base in chosen]
