"""The settle agent's lanes across overlapping batches: one user's reports stay in offset order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from core.contracts import EXECUTION_REPORTS, ExecType, ExecutionReport, OrderStatus, Side
from core.settings import Settings
from streams import settle

ANN, BOB = 1, 2  # different lanes: a lane is hash(user id) % settle_concurrency


def _fill(order_id: uuid.UUID, n: int, exec_id: str = "") -> ExecutionReport:
    return ExecutionReport(
        exec_id=exec_id or f"{order_id.hex[-4:]}-{n}",
        order_id=str(order_id),
        exec_type=ExecType.PARTIAL_FILL,
        order_status=OrderStatus.PARTIALLY_FILLED,
        symbol="AAPL",
        side=Side.BUY,
        last_qty=1,
        last_px=Decimal("100.00"),
        cum_qty=n,
        leaves_qty=100 - n,
        avg_px=Decimal("100.00"),
        ts_transact_ns=time.time_ns(),
    )


def _messages(offset: int, reports: Sequence[ExecutionReport]) -> list[ConsumerRecord[Any, Any]]:
    return [
        ConsumerRecord(
            "reports", 0, offset + i, 0, 0, None, EXECUTION_REPORTS.encode(r), None, 1, 1, []
        )
        for i, r in enumerate(reports)
    ]


class _Lanes:
    """Stands in for the database: records what each lane settles, and when."""

    def __init__(self, owners: dict[uuid.UUID, int]) -> None:
        self.owners = {str(k): v for k, v in owners.items()}
        self.applied: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}

    def gate(self, exec_id: str) -> asyncio.Event:
        """A lane holding ``exec_id`` first waits for this event."""
        self.started[exec_id] = asyncio.Event()
        return self.gates.setdefault(exec_id, asyncio.Event())

    async def order_users(self, pool: object, order_ids: list[str]) -> dict[str, int]:
        return {o: self.owners[o] for o in order_ids}

    async def settle_lane(self, pool: object, items: list[settle.Item]) -> None:
        for _, report in items:
            if report.exec_id in self.gates:
                self.started[report.exec_id].set()
                await self.gates[report.exec_id].wait()
            if report.exec_id.endswith("fail"):
                raise RuntimeError("this lane failed")
        self.applied.extend(report.exec_id for _, report in items)


@pytest.fixture
def lanes(monkeypatch: pytest.MonkeyPatch) -> _Lanes:
    ann_order, bob_order = uuid.UUID(int=1), uuid.UUID(int=2)
    fake = _Lanes({ann_order: ANN, bob_order: BOB})
    monkeypatch.setattr(settle._State, "lane_tails", {})
    monkeypatch.setattr(settle, "_order_users", fake.order_users)
    monkeypatch.setattr(settle, "_settle_lane", fake.settle_lane)
    monkeypatch.setattr(settle, "settings", Settings(settle_concurrency=4))
    return fake


async def test_a_users_lane_of_the_next_batch_waits_for_the_same_lane_of_the_batch_before(
    lanes: _Lanes,
) -> None:
    ann, bob = uuid.UUID(int=1), uuid.UUID(int=2)
    first = [_fill(ann, 1), _fill(ann, 2)]
    second = [_fill(ann, 3), _fill(bob, 1)]
    held = lanes.gate(first[1].exec_id)

    one = asyncio.ensure_future(settle.settle_batch(None, _messages(0, first)))  # type: ignore[arg-type]
    await asyncio.wait_for(lanes.started[first[1].exec_id].wait(), 5)
    two = asyncio.ensure_future(settle.settle_batch(None, _messages(2, second)))  # type: ignore[arg-type]
    # Bob's lane does not wait for Ann's; Ann's third fill waits for her first two.
    for _ in range(20):
        await asyncio.sleep(0)
    assert lanes.applied == [second[1].exec_id]

    held.set()
    await asyncio.wait_for(asyncio.gather(one, two), 5)
    assert [e for e in lanes.applied if e.startswith(ann.hex[-4:])] == [
        first[0].exec_id,
        first[1].exec_id,
        second[0].exec_id,
    ]


async def test_a_lane_after_a_failed_lane_still_runs_once_it_is_over(lanes: _Lanes) -> None:
    ann = uuid.UUID(int=1)
    bad = _fill(ann, 1, exec_id="bad-fail")
    held = lanes.gate(bad.exec_id)
    later = _fill(ann, 2)

    one = asyncio.ensure_future(settle.settle_batch(None, _messages(0, [bad])))  # type: ignore[arg-type]
    await asyncio.wait_for(lanes.started[bad.exec_id].wait(), 5)
    two = asyncio.ensure_future(settle.settle_batch(None, _messages(1, [later])))  # type: ignore[arg-type]
    for _ in range(20):
        await asyncio.sleep(0)
    assert lanes.applied == []

    held.set()
    with pytest.raises(RuntimeError, match="this lane failed"):
        await asyncio.wait_for(one, 5)
    await asyncio.wait_for(two, 5)
    assert lanes.applied == [later.exec_id]
