"""The group coordinator with concurrent tasks on the in-memory storage fake.

Each defect found in review has a test here: rebalance during a committing
fetch, a failed commit, a member that owns nothing, unfenced commits, ghost
members and lag of uncommitted partitions.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from minimq.core import (
    Broker,
    BrokerSettings,
    CommitOffset,
    FetchLimits,
    ProduceRecord,
    StartPosition,
)
from minimq.core.groups import GroupState
from minimq.core.topic_config import TopicConfig
from minimq.errors import (
    GroupHasMembers,
    GroupNotFound,
    InconsistentGroupProtocol,
    InvalidRequest,
    MemberFenced,
    NotPartitionOwner,
    StaleGeneration,
    StorageError,
    StorageFull,
    UnknownMember,
)
from tests.support.memory_storage import MemoryStorage


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_broker(partitions: int = 1, session_timeout_ms: int = 10_000) -> Broker:
    settings = BrokerSettings(default_partitions=partitions, session_timeout_ms=session_timeout_ms)
    return Broker(MemoryStorage(), settings)


async def produce(broker: Broker, topic: str, count: int, partition: int | None = None) -> None:
    await broker.produce(
        topic, [ProduceRecord(str(i).encode(), partition=partition) for i in range(count)]
    )


def offsets_of(result: object) -> list[tuple[int, int]]:
    return [(item.partition, item.record.offset) for item in result.records]  # type: ignore[attr-defined]


async def test_join_returns_member_generation_and_assignment_and_joins_bump_it() -> None:
    broker = make_broker(partitions=4)
    await produce(broker, "t", 1)
    groups = broker.groups
    first = await groups.join("g", "t", "m1")
    assert (first.member_id, first.assignment) == ("m1", [0, 1, 2, 3])
    second = await groups.join("g", "t", "m2")
    assert second.generation > first.generation
    assert second.assignment == [2, 3]
    again = await groups.join("g", "t", "m1")
    assert again.generation == second.generation, "a known member's join is no rebalance"
    assert again.assignment == [0, 1]
    generated = await groups.join("g", "t")
    assert len(generated.member_id) == 32


async def test_a_member_that_joins_again_reads_again_from_the_committed_offsets() -> None:
    broker = make_broker(partitions=2)
    await produce(broker, "t", 6, partition=0)
    groups = broker.groups
    a = await groups.join("g", "t", "a")
    got = await groups.fetch("g", "t", "a", FetchLimits(max_records=4), generation=a.generation)
    assert offsets_of(got) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    await groups.commit("g", [CommitOffset("t", 0, 2)], "a", a.generation)
    await groups.join("g", "t", "b")  # a keeps partition 0; its commit of 4 would now be refused
    with pytest.raises(StaleGeneration):
        await groups.commit("g", [CommitOffset("t", 0, 4)], "a", a.generation)
    again = await groups.join("g", "t", "a")
    redo = await groups.fetch("g", "t", "a", FetchLimits(), generation=again.generation)
    assert offsets_of(redo) == [(0, o) for o in range(2, 6)], "reads since the commit come again"


async def test_stale_generation_and_unknown_member_are_fenced() -> None:
    broker = make_broker(partitions=2)
    await produce(broker, "t", 4)
    groups = broker.groups
    old = await groups.join("g", "t", "m1")
    await groups.join("g", "t", "m2")
    with pytest.raises(StaleGeneration):
        await groups.fetch("g", "t", "m1", FetchLimits(), generation=old.generation)
    with pytest.raises(StaleGeneration):
        await groups.heartbeat("g", "t", "m1", old.generation)
    with pytest.raises(UnknownMember):
        await groups.fetch("g", "t", "gone", FetchLimits(), generation=old.generation)
    with pytest.raises(UnknownMember):
        await groups.heartbeat("g", "t", "gone", 1)


async def test_rebalance_during_a_committing_fetch_hands_no_record_twice() -> None:
    """Defect 1: the new owner's positions were set before the group lock, from a stale copy."""
    broker = make_broker()
    await produce(broker, "t", 20)
    groups = broker.groups
    store = broker.storage.offsets
    m1 = await groups.join("g", "t", "m1")
    store.gate = asyncio.Event()
    first = asyncio.create_task(
        groups.fetch(
            "g", "t", "m1", FetchLimits(max_records=10), generation=m1.generation, commit=True
        )
    )
    await asyncio.sleep(0.01)  # m1 has read 0-9 and waits in its commit
    groups.leave("g", "t", "m1")
    await groups.join("g", "t", "m2")
    second = asyncio.create_task(
        groups.fetch("g", "t", "m2", FetchLimits(max_records=10), commit=True)
    )
    await asyncio.sleep(0.01)
    store.gate.set()
    got_first, got_second = await first, await second
    assert offsets_of(got_first) == [(0, o) for o in range(10)]
    assert offsets_of(got_second) == [(0, o) for o in range(10, 20)]
    assert await store.committed("g") == {("t", 0): 20}


