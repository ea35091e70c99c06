"""The group APIs on the wire, at the oldest, a middle and the newest version served.

Raw requests (kafka-python's protocol classes on a plain socket) walk a group
through the classic protocol and check what real clients rely on but rarely
show: the coordinator is this broker; a generation that is over is fenced
with ILLEGAL_GENERATION (22) on commit and heartbeat; an unknown member gets
UNKNOWN_MEMBER_ID (25); commits carry their metadata and per-partition
errors; OffsetFetch with null topics returns every committed partition;
DescribeGroups returns the members' metadata and assignment bytes; commits
survive a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.kafka.raw_client import RawKafka
from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")

protocol = pytest.importorskip("kafka.protocol.consumer", reason="NOT RUN: kafka-python missing")
admin = pytest.importorskip("kafka.protocol.admin", reason="NOT RUN: kafka-python missing")
metadata = pytest.importorskip("kafka.protocol.metadata", reason="NOT RUN: kafka-python missing")

NONE, OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC = 0, 1, 3
ILLEGAL_GENERATION, INCONSISTENT_PROTOCOL, UNKNOWN_MEMBER = 22, 23, 25
REBALANCE_IN_PROGRESS, MEMBER_ID_REQUIRED = 27, 79
TOPIC = "raw-groups"


@dataclass(frozen=True)
class Versions:
    find: int
    join: int
    sync: int
    heartbeat: int
    leave: int
    commit: int
    fetch: int
    describe: int
    list: int


VERSION_SETS = {
    "oldest": Versions(0, 0, 0, 0, 0, 2, 1, 0, 0),
    "kafka-python-2.0": Versions(1, 2, 1, 1, 1, 3, 3, 1, 1),
    "newest": Versions(2, 5, 3, 3, 3, 7, 5, 4, 2),
}


@pytest.fixture(scope="module")
def kafka_broker(backend_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    broker = backend_broker(kafka=True)
    created = httpx.post(f"{broker.url}/v1/topics", json={"name": TOPIC, "partitions": 3})
    assert created.status_code == 201, created.text
    records = [{"value": n, "partition": n % 3} for n in range(30)]
    produced = httpx.post(f"{broker.url}/v1/topics/{TOPIC}/records", json={"records": records})
    assert produced.status_code == 200, produced.text
    return broker


class GroupClient:
    """One member's connection, speaking the versions of one set."""

    def __init__(self, raw: RawKafka, group: str, versions: Versions) -> None:
        self.raw = raw
        self.group = group
        self.v = versions
        self.member_id = ""
        self.generation = -1

    async def join(self, metadata_bytes: bytes, protocol_type: str = "consumer") -> Any:
        for _ in range(2):
            request = protocol.JoinGroupRequest(
                group_id=self.group,
                session_timeout_ms=10000,
                rebalance_timeout_ms=10000,
                member_id=self.member_id,
                group_instance_id=None,
                protocol_type=protocol_type,
                protocols=[
                    protocol.JoinGroupRequest.JoinGroupRequestProtocol(
                        name="range", metadata=metadata_bytes
                    )
                ],
            )
            answer = await self.raw.send(request, self.v.join)
            self.member_id = answer.member_id or self.member_id
            if answer.error_code != MEMBER_ID_REQUIRED:
                break
            assert self.v.join >= 4, "MEMBER_ID_REQUIRED before JoinGroup v4"
        if answer.error_code == NONE:
            self.generation = answer.generation_id
        return answer

    async def sync(self, assignments: dict[str, bytes]) -> Any:
        request = protocol.SyncGroupRequest(
            group_id=self.group,
            generation_id=self.generation,
            member_id=self.member_id,
            group_instance_id=None,
            assignments=[
                protocol.SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=a)
                for m, a in assignments.items()
            ],
        )
        return await self.raw.send(request, self.v.sync)

    async def heartbeat(self, generation: int | None = None) -> int:
        request = protocol.HeartbeatRequest(
            group_id=self.group,
            generation_id=self.generation if generation is None else generation,
            member_id=self.member_id,
            group_instance_id=None,
        )
        return int((await self.raw.send(request, self.v.heartbeat)).error_code)

    async def commit(
        self,
        offsets: dict[tuple[str, int], tuple[int, str | None]],
        generation: int | None = None,
        member_id: str | None = None,
    ) -> dict[tuple[str, int], int]:
        topic_class = protocol.OffsetCommitRequest.OffsetCommitRequestTopic
        partition_class = topic_class.OffsetCommitRequestPartition
        by_topic: dict[str, list[Any]] = {}
        for (topic, partition), (offset, meta) in offsets.items():
            by_topic.setdefault(topic, []).append(
                partition_class(
                    partition_index=partition,
                    committed_offset=offset,
                    committed_leader_epoch=-1,
                    committed_metadata=meta,
                )
            )
        request = protocol.OffsetCommitRequest(
            group_id=self.group,
            generation_id_or_member_epoch=self.generation if generation is None else generation,
            member_id=self.member_id if member_id is None else member_id,
            group_instance_id=None,
            retention_time_ms=-1,
            topics=[topic_class(name=t, partitions=ps) for t, ps in by_topic.items()],
        )
        answer = await self.raw.send(request, self.v.commit)
        return {
            (t.name, p.partition_index): int(p.error_code)
            for t in answer.topics
            for p in t.partitions
        }

    async def fetch_offsets(
        self, partitions: list[tuple[str, int]] | None
    ) -> dict[tuple[str, int], tuple[int, str | None, int]]:
        topics = None
        if partitions is not None:
            grouped: dict[str, list[int]] = {}
            for t, p in partitions:
                grouped.setdefault(t, []).append(p)
            topics = [
                protocol.OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=ps)
                for t, ps in grouped.items()
            ]
        answer = await self.raw.send(
            protocol.OffsetFetchRequest(group_id=self.group, topics=topics), self.v.fetch
        )
        if self.v.fetch >= 2:
            assert answer.error_code == NONE
        return {
            (t.name, p.partition_index): (p.committed_offset, p.metadata, int(p.error_code))
            for t in answer.topics
            for p in t.partitions
        }

    async def leave(self, member_id: str | None = None) -> int:
        who = self.member_id if member_id is None else member_id
        request = protocol.LeaveGroupRequest(
            group_id=self.group,
            member_id=who,
            members=[protocol.LeaveGroupRequest.MemberIdentity(member_id=who)],
        )
        answer = await self.raw.send(request, self.v.leave)
        if self.v.leave >= 3:
            assert answer.error_code == NONE
            (member,) = answer.members
            return int(member.error_code)
        return int(answer.error_code)


