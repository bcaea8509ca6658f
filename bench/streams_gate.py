"""Bench only: hold a worker's batch consumers until the bench opens a gate (a file appears).

The workers of a measured run start, load and report ready first; the bench then opens the gate
so they join their consumer group together and no worker drains the topic alone while another
is still starting. Installed by the bench's worker command, never by the project's workers.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from streams.batch_consumer import BatchConsumer

POLL_S = 0.02


def install(gate_dir: str) -> None:
    """Make every BatchConsumer of this process wait for ``gate_dir``/open before it starts."""
    folder = Path(gate_dir)
    original = BatchConsumer.run

    async def gated_run(self: BatchConsumer) -> None:
        (folder / f"ready-{os.getpid()}-{self.topic}").touch()
        while not (folder / "open").exists():
            await asyncio.sleep(POLL_S)
        await original(self)

    BatchConsumer.run = gated_run  # type: ignore[method-assign]


def ready_count(gate_dir: Path) -> int:
    """How many batch consumers wait at the gate (or passed it)."""
    return len(list(gate_dir.glob("ready-*")))


def open_gate(gate_dir: Path) -> None:
    """Let every waiting batch consumer start."""
    (gate_dir / "open").touch()