async def test_a_failed_commit_skips_nothing_and_the_records_come_again() -> None:
    """Defect 2: the position moved before the commit, so 5-9 were never delivered."""
    broker = make_broker()
    await produce(broker, "t", 15)
    groups = broker.groups
    store = broker.storage.offsets
    member = await groups.join("g", "t", "m")
    limits = FetchLimits(max_records=5)
    gen = member.generation
    assert offsets_of(await groups.fetch("g", "t", "m", limits, generation=gen, commit=True)) == [
        (0, o) for o in range(5)
    ]
    store.failures.append(StorageFull("disk is full"))
    with pytest.raises(StorageFull):
        await groups.fetch("g", "t", "m", limits, generation=gen, commit=True)
    assert await store.committed("g") == {("t", 0): 5}
    again = await groups.fetch("g", "t", "m", limits, generation=gen, commit=True)
    assert offsets_of(again) == [(0, o) for o in range(5, 10)]
    rest = await groups.fetch("g", "t", "m", limits, generation=gen, commit=True)
    assert offsets_of(rest) == [(0, o) for o in range(10, 15)]
    assert await store.committed("g") == {("t", 0): 15}


async def test_a_failed_commit_without_membership_skips_nothing() -> None:
    broker = make_broker()
    await produce(broker, "t", 3)
    broker.storage.offsets.failures.append(StorageError("offsets database: disk I/O error"))
    with pytest.raises(StorageError):
        await broker.groups.consume("t", "c")
    taken = [await broker.groups.consume("t", "c") for _ in range(4)]
    assert [m.record.offset if m else None for m in taken] == [0, 1, 2, None]


async def test_a_member_that_owns_nothing_waits_and_wakes_when_it_gets_a_partition() -> None:
    """Defect 4: a standby member returned at once instead of waiting wait_ms."""
    broker = make_broker()
    await produce(broker, "t", 3)
    groups = broker.groups
    await groups.join("g", "t", "a")
    standby = await groups.join("g", "t", "b")
    assert standby.assignment == []
    started = time.monotonic()
    idle = await groups.fetch("g", "t", "b", FetchLimits(wait_ms=300))
    assert idle.records == [] and idle.assignment == []
    assert time.monotonic() - started >= 0.25, "a member with no partition must wait wait_ms"
    waiting = asyncio.create_task(groups.fetch("g", "t", "b", FetchLimits(wait_ms=20_000)))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    groups.leave("g", "t", "a")
    woken = await asyncio.wait_for(waiting, 10)
    assert woken.assignment == [0]
    assert offsets_of(woken) == [(0, 0), (0, 1), (0, 2)]


async def test_commits_are_fenced_by_generation_and_ownership() -> None:
    """Defect 5: a stale member moved the committed offset from 80 back to 3."""
    broker = make_broker(partitions=2)
    await produce(broker, "t", 100, partition=0)
    groups = broker.groups
    old = await groups.join("g", "t", "a")
    now = await groups.join("g", "t", "b")
    assert now.assignment == [1]
    a_now = await groups.join("g", "t", "a")
    await groups.commit("g", [CommitOffset("t", 0, 80)], "a", a_now.generation)
    with pytest.raises(StaleGeneration):
        await groups.commit("g", [CommitOffset("t", 0, 3)], "a", old.generation)
    with pytest.raises(NotPartitionOwner):
        await groups.commit("g", [CommitOffset("t", 0, 3)], "b", now.generation)
    with pytest.raises(UnknownMember):
        await groups.commit("g", [CommitOffset("t", 0, 3)], "ghost", now.generation)
    with pytest.raises(GroupHasMembers):
        await groups.commit("g", [CommitOffset("t", 0, 3)])
    with pytest.raises(InvalidRequest):
        await groups.commit("g", [CommitOffset("t", 0, 3)], "a")
    assert await broker.storage.offsets.committed("g") == {("t", 0): 80}


