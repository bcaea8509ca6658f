"""Reference data every environment needs: the instrument universe the exchange trades."""

from __future__ import annotations

import asyncio

import psycopg

from core.instruments import instrument_universe, seed_instruments
from core.settings import Settings


async def _seed(settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(settings.pg_dsn) as conn:
        count = await seed_instruments(conn, instrument_universe(settings.sim_symbols_count))
        await conn.commit()
    return count


def seed_reference_data(settings: Settings) -> int:
    """Upsert the instruments of the simulator's universe; return how many."""
    return asyncio.run(_seed(settings))
