"""A worker's garbage-collector settings: fewer and cheaper collections on the tick hot path."""

from __future__ import annotations

import gc


def tune_gc(gen0_threshold: int) -> None:
    """Freeze what start-up allocated, then collect the young generation every ``gen0_threshold``.

    Frozen objects (the imported Faust, aiokafka and agent modules) are never examined again by
    a collection; a higher threshold makes the young collections rarer. 0 keeps the threshold.
    """
    gc.collect()
    gc.freeze()
    if gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