async def test_requests_without_member_id_never_become_members() -> None:
    """Defect 6: an anonymous fetch joined a generated member that stalled the real one."""
    broker = make_broker(partitions=2)
    await produce(broker, "t", 4)
    groups = broker.groups
    anonymous = await groups.fetch("g", "t", None, FetchLimits(), commit=True)
    assert anonymous.member_id is None and anonymous.generation is None
    assert len(anonymous.records) == 4
    with pytest.raises(GroupNotFound):
        await groups.describe("nobody")
    assert (await groups.describe("g")).members == []
    real = await groups.join("g", "t", "real")
    assert real.assignment == [0, 1]
    with pytest.raises(GroupHasMembers):
        await groups.fetch("g", "t", None, FetchLimits(), commit=True)
    with pytest.raises(GroupHasMembers):
        await groups.consume("t", "g")
    assert (await groups.join("g", "t", "real")).assignment == [0, 1], "nobody took partitions away"


async def test_describe_and_lag_cover_every_partition_committed_or_not() -> None:
    """Defect 7: partitions without a commit were left out (8,176 shown of 99,976)."""
    broker = make_broker()
    await broker.create_topic("t", TopicConfig(partitions=12))
    for partition in range(12):
        await produce(broker, "t", 10 + partition, partition=partition)
    groups = broker.groups
    member = await groups.join("g", "t", "m")
    await groups.commit(
        "g", [CommitOffset("t", 0, 4), CommitOffset("t", 3, 13)], "m", member.generation
    )
    info = await groups.describe("g")
    assert [(o.partition, o.committed_offset) for o in info.offsets] == [
        (p, {0: 4, 3: 13}.get(p)) for p in range(12)
    ]
    backlog = sum(10 + p for p in range(12)) - 4 - 13
    assert info.total_lag == backlog
    assert sum(offset.lag for _, offset in await groups.lags()) == backlog
    (summary,) = await groups.list_groups()
    assert summary.total_lag == backlog


async def test_session_expiry_uses_the_monotonic_clock_and_moves_partitions() -> None:
    broker = make_broker(partitions=2, session_timeout_ms=1000)
    clock = FakeClock()
    broker.groups._monotonic = clock
    await produce(broker, "t", 2)
    groups = broker.groups
    await groups.join("g", "t", "a")
    b = await groups.join("g", "t", "b")
    clock.now += 0.6
    await groups.heartbeat("g", "t", "b", b.generation)
    clock.now += 0.6
    groups.expire_sessions()
    after = await groups.heartbeat("g", "t", "b")
    assert after.assignment == [0, 1] and after.generation > b.generation
    assert [m.member_id for m in (await groups.describe("g")).members] == ["b"]
    clock.now += 5
    groups.expire_sessions()
    assert groups._groups == {}, "an empty group leaves nothing in memory"


async def test_a_long_poll_keeps_its_member_alive() -> None:
    broker = make_broker(session_timeout_ms=1000)
    clock = FakeClock()
    broker.groups._monotonic = clock
    await broker.create_topic("t", TopicConfig())
    groups = broker.groups
    m = await groups.join("g", "t", "m")
    waiting = asyncio.create_task(groups.fetch("g", "t", "m", FetchLimits(wait_ms=20_000)))
    await asyncio.sleep(0.02)
    clock.now += 60
    groups.expire_sessions()
    await produce(broker, "t", 1)
    result = await asyncio.wait_for(waiting, 10)
    assert result.generation == m.generation and offsets_of(result) == [(0, 0)]


async def test_reset_fences_the_members_so_no_old_position_is_committed_over_it() -> None:
    broker = make_broker()
    await produce(broker, "t", 10)
    groups = broker.groups
    m = await groups.join("g", "t", "m")
    got = await groups.fetch("g", "t", "m", FetchLimits(max_records=6), generation=m.generation)
    assert len(got.records) == 6
    await groups.reset("g", "t", StartPosition.at_offset(2))
    with pytest.raises(StaleGeneration):
        await groups.commit("g", [CommitOffset("t", 0, 6)], "m", m.generation)
    fresh = await groups.heartbeat("g", "t", "m")
    again = await groups.fetch(
        "g", "t", "m", FetchLimits(max_records=1), generation=fresh.generation
    )
    assert offsets_of(again) == [(0, 2)]


