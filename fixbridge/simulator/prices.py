"""A geometric Brownian motion per instrument, reproducible from a seed, snapped to tick size.

The walk runs on floats for speed (it is the firehose's inner loop) and keeps the unsnapped price,
so snapping never biases the path; what leaves this module is a whole number of ticks or a
``Decimal`` on the tick grid, never a float.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from decimal import Decimal

from fixbridge.simulator.universe import Instrument

# 252 trading days of 6 h 15 min (09:15-15:30): the year a volatility is quoted over.
TRADING_SECONDS_PER_YEAR = 252 * 6.25 * 3600


class PriceWalk:
    """The current price of every instrument; ``step`` moves one of them by one GBM increment."""

    __slots__ = (
        "_drift_dt",
        "_dt_years",
        "_gauss",
        "_level",
        "_mu",
        "_sigma",
        "_tick_float",
        "_ticks",
        "_vol_dt",
        "tick_sizes",
    )

    def __init__(self, instruments: Sequence[Instrument], seed: int) -> None:
        self._gauss = random.Random(seed).gauss  # noqa: S311 - a simulation, not cryptography
        self._mu = [i.drift_annual for i in instruments]
        self._sigma = [i.volatility_annual for i in instruments]
        self._tick_float = [float(i.tick_size) for i in instruments]
        self.tick_sizes = [i.tick_size for i in instruments]
        self._level = [float(i.ref_price) for i in instruments]
        self._ticks = [round(float(i.ref_price) / float(i.tick_size)) for i in instruments]
        self._dt_years = -1.0
        self._drift_dt: list[float] = []
        self._vol_dt: list[float] = []
        self.set_dt(0.0)

    def __len__(self) -> int:
        return len(self._ticks)

    def set_dt(self, dt_years: float) -> None:
        """Fix the time step of ``step``; the GBM coefficients are computed once per change."""
        if dt_years < 0:
            raise ValueError(f"a time step cannot be negative: {dt_years}")
        if dt_years == self._dt_years:
            return
        self._dt_years = dt_years
        pairs = zip(self._mu, self._sigma, strict=True)
        self._drift_dt = [(m - 0.5 * s * s) * dt_years for m, s in pairs]
        self._vol_dt = [s * math.sqrt(dt_years) for s in self._sigma]

    def step(self, index: int) -> int:
        """Move instrument ``index`` forward by one time step; return its price in ticks (>= 1)."""
        level = self._level[index] * math.exp(
            self._drift_dt[index] + self._vol_dt[index] * self._gauss(0.0, 1.0)
        )
        self._level[index] = level
        # A GBM level is always > 0, but a price below half a tick would snap to 0.
        ticks = max(1, round(level / self._tick_float[index]))
        self._ticks[index] = ticks
        return ticks

    def ticks(self, index: int) -> int:
        """The current price of instrument ``index`` as a whole number of ticks."""
        return self._ticks[index]

    def price(self, index: int) -> Decimal:
        """The current price of instrument ``index`` as a Decimal on its tick grid."""
        return self._ticks[index] * self.tick_sizes[index]

    def to_decimal(self, index: int, ticks: int) -> Decimal:
        """A price in ticks of instrument ``index`` as a Decimal."""
        return ticks * self.tick_sizes[index]


def dt_years_per_tick(symbols_count: int, rate_per_s: float, time_scale: float) -> float:
    """The simulated time between two ticks of one symbol when ticks go round-robin."""
    if rate_per_s <= 0:
        return 0.0
    return symbols_count / rate_per_s * time_scale / TRADING_SECONDS_PER_YEAR
