"""Kafka's classic group protocol on the coordinator, with concurrent asyncio tasks.

Members are tasks calling ``GroupCoordinator.kafka`` the way the Kafka
listener's handlers do. Session expiry runs on a fake monotonic clock; the
join, initial-delay and sync timers run on the event loop with short real
timeouts, and every wait is bounded by a generous ``wait_for``, so nothing
here asserts on time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from minimq.core import Broker, BrokerSettings, CommitOffset, FetchLimits, ProduceRecord
from minimq.core.groups import (
    GroupCoordinator,
    GroupInstanceIdNotSupported,
    GroupState,
    InvalidGroupId,
    InvalidSessionTimeout,
    JoinResult,
    KafkaGroupSettings,
    MemberIdRequired,
    OffsetCommitEntry,
    OffsetMetadataTooLarge,
    SyncResult,
)
from minimq.core.groups.consumer_protocol import (
    Assignment,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from minimq.errors import (
    GroupHasMembers,
    InconsistentGroupProtocol,
    OffsetOutOfRange,
    PartitionNotFound,
    RebalanceInProgress,
    StaleGeneration,
    TopicNotFound,
    UnknownMember,
)
from minimq.storage import open_storage
from tests.support.memory_storage import MemoryStorage

T = TypeVar("T")
PATIENCE_S = 30  # bounds every wait; a pass takes milliseconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, PATIENCE_S)


async def make(
    partitions: int = 4, *, initial_delay_ms: int = 0
) -> tuple[Broker, GroupCoordinator, FakeClock]:
    broker = Broker(MemoryStorage(), BrokerSettings(default_partitions=partitions))  # type: ignore[arg-type]
    await broker.produce("t", [ProduceRecord(b"x", partition=p) for p in range(partitions)] * 3)
    clock = FakeClock()
    groups = GroupCoordinator(broker.reader, broker.storage.offsets, 10_000, monotonic=clock)
    groups.kafka.configure(
        KafkaGroupSettings(min_session_timeout_ms=10, initial_rebalance_delay_ms=initial_delay_ms)
    )
    return broker, groups, clock


SUBSCRIPTION = encode_subscription(["t"])


async def join(
    groups: GroupCoordinator,
    member_id: str = "",
    *,
    group: str = "g",
    version: int = 3,
    session_ms: int = 10_000,
    rebalance_ms: int = 20_000,
    protocols: list[tuple[str, bytes]] | None = None,
    client_id: str = "client",
) -> JoinResult:
    return await within(
        groups.kafka.join(
            group,
            member_id,
            group_instance_id=None,
            client_id=client_id,
            client_host="/127.0.0.1",
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms,
            protocol_type="consumer",
            protocols=protocols or [("range", SUBSCRIPTION)],
            api_version=version,
        )
    )


async def join_v5(groups: GroupCoordinator, **options: object) -> JoinResult:
    """KIP-394: the first join gets MEMBER_ID_REQUIRED and an id, the second uses it."""
    with pytest.raises(MemberIdRequired) as required:
        await join(groups, version=5, **options)  # type: ignore[arg-type]
    return await join(groups, required.value.member_id, version=5, **options)  # type: ignore[arg-type]


def plan(results: list[JoinResult], partitions: int = 4) -> dict[str, bytes]:
    """What a leader assigns: the partitions of t dealt round-robin by member id."""
    members = sorted(r.member_id for r in results)
    return {
        m: encode_assignment({"t": list(range(i, partitions, len(members)))})
        for i, m in enumerate(members)
    }


async def sync_all(
    groups: GroupCoordinator, results: list[JoinResult], group: str = "g"
) -> dict[str, SyncResult]:
    """Followers' SyncGroup first (they wait), then the leader's with every assignment."""
    leader = next(r for r in results if r.member_id == r.leader)
    followers = [r for r in results if r is not leader]
    waiting = [
        asyncio.create_task(groups.kafka.sync(group, r.member_id, r.generation, []))
        for r in followers
    ]
    await asyncio.sleep(0)
    assert not any(task.done() for task in waiting), (
        "a follower's sync returned before the leader's"
    )
    answers = plan(results)
    mine = await within(
        groups.kafka.sync(group, leader.member_id, leader.generation, list(answers.items()))
    )
    got = dict(
        zip([r.member_id for r in followers], await within(asyncio.gather(*waiting)), strict=True)
    )
    got[leader.member_id] = mine
    return got


async def stable_group(
    groups: GroupCoordinator, count: int = 3, **options: object
) -> list[JoinResult]:
    results = list(
        await within(asyncio.gather(*(join_v5(groups, **options) for _ in range(count))))
    )
    await sync_all(groups, results)
    return results


# -- join and sync -----------------------------------------------------------------------


async def test_three_concurrent_joins_make_one_generation_with_one_leader() -> None:
    _, groups, _ = await make()
    results = await within(asyncio.gather(*(join_v5(groups) for _ in range(3))))
    assert len({r.member_id for r in results}) == 3
    assert len({r.generation for r in results}) == 1, "the three joins made several generations"
    assert len({r.leader for r in results}) == 1
    leader = next(r for r in results if r.member_id == r.leader)
    assert sorted(m.member_id for m in leader.members) == sorted(r.member_id for r in results)
    assert all(m.metadata == SUBSCRIPTION for m in leader.members)
    assert all(r.members == [] for r in results if r is not leader)
    assert {(r.protocol_type, r.protocol_name) for r in results} == {("consumer", "range")}
    assert all(r.member_id.startswith("client-") for r in results)
    assert (await groups.kafka.describe("g")).state == "CompletingRebalance"


async def test_the_initial_delay_gathers_members_that_arrive_together() -> None:
    """Without KIP-394 ids (v3), only the delay keeps the first join from going alone."""
    _, groups, _ = await make(initial_delay_ms=100)
    results = await within(asyncio.gather(*(join(groups, version=3) for _ in range(3))))
    assert len({r.generation for r in results}) == 1
    assert len(next(r for r in results if r.member_id == r.leader).members) == 3


async def test_sync_hands_each_member_its_own_assignment_and_describe_decodes_it() -> None:
    _, groups, _ = await make()
    results = await stable_group(groups)
    expected = plan(results)
    description = await groups.kafka.describe("g")
    assert description.state == "Stable"
    assert (description.protocol_type, description.protocol) == ("consumer", "range")
    assert {m.member_id: m.assignment for m in description.members} == expected
    assert {m.client_host for m in description.members} == {"/127.0.0.1"}
    assert all(m.metadata == SUBSCRIPTION for m in description.members)

    info = await groups.describe("g")
    assert (info.protocol_type, info.state) == ("kafka", "Stable")
    owned = {m.member_id: (m.topic, m.partitions) for m in info.members}
    for member_id, data in expected.items():
        decoded = decode_assignment(data)
        assert decoded is not None
        assert owned[member_id] == ("t", decoded.partitions["t"])
    assert {m.client_id for m in info.members} == {"client"}
    assert len(info.offsets) == 4 and info.total_lag == 12, "lag covers every partition of t"
    (summary,) = await groups.list_groups()
    assert (summary.group, summary.members, summary.protocol_type) == ("g", 3, "kafka")
    assert [(g.group, g.protocol_type) for g in await groups.kafka.list_groups()] == [
        ("g", "consumer")
    ]


async def test_each_member_gets_the_bytes_the_leader_sent_for_it() -> None:
    _, groups, _ = await make()
    results = list(await within(asyncio.gather(*(join_v5(groups) for _ in range(3)))))
    got = await sync_all(groups, results)
    expected = plan(results)
    assert {m: s.assignment for m, s in got.items()} == expected
    # A member that syncs again in a Stable generation gets the same answer at once.
    again = await within(groups.kafka.sync("g", results[0].member_id, results[0].generation, []))
    assert again.assignment == expected[results[0].member_id]


async def test_a_follower_rejoining_a_stable_group_changes_nothing() -> None:
    _, groups, _ = await make()
    results = await stable_group(groups)
    follower = next(r for r in results if r.member_id != r.leader)
    again = await join(groups, follower.member_id)
    assert again.generation == follower.generation
    assert (await groups.kafka.describe("g")).state == "Stable"


# -- rebalances --------------------------------------------------------------------------


async def rejoin_after_heartbeat(
    groups: GroupCoordinator, result: JoinResult, group: str = "g"
) -> JoinResult:
    with pytest.raises(RebalanceInProgress):
        groups.kafka.heartbeat(group, result.member_id, result.generation)
    return await join(groups, result.member_id, group=group)


async def test_a_leave_rebalances_and_the_survivors_get_a_new_generation() -> None:
    _, groups, _ = await make()
    results = await stable_group(groups)
    leaving = next(r for r in results if r.member_id != r.leader)
    survivors = [r for r in results if r is not leaving]
    (answer,) = groups.kafka.leave("g", [(leaving.member_id, None)])
    assert answer.error is None
    assert (await groups.kafka.describe("g")).state == "PreparingRebalance"
    rejoined = await within(asyncio.gather(*(rejoin_after_heartbeat(groups, r) for r in survivors)))
    assert len({r.generation for r in rejoined}) == 1
    assert rejoined[0].generation > results[0].generation
    assert rejoined[0].leader == results[0].leader, "the leader that rejoined stays leader"
    assert {r.member_id for r in rejoined} == {r.member_id for r in survivors}
    (gone,) = groups.kafka.leave("g", [(leaving.member_id, None)])
    assert isinstance(gone.error, UnknownMember)
    with pytest.raises(UnknownMember):
        groups.kafka.heartbeat("g", leaving.member_id, results[0].generation)


async def test_an_expired_session_rebalances_and_the_survivors_get_a_new_generation() -> None:
    _, groups, clock = await make()
    results = await stable_group(groups)
    silent = results[2]
    clock.now += 5
    for r in results[:2]:
        groups.kafka.heartbeat("g", r.member_id, r.generation)
    clock.now += 6  # 11 s since the silent member's sync, 6 s since the others' heartbeats
    groups.expire_sessions()
    assert silent.member_id not in {m.member_id for m in (await groups.kafka.describe("g")).members}
    rejoined = await within(
        asyncio.gather(*(rejoin_after_heartbeat(groups, r) for r in results[:2]))
    )
    assert len({r.generation for r in rejoined}) == 1
    assert rejoined[0].generation > results[0].generation
    with pytest.raises(UnknownMember):
        await within(groups.kafka.sync("g", silent.member_id, rejoined[0].generation, []))


async def test_a_member_that_does_not_rejoin_in_the_rebalance_timeout_is_removed() -> None:
    _, groups, _ = await make()
    # The group's rebalance timeout is its members' largest (Kafka's rule).
    results = await stable_group(groups, count=2, rebalance_ms=200)
    leader = next(r for r in results if r.member_id == r.leader)
    other = next(r for r in results if r is not leader)
    # The leader rejoins (a rebalance); the other neither rejoins nor lets its session expire.
    alone = await join(groups, leader.member_id, rebalance_ms=200)
    assert [m.member_id for m in alone.members] == [leader.member_id]
    assert alone.generation > leader.generation
    with pytest.raises(UnknownMember):
        groups.kafka.heartbeat("g", other.member_id, other.generation)


async def test_a_leader_that_never_syncs_is_removed_and_the_group_rebalances() -> None:
    _, groups, _ = await make()
    results = await within(asyncio.gather(*(join_v5(groups, session_ms=300) for _ in range(2))))
    follower = next(r for r in results if r.member_id != r.leader)
    with pytest.raises(RebalanceInProgress):
        await within(groups.kafka.sync("g", follower.member_id, follower.generation, []))
    newer = await join(groups, follower.member_id, session_ms=300)
    assert newer.leader == follower.member_id and newer.generation > follower.generation
    assert [m.member_id for m in newer.members] == [follower.member_id]


async def test_a_join_during_completing_rebalance_fails_the_waiting_syncs() -> None:
    _, groups, _ = await make()
    results = await within(asyncio.gather(*(join_v5(groups) for _ in range(2))))
    follower = next(r for r in results if r.member_id != r.leader)
    waiting = asyncio.create_task(
        groups.kafka.sync("g", follower.member_id, follower.generation, [])
    )
    await asyncio.sleep(0)
    newcomer = asyncio.create_task(join_v5(groups))
    with pytest.raises(RebalanceInProgress):
        await within(waiting)
    everyone = await within(
        asyncio.gather(newcomer, *(rejoin_after_heartbeat(groups, r) for r in results))
    )
    assert len({r.generation for r in everyone}) == 1
    assert len(next(r for r in everyone if r.member_id == r.leader).members) == 3


async def test_heartbeats_say_rebalance_in_progress_only_while_members_are_gathered() -> None:
    _, groups, _ = await make()
    results = await stable_group(groups, count=2)
    for r in results:
        groups.kafka.heartbeat("g", r.member_id, r.generation)  # Stable: fine
    pending = asyncio.create_task(join_v5(groups))
    await asyncio.sleep(0.01)
    for r in results:
        with pytest.raises(RebalanceInProgress):
            groups.kafka.heartbeat("g", r.member_id, r.generation)
    with pytest.raises(StaleGeneration):
        groups.kafka.heartbeat("g", results[0].member_id, results[0].generation - 1)
    rejoined = await within(asyncio.gather(*(join(groups, r.member_id) for r in results)))
    newcomer = await within(pending)
    assert newcomer.generation == rejoined[0].generation
    # CompletingRebalance: heartbeats with the new generation are fine (Kafka's rule).
    groups.kafka.heartbeat("g", newcomer.member_id, newcomer.generation)
    with pytest.raises(StaleGeneration):
        groups.kafka.heartbeat("g", newcomer.member_id, results[0].generation)


async def test_the_last_member_leaving_empties_the_group_and_keeps_its_commits() -> None:
    _, groups, _ = await make()
    (only,) = await stable_group(groups, count=1)
    await groups.kafka.commit_offsets(
        "g", only.member_id, only.generation, [OffsetCommitEntry("t", 0, 2)]
    )
    groups.kafka.leave("g", [(only.member_id, None)])
    assert (await groups.kafka.describe("g")).state == "Empty"
    assert (await groups.describe("g")).members == []
    assert (await groups.kafka.fetch_offsets("g", [("t", 0)]))[0].offset == 2


# -- offsets -----------------------------------------------------------------------------


async def test_an_old_generation_commit_is_illegal_and_stores_nothing() -> None:
    broker, groups, _ = await make()
    results = await stable_group(groups, count=2)
    a, b = results
    first = await groups.kafka.commit_offsets(
        "g", a.member_id, a.generation, [OffsetCommitEntry("t", 0, 1, "first")]
    )
    assert [c.error for c in first] == [None]
    groups.kafka.leave("g", [(b.member_id, None)])
    newer = await rejoin_after_heartbeat(groups, a)
    assert newer.generation > a.generation
    with pytest.raises(StaleGeneration):
        await groups.kafka.commit_offsets(
            "g", a.member_id, a.generation, [OffsetCommitEntry("t", 0, 3, "stale")]
        )
    assert await broker.storage.offsets.committed("g") == {("t", 0): 1}
    assert (await groups.kafka.fetch_offsets("g", [("t", 0)]))[0].metadata == "first"
    # CompletingRebalance (before the leader's sync): a current member is refused too.
    with pytest.raises(RebalanceInProgress):
        await groups.kafka.commit_offsets(
            "g", a.member_id, newer.generation, [OffsetCommitEntry("t", 0, 3)]
        )
    with pytest.raises(UnknownMember):
        await groups.kafka.commit_offsets(
            "g", b.member_id, newer.generation, [OffsetCommitEntry("t", 0, 3)]
        )
    assert await broker.storage.offsets.committed("g") == {("t", 0): 1}


async def test_members_commit_while_a_rebalance_gathers_them() -> None:
    """Clients commit before they rejoin: Kafka accepts the current generation then."""
    _, groups, _ = await make()
    a, b = await stable_group(groups, count=2)
    newcomer = asyncio.create_task(join_v5(groups))
    await asyncio.sleep(0.01)
    assert (await groups.kafka.describe("g")).state == "PreparingRebalance"
    done = await groups.kafka.commit_offsets(
        "g", b.member_id, b.generation, [OffsetCommitEntry("t", 1, 2)]
    )
    assert [c.error for c in done] == [None]
    await within(asyncio.gather(newcomer, join(groups, a.member_id), join(groups, b.member_id)))
    assert (await groups.kafka.fetch_offsets("g", [("t", 1)]))[0].offset == 2


async def test_simple_commits_only_while_the_group_has_no_members() -> None:
    broker, groups, _ = await make()
    done = await groups.kafka.commit_offsets("g", "", -1, [OffsetCommitEntry("t", 0, 1, None)])
    assert [c.error for c in done] == [None]
    (member,) = await stable_group(groups, count=1)
    with pytest.raises(UnknownMember):
        await groups.kafka.commit_offsets("g", "", -1, [OffsetCommitEntry("t", 0, 2)])
    assert await broker.storage.offsets.committed("g") == {("t", 0): 1}
    assert member.member_id


async def test_per_partition_errors_leave_the_other_partitions_committed() -> None:
    broker, groups, _ = await make(partitions=2)
    too_long = "m" * 4097
    entries = [
        OffsetCommitEntry("t", 0, 2, "ok"),
        OffsetCommitEntry("t", 1, 2, too_long),
        OffsetCommitEntry("missing", 0, 1),
        OffsetCommitEntry("t", 7, 1),
        OffsetCommitEntry("t", 1, 10_000),
    ]
    done = await groups.kafka.commit_offsets("g", "", -1, entries)
    assert [type(c.error) for c in done] == [
        type(None),
        OffsetMetadataTooLarge,
        TopicNotFound,
        PartitionNotFound,
        OffsetOutOfRange,
    ]
    assert await broker.storage.offsets.committed("g") == {("t", 0): 2}


async def test_metadata_round_trips_and_offset_fetch_answers_minus_one_without_commit() -> None:
    _, groups, _ = await make(partitions=2)
    (member,) = await stable_group(groups, count=1)
    note = 'ünïcode {"json": true} \x7f'
    await groups.kafka.commit_offsets(
        "g",
        member.member_id,
        member.generation,
        [OffsetCommitEntry("t", 0, 3, note), OffsetCommitEntry("t", 1, 1, None)],
    )
    fetched = await groups.kafka.fetch_offsets("g", [("t", 0), ("t", 1), ("other", 0)])
    assert [(f.topic, f.partition, f.offset, f.metadata) for f in fetched] == [
        ("t", 0, 3, note),
        ("t", 1, 1, ""),
        ("other", 0, -1, ""),
    ]
    everything = await groups.kafka.fetch_offsets("g", None)
    assert [(f.partition, f.offset) for f in everything] == [(0, 3), (1, 1)]
    assert await groups.kafka.fetch_offsets("nobody", None) == []


async def test_kafka_and_http_share_the_offset_store() -> None:
    broker, groups, _ = await make(partitions=1)
    await groups.kafka.commit_offsets("g", "", -1, [OffsetCommitEntry("t", 0, 2, "from kafka")])
    membership = await groups.join("g", "t", "http-member")
    got = await groups.fetch("g", "t", "http-member", FetchLimits(max_records=1))
    assert [r.record.offset for r in got.records] == [2], "HTTP resumed from the Kafka commit"
    await groups.commit("g", [CommitOffset("t", 0, 3)], "http-member", membership.generation)
    groups.leave("g", "t", "http-member")
    assert (await groups.kafka.fetch_offsets("g", [("t", 0)]))[0].offset == 3
    assert await broker.storage.offsets.committed("g") == {("t", 0): 3}


# -- refusals ----------------------------------------------------------------------------


async def test_http_and_kafka_members_cannot_share_a_group() -> None:
    _, groups, _ = await make()
    await groups.join("h", "t", "http-member")
    with pytest.raises(InconsistentGroupProtocol):
        await join(groups, group="h")
    with pytest.raises(InconsistentGroupProtocol):
        await groups.kafka.commit_offsets("h", "", -1, [OffsetCommitEntry("t", 0, 1)])
    with pytest.raises(InconsistentGroupProtocol):
        groups.kafka.heartbeat("h", "http-member", 1)

    (member,) = await stable_group(groups, count=1)
    with pytest.raises(InconsistentGroupProtocol):
        await groups.join("g", "t", "http-member")
    with pytest.raises(InconsistentGroupProtocol):
        await groups.heartbeat("g", "t", member.member_id, member.generation)
    with pytest.raises(InconsistentGroupProtocol):
        await groups.commit("g", [CommitOffset("t", 0, 1)], member.member_id, member.generation)
    with pytest.raises(InconsistentGroupProtocol):
        groups.leave("g", "t", member.member_id)
    with pytest.raises(GroupHasMembers):
        await groups.fetch("g", "t", None, FetchLimits())
    with pytest.raises(GroupHasMembers):
        await groups.delete("g")
    assert (await groups.kafka.describe("g")).state == "Stable", "the refusals changed nothing"
    assert (await groups.kafka.describe("h")).protocol_type == "http"


async def test_joins_without_a_common_assignor_or_with_bad_arguments_are_refused() -> None:
    _, groups, _ = await make()
    await stable_group(groups, count=1)
    with pytest.raises(InconsistentGroupProtocol):
        await join(groups, protocols=[("roundrobin", SUBSCRIPTION)])
    with pytest.raises(InvalidSessionTimeout):
        await join(groups, group="other", session_ms=1)
    with pytest.raises(InvalidSessionTimeout):
        await join(groups, group="other", session_ms=1_800_001)
    with pytest.raises(InvalidGroupId):
        await join(groups, group="")
    with pytest.raises(UnknownMember):
        await join(groups, "never-handed-out")
    with pytest.raises(GroupInstanceIdNotSupported):
        await groups.kafka.join(
            "g",
            "",
            group_instance_id="static-1",
            client_id="c",
            client_host="h",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            protocol_type="consumer",
            protocols=[("range", SUBSCRIPTION)],
            api_version=5,
        )
    assert {g.group for g in await groups.kafka.list_groups()} == {"g"}, "refused joins left groups"


async def test_an_unused_member_id_lapses_after_the_session_timeout() -> None:
    _, groups, clock = await make()
    with pytest.raises(MemberIdRequired) as required:
        await join(groups, version=4, group="p")
    assert (await groups.kafka.describe("p")).state == "Empty"
    clock.now += 11
    groups.expire_sessions()
    assert (await groups.kafka.describe("p")).state == "Dead", "the pending id kept the group"
    with pytest.raises(UnknownMember):
        await join(groups, required.value.member_id, version=4, group="p")


async def test_shutdown_ends_the_waiting_joins() -> None:
    _, groups, _ = await make()
    results = await within(asyncio.gather(*(join_v5(groups) for _ in range(2))))
    follower = next(r for r in results if r.member_id != r.leader)
    waiting = asyncio.create_task(
        groups.kafka.sync("g", follower.member_id, follower.generation, [])
    )
    await asyncio.sleep(0)
    groups.kafka.close()
    with pytest.raises(Exception, match="shutting down"):
        await within(waiting)


# -- ConsumerProtocol bytes --------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_subscriptions_of_every_version_decode(version: int) -> None:
    data = encode_subscription(["a", "bé"], b"\x00user", version=version)
    decoded = decode_subscription(data)
    assert decoded is not None
    assert (decoded.version, decoded.topics, decoded.user_data) == (
        version,
        ["a", "bé"],
        b"\x00user",
    )


def test_assignments_decode_and_garbage_gives_none() -> None:
    data = encode_assignment({"a": [0, 2], "b": [1]}, None, version=1)
    assert decode_assignment(data) == Assignment(1, {"a": [0, 2], "b": [1]}, None)
    assert decode_assignment(b"") == Assignment(0, {})
    for garbage in (b"\x00", b"\x00\x00\x7f\xff\xff\xff", b"\xff\xff", data[:-3]):
        assert decode_assignment(garbage) is None
        assert decode_subscription(garbage) is None


async def test_a_group_of_another_protocol_type_is_described_without_decoding() -> None:
    _, groups, _ = await make()
    result = await within(
        groups.kafka.join(
            "c",
            "",
            group_instance_id=None,
            client_id="connect",
            client_host="/127.0.0.1",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            protocol_type="connect",
            protocols=[("sessioned", b"\xff\xfe not consumer protocol")],
            api_version=3,
        )
    )
    await within(
        groups.kafka.sync("c", result.member_id, result.generation, [(result.member_id, b"\x01")])
    )
    info = await groups.describe("c")
    assert [(m.member_id, m.topic, m.partitions) for m in info.members] == [
        (result.member_id, "", [])
    ]
    assert (await groups.kafka.describe("c")).members[0].assignment == b"\x01"
    assert (await groups.describe("c")).state == GroupState.STABLE.value


async def test_kafka_commits_and_their_metadata_survive_a_restart(tmp_path: Path) -> None:
    """The same data directory opened again (a broker restart, storage level)."""
    storage = await open_storage(tmp_path)
    broker = Broker(storage, BrokerSettings(default_partitions=2))
    await broker.produce("t", [ProduceRecord(b"x", partition=p) for p in (0, 1)] * 2)
    await broker.groups.kafka.commit_offsets(
        "g", "", -1, [OffsetCommitEntry("t", 0, 2, "kept"), OffsetCommitEntry("t", 1, 1)]
    )
    await broker.close()
    broker = Broker(await open_storage(tmp_path))
    try:
        fetched = await broker.groups.kafka.fetch_offsets("g", None)
        assert [(f.partition, f.offset, f.metadata) for f in fetched] == [
            (0, 2, "kept"),
            (1, 1, ""),
        ]
        assert (await broker.groups.describe("g")).total_lag == 1
    finally:
        await broker.close()


async def test_churn_keeps_one_leader_per_generation_and_every_wait_ends() -> None:
    """Eight members join, sync, heartbeat, commit, leave and go silent at random.

    Until 15 generations and 2 session expiries happened (bounded: 20 s).
    """
    broker, _, _ = await make()
    # The real monotonic clock: silent members' sessions lapse and the sweep removes them.
    groups = GroupCoordinator(broker.reader, broker.storage.offsets, 10_000)
    groups.kafka.configure(
        KafkaGroupSettings(min_session_timeout_ms=10, initial_rebalance_delay_ms=20)
    )
    leaders: dict[int, set[str]] = {}
    joined: dict[int, set[str]] = {}
    listed: dict[int, set[str]] = {}
    expiries = [0]
    stop = asyncio.Event()

    async def member(seed: int) -> None:
        rnd = random.Random(seed)
        member_id = ""
        silent = False
        while not stop.is_set():
            try:
                result = await join(groups, member_id, version=5, session_ms=300, rebalance_ms=400)
                member_id, generation = result.member_id, result.generation
                leaders.setdefault(generation, set()).add(result.leader)
                joined.setdefault(generation, set()).add(member_id)
                if result.leader == member_id:
                    listed[generation] = {m.member_id for m in result.members}
                assignments = [
                    (m.member_id, encode_assignment({"t": [i]}))
                    for i, m in enumerate(result.members)
                ]
                await within(groups.kafka.sync("g", member_id, generation, assignments))
                for _ in range(rnd.randint(0, 4)):
                    await asyncio.sleep(rnd.random() * 0.05)
                    groups.kafka.heartbeat("g", member_id, generation)
                    await groups.kafka.commit_offsets(
                        "g", member_id, generation, [OffsetCommitEntry("t", 0, 1)]
                    )
                if rnd.random() < 0.2:
                    groups.kafka.leave("g", [(member_id, None)])
                    member_id = ""
                elif rnd.random() < 0.1:
                    silent = True
                    await asyncio.sleep(0.5)  # past its session timeout
                    groups.kafka.heartbeat("g", member_id, generation)
                    silent = False
            except MemberIdRequired as required:
                member_id = required.member_id
            except UnknownMember:
                expiries[0] += silent
                member_id, silent = "", False
            except (RebalanceInProgress, StaleGeneration):
                silent = False

    async def sweep() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.05)
            groups.expire_sessions()

    tasks = [asyncio.create_task(member(seed)) for seed in range(8)]
    tasks.append(asyncio.create_task(sweep()))
    deadline = asyncio.get_running_loop().time() + 20
    while (len(leaders) < 15 or expiries[0] < 2) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await within(asyncio.gather(*tasks))
    assert len(leaders) >= 15, f"only {len(leaders)} generations in 20 s"
    assert expiries[0] >= 2, f"only {expiries[0]} session expiries in 20 s"
    assert all(len(names) == 1 for names in leaders.values()), "a generation with two leaders"
    for generation, members in joined.items():
        if generation in listed:
            assert members <= listed[generation], "a member missing from its leader's list"