async def test_assignor_and_protocol_are_the_groups() -> None:
    broker = make_broker(partitions=3)
    await produce(broker, "t", 1)
    groups = broker.groups
    await groups.join("g", "t", "a", assignor="roundrobin")
    with pytest.raises(InconsistentGroupProtocol):
        await groups.join("g", "t", "b", assignor="range")
    with pytest.raises(InvalidRequest):
        await groups.join("h", "t", "b", assignor="sticky")
    assert groups._groups["g"].state is GroupState.STABLE


async def test_delete_group_refused_while_members_are_live() -> None:
    broker = make_broker()
    await produce(broker, "t", 1)
    groups = broker.groups
    m = await groups.join("g", "t", "m")
    await groups.commit("g", [CommitOffset("t", 0, 1)], "m", m.generation)
    with pytest.raises(GroupHasMembers):
        await groups.delete("g")
    groups.leave("g", "t", "m")
    await groups.delete("g")
    with pytest.raises(GroupNotFound):
        await groups.describe("g")


async def test_concurrent_churn_hands_no_record_twice_per_generation_and_skips_none() -> None:
    """Random joins, leaves, fetches and commits (some failing) against one history checker."""
    rng = random.Random(7)
    broker = make_broker(partitions=4)
    groups = broker.groups
    store = broker.storage.offsets
    produced = 0
    deliveries: list[tuple[str, int, int, int]] = []  # member, generation, partition, offset
    acked_commits: dict[int, list[int]] = {}

    async def member(name: str, rounds: int, commit_mode: bool) -> None:
        generation: int | None = None
        positions: dict[int, int] = {}
        for _ in range(rounds):
            try:
                if generation is None:
                    generation = (await groups.join("g", "t", name)).generation
                result = await groups.fetch(
                    "g",
                    "t",
                    name,
                    FetchLimits(max_records=rng.randint(1, 7), wait_ms=rng.choice([0, 5])),
                    generation=generation,
                    commit=commit_mode,
                )
                assert result.generation is not None
                deliveries.extend(
                    (name, result.generation, i.partition, i.record.offset) for i in result.records
                )
                positions.update(result.positions)
                if not commit_mode and rng.random() < 0.7 and positions:
                    await groups.commit(
                        "g",
                        [CommitOffset("t", p, o) for p, o in positions.items()],
                        name,
                        generation,
                    )
                    for p, o in positions.items():
                        acked_commits.setdefault(p, []).append(o)
                if rng.random() < 0.1:
                    groups.leave("g", "t", name)
                    generation, positions = None, {}
            except MemberFenced:
                generation, positions = None, {}
            except StorageError:
                positions = {}
            await asyncio.sleep(0)

    async def producer() -> None:
        nonlocal produced
        for _ in range(60):
            await produce(broker, "t", 5)
            produced += 5
            await asyncio.sleep(0)

    async def chaos() -> None:
        for _ in range(20):
            await asyncio.sleep(0.002)
            store.failures.append(StorageError("injected"))

    await produce(broker, "t", 4)
    await asyncio.gather(
        producer(),
        chaos(),
        *(member(f"m{i}", 120, commit_mode=i % 2 == 0) for i in range(6)),
    )
    store.failures.clear()
    # Drain: one member takes everything that is left.
    drain = await groups.join("g", "t", "drain")
    for _ in range(200):
        result = await groups.fetch(
            "g", "t", "drain", FetchLimits(max_records=50), generation=drain.generation, commit=True
        )
        deliveries.extend(
            ("drain", drain.generation, i.partition, i.record.offset) for i in result.records
        )
        if not result.records:
            break
    seen: dict[tuple[int, int, int], str] = {}
    for name, generation, partition, offset in deliveries:
        key = (generation, partition, offset)
        assert seen.setdefault(key, name) == name, f"{key} went to {seen[key]} and {name}"
    delivered = {(p, o) for _, _, p, o in deliveries}
    for partition in range(4):
        end = (await broker.describe_topic("t")).partitions[partition].end_offset
        missing = [o for o in range(end) if (partition, o) not in delivered]
        assert missing == [], f"partition {partition} skipped {missing}"
    assert (await groups.describe("g")).total_lag == 0
    assert len({g for _, g, _, _ in deliveries}) > 5, "the churn must really rebalance"
