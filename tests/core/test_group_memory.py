"""Expired members and empty groups leave no Python objects behind in the coordinator.

The process-level view (RSS of a real broker) is tests/reliability/test_group_memory.py;
this counts what the coordinator itself keeps, exactly, with tracemalloc.
"""

from __future__ import annotations

import gc
import tracemalloc

from minimq.core import Broker, BrokerSettings, ProduceRecord
from minimq.core.groups import GroupCoordinator
from tests.support.memory_storage import MemoryStorage

GROUPS = 10_000


async def test_expired_groups_are_forgotten_and_their_memory_freed() -> None:
    broker = Broker(MemoryStorage(), BrokerSettings(session_timeout_ms=1000))
    await broker.produce("t", [ProduceRecord(b"1")])
    now = [0.0]
    groups = GroupCoordinator(broker.reader, broker.storage.offsets, 1000, monotonic=lambda: now[0])

    async def heartbeat_then_expire(first: int) -> None:
        for n in range(first, first + GROUPS):
            await groups.heartbeat(f"g{n}", "t", f"m{n}")
        assert len(await groups.group_names()) == GROUPS
        now[0] += 1.5  # past every session
        groups.expire_sessions()
        assert await groups.group_names() == []

    await heartbeat_then_expire(0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = []
        for round_number in range(1, 4):
            await heartbeat_then_expire(round_number * GROUPS)
            gc.collect()
            diff = tracemalloc.take_snapshot().compare_to(before, "filename")
            kept.append(sum(stat.size_diff for stat in diff))
    finally:
        tracemalloc.stop()
    # What stays is the group table's slots (a dict never shrinks; about 20 bytes
    # a group at the peak, reused), not the groups: about 1.5 KiB each while alive.
    assert max(kept) < 1024 * 1024, f"bytes kept after each round: {kept}"
    assert kept[2] - kept[1] < 64 * 1024, f"memory grows round after round: {kept}"
