"""Worker-count scaling from repeated, interleaved runs, summarised by medians.

Why: on the 2-core bench host the speed of one core moved by up to a third between runs minutes
apart (one worker: 110k-156k ticks/s per busy core in one hour). A scaling figure from one
1-worker run and one 2-worker run carries that noise twice. Runs of each count alternate in
rounds (1, 2 then 2, 1 ...), each round's counts are compared with each other only, and the
median over rounds is the figure; the spread is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class RoundFigures:
    """What one worker group did in one round: messages/s of all workers, busy worker cores."""

    msgs_per_s: float
    workers_busy_cores: float
    host_busy_cores: float

    @property
    def per_core(self) -> float:
        """Messages per second per core the workers kept busy."""
        return self.msgs_per_s / self.workers_busy_cores if self.workers_busy_cores else 0.0


def round_order(workers: Sequence[int], round_index: int) -> list[int]:
    """Worker counts in the order round ``round_index`` runs them: reversed every other round,
    so a drift of the host's speed during the run favours no count."""
    return list(workers) if round_index % 2 == 0 else list(reversed(workers))


def summary(
    count: int, rounds: Sequence[RoundFigures], single: Sequence[RoundFigures] | None = None
) -> dict[str, float]:
    """Median figures of ``count`` workers over the rounds; against ``single`` (1 worker, the same
    rounds) also the scaling, round by round, and its median."""
    if not rounds or count < 1:
        raise ValueError("a summary needs at least one round of at least one worker")
    per_worker = [r.msgs_per_s / count for r in rounds]
    out = {
        "rounds": len(rounds),
        "per_worker": median(per_worker),
        "per_worker_min": min(per_worker),
        "per_worker_max": max(per_worker),
        "ticks_per_s_all_workers": median(r.msgs_per_s for r in rounds),
        "workers_busy_cores": median(r.workers_busy_cores for r in rounds),
        "host_busy_cores": median(r.host_busy_cores for r in rounds),
        "ticks_per_s_per_busy_worker_core": median(r.per_core for r in rounds),
    }
    if single is not None and count != 1:
        if len(single) != len(rounds):
            raise ValueError(f"{len(rounds)} rounds of {count} workers but {len(single)} of one")
        scaling = [r.msgs_per_s / s.msgs_per_s for r, s in zip(rounds, single, strict=True)]
        per_core = [r.per_core / s.per_core for r, s in zip(rounds, single, strict=True)]
        out |= {
            "scaling_vs_1_worker": median(scaling),
            "scaling_min": min(scaling),
            "scaling_max": max(scaling),
            "per_core_vs_1_worker": median(per_core),
        }
    return out
