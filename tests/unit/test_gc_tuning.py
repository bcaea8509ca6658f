"""A worker's collector tuning: start-up objects frozen, young collections rarer."""

from __future__ import annotations

import gc
from pathlib import Path

from core.gc_tuning import tune_gc
from core.settings import Settings
from streams.app import create_app


def test_tuning_freezes_what_exists_and_raises_only_the_young_threshold(restored_gc: None) -> None:
    _, gen1, gen2 = gc.get_threshold()
    tune_gc(50_000)
    assert gc.get_threshold() == (50_000, gen1, gen2)
    assert gc.get_freeze_count() > 0


def test_a_zero_threshold_keeps_pythons_own(restored_gc: None) -> None:
    before = gc.get_threshold()
    tune_gc(0)
    assert gc.get_threshold() == before


async def test_the_worker_app_tunes_the_collector_at_its_first_start(
    restored_gc: None, tmp_path: Path
) -> None:
    app = create_app(Settings(streams_gc_gen0_threshold=12_345, streams_data_dir=tmp_path))
    await app.on_first_start()
    assert gc.get_threshold()[0] == 12_345