async def _connect(broker: BrokerProcess, group: str, versions: Versions) -> GroupClient:
    return GroupClient(await RawKafka.connect("127.0.0.1", broker.kafka_port), group, versions)


async def _until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("versions_name", list(VERSION_SETS))
def test_classic_group_flow_on_the_wire(kafka_broker: BrokerProcess, versions_name: str) -> None:
    versions = VERSION_SETS[versions_name]
    group = f"raw-{versions_name}"
    asyncio.run(_group_flow(kafka_broker, group, versions))


async def _group_flow(broker: BrokerProcess, group: str, v: Versions) -> None:
    a = await _connect(broker, group, v)
    b = await _connect(broker, group, v)
    try:
        # The coordinator of every group is this broker, as advertised.
        found = await a.raw.send(metadata.FindCoordinatorRequest(key=group, key_type=0), v.find)
        assert (found.error_code, found.node_id, found.host, found.port) == (
            NONE, 0, "127.0.0.1", broker.kafka_port,
        )  # fmt: skip
        if v.find >= 1:
            txn = await a.raw.send(metadata.FindCoordinatorRequest(key="tx", key_type=1), v.find)
            assert txn.error_code != NONE, "MiniMQ has no transaction coordinator"

        # A alone: generation 1, leader, its own assignment back.
        joined = await a.join(b"meta-a")
        assert joined.error_code == NONE, joined
        assert joined.leader == a.member_id
        assert [(m.member_id, m.metadata) for m in joined.members] == [(a.member_id, b"meta-a")]
        synced = await a.sync({a.member_id: b"assign-a-1"})
        assert (synced.error_code, synced.assignment) == (NONE, b"assign-a-1")
        assert await a.heartbeat() == NONE
        first_generation = a.generation

        commits = await a.commit(
            {(TOPIC, 0): (5, "meta-0"), (TOPIC, 1): (7, None), ("no-such-topic", 0): (1, None)}
        )
        assert commits == {(TOPIC, 0): NONE, (TOPIC, 1): NONE, ("no-such-topic", 0): UNKNOWN_TOPIC}
        out_of_range = await a.commit({(TOPIC, 2): (10_000, None)})
        assert out_of_range == {(TOPIC, 2): OFFSET_OUT_OF_RANGE}

        described = await a.raw.send(
            admin.DescribeGroupsRequest(groups=[group, "no-such-group"]), v.describe
        )
        mine, unknown = described.groups
        assert (mine.error_code, mine.group_state) == (NONE, "Stable")
        assert (mine.protocol_type, mine.protocol_data) == ("consumer", "range")
        (member,) = mine.members
        assert member.member_id == a.member_id
        assert (member.member_metadata, member.member_assignment) == (b"meta-a", b"assign-a-1")
        assert (member.client_id, member.client_host) == ("raw-test", "/127.0.0.1")
        assert unknown.group_state == "Dead" and list(unknown.members) == []
        listed = await a.raw.send(admin.ListGroupsRequest(), v.list)
        assert (group, "consumer") in [(g.group_id, g.protocol_type) for g in listed.groups]

        # Another protocol type cannot join while the group has consumer members.
        other = await _connect(broker, group, v)
        try:
            refused = await other.join(b"", protocol_type="connect")
            assert refused.error_code == INCONSISTENT_PROTOCOL
        finally:
            await other.raw.close()

        # B joins: A learns of the rebalance by heartbeat and rejoins; one new generation.
        b_join = asyncio.create_task(b.join(b"meta-b"))

        async def a_told_to_rejoin() -> bool:
            return await a.heartbeat() == REBALANCE_IN_PROGRESS

        await _until(a_told_to_rejoin, "A's heartbeat never said REBALANCE_IN_PROGRESS")
        a_joined, b_joined = await asyncio.gather(a.join(b"meta-a"), b_join)
        assert a_joined.error_code == NONE and b_joined.error_code == NONE
        assert a.generation == b.generation > first_generation
        leader, follower = (a, b) if a_joined.leader == a.member_id else (b, a)
        leader_view = a_joined if leader is a else b_joined
        assert sorted((m.member_id, m.metadata) for m in leader_view.members) == sorted(
            [(a.member_id, b"meta-a"), (b.member_id, b"meta-b")]
        )
        assignments = {a.member_id: b"assign-a-2", b.member_id: b"assign-b-2"}
        leader_sync, follower_sync = await asyncio.gather(
            leader.sync(assignments), follower.sync({})
        )
        assert leader_sync.assignment == assignments[leader.member_id]
        assert follower_sync.assignment == assignments[follower.member_id]

        # The old generation is fenced; an unknown member is unknown.
        assert await a.commit({(TOPIC, 0): (9, None)}, generation=first_generation) == {
            (TOPIC, 0): ILLEGAL_GENERATION
        }
        assert await a.heartbeat(generation=first_generation) == ILLEGAL_GENERATION
        assert await a.commit({(TOPIC, 0): (9, None)}, member_id="ghost") == {
            (TOPIC, 0): UNKNOWN_MEMBER
        }
        assert await a.commit({(TOPIC, 1): (8, "meta-1")}) == {(TOPIC, 1): NONE}

        # What the fenced commits did not change, with metadata as committed.
        asked = [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)]
        offsets = await a.fetch_offsets(asked)
        assert offsets[(TOPIC, 0)][:2] == (5, "meta-0")
        assert offsets[(TOPIC, 1)][:2] == (8, "meta-1")
        assert offsets[(TOPIC, 2)][0] == -1
        if v.fetch >= 2:
            every = await a.fetch_offsets(None)
            assert {k: o[0] for k, o in every.items()} == {(TOPIC, 0): 5, (TOPIC, 1): 8}

        # B leaves: A is told to rejoin and is alone again; leaving twice is unknown.
        assert await b.leave() == NONE
        assert await b.leave() == UNKNOWN_MEMBER
        await _until(a_told_to_rejoin, "A was not told to rejoin after B left")
        alone = await a.join(b"meta-a")
        assert alone.error_code == NONE and [m.member_id for m in alone.members] == [a.member_id]
    finally:
        await a.raw.close()
        await b.raw.close()


