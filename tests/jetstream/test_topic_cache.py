"""Each gateway's copy of the topics bucket: fed by the watch and its own writes, right on use."""

from __future__ import annotations

import asyncio
import time

import pytest

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.errors import TopicNotFound
from minimq.jetstream import JetStreamStorage
from tests.support.nats_cluster import START_TIMEOUT


async def eventually_equal(read: object, expected: object, what: str) -> None:
    """Until ``await read()`` equals ``expected`` (a liveness bound, not a timing claim)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        got = await read()  # type: ignore[operator]
        if got == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {got!r}, wanted {expected!r}")
        await asyncio.sleep(0.05)


async def test_another_gateways_changes_reach_the_cache_through_the_watch(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("w", TopicConfig(partitions=2, retention_ms=3_600_000))
    first = await second_gateway.logs.topic_config("w")  # now cached there
    updated = await storage.logs.update_retention("w", 60_000, None)
    assert updated.topic_id == first.topic_id
    await eventually_equal(
        lambda: second_gateway.logs.topic_config("w"), updated, "the retention change"
    )
    # A new incarnation elsewhere replaces the old one (higher revision, new id).
    await storage.logs.delete_topic("w")
    await storage.logs.create_topic("w", TopicConfig(partitions=3))
    recreated = await storage.logs.topic_config("w")
    await eventually_equal(
        lambda: second_gateway.logs.topic_config("w"), recreated, "the new incarnation"
    )
    assert await second_gateway.logs.partition("w", 2).append([NewRecord(None, b"x")]) == 0


async def test_a_topic_deleted_elsewhere_unannounced_fails_on_use_then_misses(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    """No deletion notice reaches the second gateway: its stale entry fails on use, and the
    lookup after that asks the leader, which has no such topic."""
    await storage.logs.create_topic("gone", TopicConfig())
    log = second_gateway.logs.partition("gone", 0)
    assert await log.append([NewRecord(None, b"a")]) == 0
    await second_gateway._notifications.close()  # deaf to the deletion notice
    await storage.logs.delete_topic("gone")
    assert (await second_gateway.logs.topic_config("gone")).partitions == 1  # stale, cached
    with pytest.raises(TopicNotFound):
        await second_gateway.logs.partition("gone", 0).append([NewRecord(None, b"b")])
    with pytest.raises(TopicNotFound):
        await second_gateway.logs.topic_config("gone")


async def test_a_deletion_notice_empties_the_cache_at_once(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("d", TopicConfig())
    await second_gateway.logs.topic_config("d")
    await storage.logs.delete_topic("d")

    async def known() -> bool:
        try:
            await second_gateway.logs.topic_config("d")
        except TopicNotFound:
            return False
        return True

    await eventually_equal(known, False, "the deleted topic")


async def test_concurrent_misses_share_one_leader_read(storage: JetStreamStorage) -> None:
    await storage.logs.create_topic("m", TopicConfig(partitions=4))
    cache = storage.logs._cache
    cache.drop("m", (await storage.logs.topic_config("m")).topic_id or "")
    reads = 0
    real = storage.logs._catalog.get

    async def counted(topic: str) -> tuple[TopicConfig, int]:
        nonlocal reads
        reads += 1
        return await real(topic)

    storage.logs._catalog.get = counted  # type: ignore[method-assign]
    configs = await asyncio.gather(*(storage.logs.topic_config("m") for _ in range(50)))
    assert {c.partitions for c in configs} == {4}
    assert reads <= 1  # 0 if the watch delivered the create meanwhile
