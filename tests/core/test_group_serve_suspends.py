"""Group fetches on a backend whose reads really suspend (as a networked one's do).

On the disk engine a group fetch's reads never give the event loop away, so a
join could only interleave with the commit. A JetStream gateway awaits the
network for the committed offsets, the bounds and the records: a join (which
rebalances without the group's lock) then lands in the middle of a fetch. The
fetch must not be served in the generation that ended meanwhile, or the new
owner of a partition gets the same records (the churn checker saw both a
``KeyError`` answered as 500 and records handed to two live members).
"""

from __future__ import annotations

import asyncio

import pytest

from minimq.core import Broker, BrokerSettings, FetchLimits, ProduceRecord
from minimq.errors import StaleGeneration
from tests.support.memory_storage import MemoryPartitionLog, MemoryStorage


class SuspendingStorage(MemoryStorage):
    """The fake, but every read and bounds call first yields to the event loop a few times."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()

    def arm(self) -> None:
        for (_, _), plog in self.logs.partitions.items():
            _suspend_reads(plog, self.reading)


def _suspend_reads(plog: MemoryPartitionLog, reading: asyncio.Event) -> None:
    read, bounds = plog.read, plog.bounds

    async def slow_read(offset: int, max_records: int, max_bytes: int):  # type: ignore[no-untyped-def]
        reading.set()
        for _ in range(5):
            await asyncio.sleep(0)
        return await read(offset, max_records, max_bytes)

    async def slow_bounds():  # type: ignore[no-untyped-def]
        reading.set()
        for _ in range(5):
            await asyncio.sleep(0)
        return await bounds()

    plog.read = slow_read  # type: ignore[method-assign]
    plog.bounds = slow_bounds  # type: ignore[method-assign]


async def joined_during_fetch(*, pinned: bool) -> tuple[object, object, list[int]]:
    storage = SuspendingStorage()
    broker = Broker(storage, BrokerSettings(default_partitions=2))
    # In the partition the join moves to b (range assignment: a keeps 0, b gets 1).
    await broker.produce("t", [ProduceRecord(str(i).encode(), partition=1) for i in range(5)])
    groups = broker.groups
    first = await groups.join("g", "t", "a")
    assert first.assignment == [0, 1]
    storage.arm()
    fetch = asyncio.ensure_future(
        groups.fetch(
            "g",
            "t",
            "a",
            FetchLimits(max_records=10),
            generation=first.generation if pinned else None,
            commit=True,
        )
    )
    await storage.reading.wait()
    second = await groups.join("g", "t", "b")  # rebalances while a's fetch is suspended
    b_owns = second.assignment
    assert b_owns == [1]
    outcome = await asyncio.gather(fetch, return_exceptions=True)
    b_got = await groups.fetch(
        "g", "t", "b", FetchLimits(max_records=10), generation=second.generation, commit=True
    )
    return outcome[0], b_got, b_owns


async def test_a_fetch_whose_generation_ends_while_it_reads_is_refused() -> None:
    a_outcome, b_got, _ = await joined_during_fetch(pinned=True)
    assert isinstance(a_outcome, StaleGeneration), a_outcome
    b_offsets = [(item.partition, item.record.offset) for item in b_got.records]  # type: ignore[attr-defined]
    assert b_offsets == [(1, i) for i in range(5)], "nothing committed by a: b reads all"


async def test_no_record_goes_to_two_members_when_a_join_lands_mid_fetch() -> None:
    a_outcome, b_got, _ = await joined_during_fetch(pinned=False)
    if isinstance(a_outcome, BaseException):
        pytest.fail(f"an unpinned fetch is set up again in the new generation, not {a_outcome!r}")
    a_offsets = {(item.partition, item.record.offset) for item in a_outcome.records}  # type: ignore[attr-defined]
    b_offsets = {(item.partition, item.record.offset) for item in b_got.records}  # type: ignore[attr-defined]
    assert not a_offsets & b_offsets, f"handed to both a and b: {sorted(a_offsets & b_offsets)}"
    assert a_offsets | b_offsets == {(1, i) for i in range(5)}, "every record to one of them"
