"""Append listeners: woken after records are stored, by appends of any gateway."""

from __future__ import annotations

import asyncio

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.jetstream import JetStreamStorage, open_jetstream_storage
from tests.support.nats_cluster import NatsCluster

WAIT_S = 60.0  # a bound for a wake-up that normally takes a millisecond, not an assertion


async def test_another_gateways_append_wakes_listeners_once_readable(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    reader = second_gateway.logs.partition("t", 1)
    readable_when_woken: list[bool] = []
    woken = asyncio.Event()
    checks: list[asyncio.Task[None]] = []

    async def check() -> None:
        # At the wake-up the records must be readable: what the listener is for.
        readable_when_woken.append(len(await reader.read(0, 2000, 10**9)) == 1000)
        woken.set()

    def listener(topic: str, partition: int) -> None:
        if (topic, partition) == ("t", 1):
            checks.append(asyncio.get_running_loop().create_task(check()))

    second_gateway.add_append_listener(listener)
    await storage.logs.partition("t", 1).append([NewRecord(None, b"x")] * 1000)
    await asyncio.wait_for(woken.wait(), WAIT_S)
    await asyncio.gather(*checks)
    assert readable_when_woken and all(readable_when_woken)
    # One produce call of 1,000 records wakes a listener once, not per record.
    assert len(checks) == 1


async def test_own_appends_and_deletions_wake_listeners(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    seen_here: list[tuple[str, int]] = []
    seen_there: list[tuple[str, int]] = []
    storage.add_append_listener(lambda t, p: seen_here.append((t, p)))
    second_gateway.add_append_listener(lambda t, p: seen_there.append((t, p)))
    await storage.logs.partition("t", 0).append([NewRecord(None, b"x")])
    await _until(lambda: ("t", 0) in seen_here and ("t", 0) in seen_there)
    seen_here.clear()
    seen_there.clear()
    await storage.logs.delete_topic("t")
    expected = {("t", 0), ("t", 1)}
    await _until(lambda: expected <= set(seen_here) and expected <= set(seen_there))


async def test_namespaces_do_not_hear_each_other(
    nats_cluster: NatsCluster, storage: JetStreamStorage
) -> None:
    other = await open_jetstream_storage(nats_cluster.urls, namespace="elsewhere")
    try:
        heard: list[tuple[str, int]] = []
        other.add_append_listener(lambda t, p: heard.append((t, p)))
        await other.logs.create_topic("marker", TopicConfig())
        await storage.logs.create_topic("t", TopicConfig())
        await storage.logs.partition("t", 0).append([NewRecord(None, b"x")])
        await other.logs.partition("marker", 0).append([NewRecord(None, b"x")])
        await _until(lambda: ("marker", 0) in heard)
        assert ("t", 0) not in heard
        assert "t" not in await other.logs.topic_names()
    finally:
        await other.logs.delete_topic("marker")
        await other.close()


async def _until(condition: object) -> None:
    assert callable(condition)
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.01)
