"""The random walk: reproducible from its seed, on the tick grid, always positive."""

from __future__ import annotations

from decimal import Decimal

from core.money import is_on_tick
from fixbridge.simulator.prices import PriceWalk, dt_years_per_tick
from fixbridge.simulator.universe import Instrument, build_universe


def path(seed: int, steps: int = 2_000) -> list[Decimal]:
    universe = build_universe(50)
    walk = PriceWalk(universe, seed)
    walk.set_dt(dt_years_per_tick(len(universe), 1_000, 3600))
    out = []
    for n in range(steps):
        index = n % len(universe)
        out.append(walk.to_decimal(index, walk.step(index)))
    return out


def test_same_seed_same_path_other_seed_other_path() -> None:
    assert path(7) == path(7)
    assert path(7) != path(8)


def test_every_price_is_positive_and_on_its_tick() -> None:
    universe = build_universe(50)
    walk = PriceWalk(universe, 3)
    walk.set_dt(0.01)  # violent: a hundredth of a year per step
    for n in range(5_000):
        index = n % len(universe)
        price = walk.to_decimal(index, walk.step(index))
        assert price > 0
        assert is_on_tick(price, universe[index].tick_size)
        assert price == walk.price(index)


def test_a_crashing_price_stays_at_least_one_tick() -> None:
    penny = Instrument("PENNY", Decimal("0.05"), 1, Decimal("0.05"), -50.0, 3.0)
    walk = PriceWalk([penny], 1)
    walk.set_dt(1.0)
    assert min(walk.step(0) for _ in range(200)) == 1


def test_universe_is_deterministic_and_extends_past_the_default_list() -> None:
    big = build_universe(3_000)
    assert len(big) == 3_000 and len({i.symbol for i in big}) == 3_000
    assert build_universe(3_000) == big
    assert big[:50] == build_universe(50)
    assert all(0.15 <= i.volatility_annual <= 0.6 for i in big)
    assert all(i.ref_price > 0 and is_on_tick(i.ref_price, i.tick_size) for i in big)
