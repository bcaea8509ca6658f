"""A process's garbage-collector settings: fewer and cheaper collections on a hot path."""

from __future__ import annotations

import gc


def tune_gc(gen0_threshold: int) -> None:
    """Freeze what start-up allocated, then collect the young generation every ``gen0_threshold``.

    Frozen objects (imported modules, the app and its clients) are never examined again by
    a collection; a higher threshold makes the young collections rarer. 0 keeps the threshold.
    """
    gc.collect()
    gc.freeze()
    if gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