def test_commits_and_metadata_survive_a_restart_and_simple_commits(tmp_path: Any) -> None:
    """A simple consumer (no member, generation -1) commits; a restart keeps it, metadata too."""
    data = tmp_path / "data"
    data.mkdir()
    v = VERSION_SETS["newest"]
    broker = BrokerProcess(data, kafka=True).start(timeout=60)
    try:
        created = httpx.post(f"{broker.url}/v1/topics", json={"name": TOPIC, "partitions": 1})
        assert created.status_code == 201, created.text
        records = {"records": [{"value": n} for n in range(10)]}
        produced = httpx.post(f"{broker.url}/v1/topics/{TOPIC}/records", json=records)
        assert produced.status_code == 200, produced.text

        async def commit() -> dict[tuple[str, int], int]:
            client = await _connect(broker, "simple", v)
            try:
                return await client.commit({(TOPIC, 0): (6, "kept")}, generation=-1, member_id="")
            finally:
                await client.raw.close()

        assert asyncio.run(commit()) == {(TOPIC, 0): NONE}
        broker.kill()
        broker.start(timeout=60)

        async def fetch() -> dict[tuple[str, int], tuple[int, str | None, int]]:
            client = await _connect(broker, "simple", v)
            try:
                return await client.fetch_offsets([(TOPIC, 0)])
            finally:
                await client.raw.close()

        assert asyncio.run(fetch()) == {(TOPIC, 0): (6, "kept", NONE)}
    finally:
        broker.stop()
