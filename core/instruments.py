"""The default instrument universe shared by the OMS and the exchange simulator, and its seeding.

Fifty fictional listed companies, written out so a symbol's tick size and reference price never
change between runs; larger universes (the simulator's ``sim_symbols_count``) extend them with
synthetic symbols drawn from a seeded generator, so every process derives the same list.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.db import AsyncConn
from core.money import to_price

# (symbol, name, tick size, reference price). Tick sizes are 0.05 for the dearer names and 0.01
# for the cheaper ones, as on an equity exchange with price bands.
_LISTED: tuple[tuple[str, str, str, str], ...] = (
    ("ACME", "Acme Industries", "0.05", "1520.40"),
    ("ALPHA", "Alpha Power", "0.05", "642.35"),
    ("APEXB", "Apex Bank", "0.05", "1488.10"),
    ("ARCOS", "Arcos Cement", "0.05", "9120.55"),
    ("ATLAS", "Atlas Motors", "0.05", "774.20"),
    ("AURUM", "Aurum Jewels", "0.05", "3310.00"),
    ("AXION", "Axion Chemicals", "0.01", "86.42"),
    ("BEACON", "Beacon Telecom", "0.05", "1189.65"),
    ("BOREAL", "Boreal Paper", "0.01", "42.17"),
    ("CASCADE", "Cascade Hydro", "0.01", "23.81"),
    ("CEDAR", "Cedar Housing Finance", "0.05", "512.90"),
    ("COBALT", "Cobalt Mining", "0.05", "288.45"),
    ("CORONA", "Corona Breweries", "0.05", "1675.30"),
    ("DELTA", "Delta Logistics", "0.05", "402.15"),
    ("DYNAMO", "Dynamo Electricals", "0.05", "2256.80"),
    ("EMBER", "Ember Gas", "0.01", "57.63"),
    ("EQUINOX", "Equinox Pharma", "0.05", "1398.25"),
    ("FALCON", "Falcon Airways", "0.05", "4105.70"),
    ("FERRO", "Ferro Steel", "0.01", "131.08"),
    ("GALAXY", "Galaxy Software", "0.05", "1832.45"),
    ("GRANITE", "Granite Infra", "0.01", "74.56"),
    ("HARBOR", "Harbor Ports", "0.05", "1247.60"),
    ("HELIOS", "Helios Solar", "0.05", "958.35"),
    ("HORIZON", "Horizon Media", "0.01", "18.94"),
    ("IONIC", "Ionic Batteries", "0.05", "689.10"),
    ("JADE", "Jade Textiles", "0.01", "35.29"),
    ("KESTREL", "Kestrel Defence", "0.05", "5420.85"),
    ("LOTUS", "Lotus Consumer", "0.05", "2544.40"),
    ("LUMEN", "Lumen Lighting", "0.01", "97.71"),
    ("MAGNA", "Magna Finance", "0.05", "7015.25"),
    ("MERIDIAN", "Meridian Hotels", "0.05", "612.05"),
    ("NEBULA", "Nebula Semiconductors", "0.05", "2890.15"),
    ("NIMBUS", "Nimbus Cloud", "0.05", "1104.50"),
    ("NOVA", "Nova Insurance", "0.05", "1632.95"),
    ("OASIS", "Oasis Water", "0.01", "64.38"),
    ("ORBIT", "Orbit Satellite", "0.05", "845.75"),
    ("PINNACLE", "Pinnacle Realty", "0.05", "377.60"),
    ("PRISM", "Prism Optics", "0.05", "1010.20"),
    ("QUANTA", "Quanta Analytics", "0.05", "4388.35"),
    ("QUASAR", "Quasar Foods", "0.01", "148.92"),
    ("RADIANT", "Radiant Health", "0.05", "722.40"),
    ("SEQUOIA", "Sequoia Forest Products", "0.01", "29.46"),
    ("SUMMIT", "Summit Capital", "0.05", "2071.15"),
    ("TANGENT", "Tangent Engineering", "0.05", "1563.80"),
    ("TERRA", "Terra Fertilisers", "0.01", "112.37"),
    ("TITAN", "Titan Shipbuilding", "0.05", "931.55"),
    ("UNITY", "Unity Retail", "0.05", "468.25"),
    ("VERTEX", "Vertex Auto Parts", "0.05", "3675.90"),
    ("ZENITH", "Zenith Telecom Towers", "0.01", "82.14"),
    ("ZEPHYR", "Zephyr Wind", "0.01", "15.73"),
)
# Seeds the synthetic symbols beyond the listed ones.
UNIVERSE_SEED = 20240915
_SYNTHETIC_PRICE_MIN = 10
_SYNTHETIC_PRICE_MAX = 5000


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable symbol: price increments (tick), share increments (lot), a starting price."""

    symbol: str
    name: str
    tick_size: Decimal
    reference_price: Decimal
    lot_size: int = 1


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = tuple(
    Instrument(symbol, name, Decimal(tick), Decimal(price)) for symbol, name, tick, price in _LISTED
)


def instrument_universe(count: int = len(_LISTED), seed: int = UNIVERSE_SEED) -> list[Instrument]:
    """The first ``count`` instruments: the listed ones, then deterministic synthetic ones."""
    if count < 1:
        raise ValueError(f"an instrument universe needs at least one symbol, got {count}")
    listed = list(DEFAULT_INSTRUMENTS[:count])
    # Not cryptographic: a reproducible stream of prices so every process agrees.
    rng = random.Random(seed)  # noqa: S311
    synthetic = []
    for n in range(len(listed) + 1, count + 1):
        tick = Decimal("0.05") if rng.random() < 0.5 else Decimal("0.01")
        cents = rng.randint(_SYNTHETIC_PRICE_MIN * 100, _SYNTHETIC_PRICE_MAX * 100)
        price = to_price(Decimal(cents) / 100, tick)
        synthetic.append(Instrument(f"SYN{n:05d}", f"Synthetic {n}", tick, price))
    return listed + synthetic


async def seed_instruments(conn: AsyncConn, instruments: Sequence[Instrument]) -> int:
    """Insert or update the instruments (symbol, name, tick and lot size); return how many.

    Runs in the caller's transaction: the caller commits (or leaves the connection's block).
    """
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO instruments (symbol, name, tick_size, lot_size, is_active)"
            " VALUES (%s, %s, %s, %s, true)"
            " ON CONFLICT (symbol) DO UPDATE SET name = EXCLUDED.name,"
            " tick_size = EXCLUDED.tick_size, lot_size = EXCLUDED.lot_size, is_active = true",
            [(i.symbol, i.name, i.tick_size, i.lot_size) for i in instruments],
        )
    return len(instruments)
