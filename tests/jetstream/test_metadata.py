"""Topic metadata, committed offsets and producer ids in replicated KV, from several gateways."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import InvalidConfig, StorageError, TopicAlreadyExists, TopicNotFound
from minimq.jetstream import JetStreamStorage, open_jetstream_storage
from tests.support.nats_cluster import NatsCluster


async def test_topic_create_is_decided_once_across_gateways(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    results = await asyncio.gather(
        storage.logs.create_topic("t", TopicConfig(partitions=2)),
        second_gateway.logs.create_topic("t", TopicConfig(partitions=3)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["NoneType", "TopicAlreadyExists"]
    mine, theirs = await storage.logs.topic_config("t"), await second_gateway.logs.topic_config("t")
    assert mine == theirs and mine.topic_id == theirs.topic_id
    assert await second_gateway.logs.topic_names() == ["t"]
    with pytest.raises(TopicAlreadyExists):
        await storage.logs.create_topic("t", TopicConfig())


async def test_names_that_nats_cannot_carry_work_as_topics(storage: JetStreamStorage) -> None:
    for name in ["a.b.c", "x_y", "-", "..a", "A" * 249]:
        await storage.logs.create_topic(name, TopicConfig())
    assert await storage.logs.topic_names() == sorted(["a.b.c", "x_y", "-", "..a", "A" * 249])


async def test_engine_knobs_of_the_disk_engine_are_refused(storage: JetStreamStorage) -> None:
    for config in [
        TopicConfig(segment_bytes=1024 * 1024),
        TopicConfig(segment_ms=1000),
        TopicConfig(fsync=FsyncPolicy.parse("never")),
        TopicConfig(partitions=0),
        TopicConfig(retention_ms=-1),
    ]:
        with pytest.raises(InvalidConfig):
            await storage.logs.create_topic("k", config)
    assert await storage.logs.topic_names() == []
    await storage.logs.create_topic("k", TopicConfig(fsync=FsyncPolicy.parse("always")))


async def test_retention_maps_to_max_age_and_max_bytes_on_every_partition(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("r", TopicConfig(partitions=2, retention_ms=3_600_000))
    updated = await storage.logs.update_retention("r", 60_000, 5_000_000)
    assert (updated.retention_ms, updated.retention_bytes) == (60_000, 5_000_000)
    assert await second_gateway.logs.topic_config("r") == updated
    for partition in range(2):
        location = await storage.logs._locate("r", partition)
        info = await storage._connection.api(f"STREAM.INFO.{location.stream}")
        config = info["config"]
        assert config["max_age"] == 60_000 * 1_000_000
        assert config["max_bytes"] == 5_000_000
        assert config["discard"] == "old"
        assert config["num_replicas"] == 3
        assert config["allow_direct"] and config["allow_atomic"]
    cleared = await storage.logs.update_retention("r", None, None)
    assert cleared.retention_ms is None
    assert await storage.logs.apply_retention() == 0


async def test_offsets_commit_read_from_the_other_gateway_at_once(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    for value in range(100):  # every read right after a commit on the other gateway
        await storage.offsets.commit("g", [("t", 0, value)], metadata={("t", 0): f"m{value}"})
        assert await second_gateway.offsets.committed("g") == {("t", 0): value}
    assert await second_gateway.offsets.metadata("g") == {("t", 0): "m99"}
    assert await second_gateway.offsets.group_names() == ["g"]


async def test_concurrent_commits_from_two_gateways_lose_nothing(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("t", TopicConfig(partitions=2))

    async def commits(gateway: JetStreamStorage, partition: int) -> None:
        for offset in range(30):
            await gateway.offsets.commit("g", [("t", partition, offset)])

    await asyncio.gather(commits(storage, 0), commits(second_gateway, 1))
    assert await storage.offsets.committed("g") == {("t", 0): 29, ("t", 1): 29}


async def test_offsets_of_a_deleted_topic_are_gone_and_not_inherited(
    storage: JetStreamStorage,
) -> None:
    await storage.logs.create_topic("t", TopicConfig())
    old_id = (await storage.logs.topic_config("t")).topic_id
    await storage.offsets.commit("g", [("t", 0, 7)])
    await storage.logs.delete_topic("t")
    assert await storage.offsets.committed("g") == {}
    await storage.logs.create_topic("t", TopicConfig())
    assert await storage.offsets.committed("g") == {}
    with pytest.raises(TopicNotFound):
        await storage.offsets.commit("g", [("t", 0, 1)], topic_ids={"t": old_id or ""})
    await storage.offsets.delete_topic("t")
    await storage.offsets.commit("g", [("t", 0, 1)])
    assert await storage.offsets.committed("g") == {("t", 0): 1}
    await storage.offsets.delete_group("g")
    assert await storage.offsets.group_names() == []


async def test_group_names_are_escaped_reversibly(storage: JetStreamStorage) -> None:
    await storage.logs.create_topic("t", TopicConfig())
    groups = ["a.b", "*", ">", "with space", "ünï", "_5f"]
    for group in groups:
        await storage.offsets.commit(group, [("t", 0, 1)])
    assert await storage.offsets.group_names() == sorted(groups)


async def test_kv_buckets_are_replicated_and_never_read_from_followers(
    storage: JetStreamStorage, namespace: str
) -> None:
    for bucket in ("topics", "offsets", "producer-ids"):
        info = await storage._connection.api(f"STREAM.INFO.KV_{namespace}-{bucket}")
        assert info["config"]["num_replicas"] == 3
        assert not info["config"].get("allow_direct")


async def test_producer_ids_are_unique_across_gateways(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    async def allocate(gateway: JetStreamStorage) -> list[int]:
        return [await gateway.producer_ids.allocate() for _ in range(25)]

    first, second = await asyncio.gather(allocate(storage), allocate(second_gateway))
    ids = first + second
    assert len(set(ids)) == 50
    assert sorted(ids) == list(range(50))


async def test_metadata_is_stored_as_readable_json(
    storage: JetStreamStorage, namespace: str
) -> None:
    await storage.logs.create_topic("t", TopicConfig(partitions=2, retention_bytes=1000))
    answer = await storage._connection.api(
        f"STREAM.MSG.GET.KV_{namespace}-topics", {"last_by_subj": f"$KV.{namespace}-topics.t"}
    )
    stored = json.loads(base64.b64decode(answer["message"]["data"]))
    assert stored["partitions"] == 2 and stored["retention_bytes"] == 1000


async def test_a_replica_count_the_cluster_cannot_place_is_a_clear_error(
    nats_cluster: NatsCluster,
) -> None:
    with pytest.raises(InvalidConfig):
        await open_jetstream_storage(nats_cluster.urls, replicas=7, namespace="toomany")
    with pytest.raises(StorageError):  # 5 is JetStream's limit, but this cluster has 3 nodes
        await open_jetstream_storage(nats_cluster.urls, replicas=5, namespace="toomany")
