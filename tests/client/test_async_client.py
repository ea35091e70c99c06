"""The async client against a real broker: the same endpoints, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from minimq.client import AsyncClient, Record
from minimq.errors import BrokerUnavailable, GroupNotFound, OffsetOutOfRange, TopicNotFound
from tests.support.processes import BrokerProcess, free_port


@pytest.fixture
async def client(shared_broker: BrokerProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(shared_broker.url) as c:
        yield c


async def test_topics_produce_fetch(client: AsyncClient) -> None:
    assert (await client.health())["status"] == "ok"
    created = await client.create_topic("a-topics", partitions=2)
    assert created.partitions == 2
    assert "a-topics" in [t.name for t in await client.list_topics()]
    stored = await client.produce_batch(
        "a-topics", [{"value": {"i": i}, "partition": 1} for i in range(3)]
    )
    assert [(m.partition, m.offset) for m in stored] == [(1, 0), (1, 1), (1, 2)]
    single = await client.produce("a-topics", None, key="k", headers={"x": "y"}, partition=0)
    page = await client.fetch("a-topics", 1, offset="earliest", limit=2)
    assert [r.value for r in page.records] == [{"i": 0}, {"i": 1}]
    first = (await client.fetch("a-topics", 0)).records[0]
    assert (first.offset, first.value, first.key, first.headers) == (
        single.offset,
        None,
        "k",
        {"x": "y"},
    )
    assert (await client.describe_topic("a-topics")).messages == 4
    with pytest.raises(OffsetOutOfRange):
        await client.fetch("a-topics", 0, offset=99)
    await client.delete_topic("a-topics")
    with pytest.raises(TopicNotFound):
        await client.describe_topic("a-topics")


async def test_concurrent_long_polls_wake_on_produce(client: AsyncClient) -> None:
    await client.create_topic("a-poll", partitions=3)
    polls = [client.fetch("a-poll", p, offset=0, wait_ms=10_000) for p in range(3)]
    waiting = asyncio.gather(*polls)
    await asyncio.sleep(0.2)
    await client.produce_batch("a-poll", [{"value": p, "partition": p} for p in range(3)])
    pages = await asyncio.wait_for(waiting, 5)
    assert [[r.value for r in page.records] for page in pages] == [[0], [1], [2]]


async def test_groups(client: AsyncClient) -> None:
    await client.create_topic("a-groups")
    await client.produce_batch("a-groups", [{"value": i} for i in range(4)])
    joined = await client.join_group("a-g", "a-groups", "m")
    assert (joined.member_id, joined.assignment) == ("m", [0])
    assert (await client.heartbeat("a-g", "a-groups", "m", joined.generation)) == joined
    result = await client.group_fetch(
        "a-g", "a-groups", member_id="m", generation=joined.generation, limit=3
    )
    assert [r.value for r in result.records] == [0, 1, 2] and result.positions == {0: 3}
    await client.commit("a-g", [("a-groups", 0, 3)], member_id="m", generation=joined.generation)
    described = await client.describe_group("a-g")
    assert [(o.committed_offset, o.lag) for o in described.offsets] == [(3, 1)]
    assert "a-g" in [g.group for g in await client.list_groups()]
    reset = await client.reset_group("a-g", "a-groups", to="latest")
    assert [o.committed_offset for o in reset.offsets] == [4]
    await client.leave_group("a-g", "a-groups", "m")
    await client.delete_group("a-g")
    with pytest.raises(GroupNotFound):
        await client.describe_group("a-g")


async def test_stream(client: AsyncClient) -> None:
    await client.create_topic("a-live")
    received: list[Record] = []

    async def consume() -> None:
        async for record in client.stream("a-live", timeout=5):
            received.append(record)
            if len(received) == 3:
                return

    reader = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    await client.produce_batch("a-live", [{"value": i} for i in range(3)])
    await asyncio.wait_for(reader, 10)
    assert [r.value for r in received] == [0, 1, 2]

    loop = asyncio.get_running_loop()
    started = loop.time()
    quiet = [r async for r in client.stream("a-live", timeout=0.5)]
    assert quiet == []
    assert loop.time() - started < 5


async def test_unreachable_broker() -> None:
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", retries=1) as c:
        with pytest.raises(BrokerUnavailable):
            await c.list_topics()


async def test_stream_carries_records_larger_than_a_read_buffer(client: AsyncClient) -> None:
    big = "x" * 300_000
    await client.produce("a-big", big)
    received = [r.value async for r in client.stream("a-big", start="earliest", timeout=1)]
    assert received == [big]
