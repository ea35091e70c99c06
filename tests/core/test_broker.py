"""The Broker facade on the in-memory storage fake."""

from __future__ import annotations

import asyncio
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
from minimq.errors import (
    GroupNotFound,
    MessageTooLarge,
    OffsetOutOfRange,
    TopicAlreadyExists,
    TopicNotFound,
)
from minimq.storage.api import TopicConfig
from tests.support.memory_storage import MemoryStorage


def make_broker(**settings: object) -> Broker:
    return Broker(MemoryStorage(), BrokerSettings(**settings))  # type: ignore[arg-type]


def values(n: int) -> list[ProduceRecord]:
    return [ProduceRecord(str(i).encode()) for i in range(n)]


async def test_produce_auto_creates_and_fetch_returns_in_order() -> None:
    broker = make_broker(default_partitions=1)
    positions = await broker.produce("t", values(3))
    assert [p.offset for p in positions] == [0, 1, 2]
    result = await broker.fetch("t", 0, StartPosition.earliest(), FetchLimits(max_records=2))
    assert [r.value for r in result.records] == [b"0", b"1"]
    assert (result.next_offset, result.high_watermark) == (2, 3)


async def test_produce_without_auto_create_is_topic_not_found() -> None:
    broker = make_broker(auto_create_topics=False)
    with pytest.raises(TopicNotFound):
        await broker.produce("t", values(1))


async def test_record_over_the_limit_is_rejected() -> None:
    broker = make_broker(max_record_bytes=10)
    with pytest.raises(MessageTooLarge):
        await broker.produce("t", [ProduceRecord(b"x" * 11)])


async def test_topic_lifecycle() -> None:
    broker = make_broker()
    info = await broker.create_topic("t", TopicConfig(partitions=3))
    assert len(info.partitions) == 3
    with pytest.raises(TopicAlreadyExists):
        await broker.create_topic("t", TopicConfig())
    await broker.delete_topic("t")
    with pytest.raises(TopicNotFound):
        broker.describe_topic("t")


async def test_offset_out_of_range() -> None:
    broker = make_broker()
    await broker.produce("t", values(2))
    with pytest.raises(OffsetOutOfRange):
        await broker.fetch("t", 0, StartPosition.at_offset(3), FetchLimits())


async def test_long_poll_wakes_on_produce() -> None:
    broker = make_broker()
    await broker.create_topic("t", TopicConfig())
    started = time.monotonic()
    waiting = asyncio.create_task(
        broker.fetch("t", 0, StartPosition.latest(), FetchLimits(wait_ms=5000))
    )
    await asyncio.sleep(0.05)
    await broker.produce("t", values(1))
    result = await waiting
    assert [r.value for r in result.records] == [b"0"]
    assert time.monotonic() - started < 2


async def test_long_poll_times_out_empty() -> None:
    broker = make_broker()
    await broker.create_topic("t", TopicConfig())
    result = await broker.fetch("t", 0, StartPosition.latest(), FetchLimits(wait_ms=50))
    assert result.records == []


async def test_concurrent_consumers_sharing_an_id_get_each_message_once() -> None:
    broker = make_broker(default_partitions=2)
    await broker.produce("t", values(40))
    results = await asyncio.gather(*(broker.consume("t", "c") for _ in range(50)))
    got = [(m.partition, m.record.offset) for m in results if m is not None]
    assert len(got) == 40
    assert len(set(got)) == 40
    assert broker.storage.offsets.committed("c") == {("t", 0): 20, ("t", 1): 20}


async def test_group_members_split_partitions_and_commit() -> None:
    broker = make_broker(default_partitions=2)
    await broker.produce("t", [ProduceRecord(b"a", partition=0), ProduceRecord(b"b", partition=1)])
    first = await broker.group_fetch("g", "t", "m1", FetchLimits())
    assert first.assignment == [0, 1]
    second = await broker.group_fetch("g", "t", "m2", FetchLimits())
    assert second.assignment == [1]
    await broker.commit("g", [CommitOffset("t", 0, 1)])
    info = broker.describe_group("g")
    assert [(o.partition, o.committed_offset, o.lag) for o in info.offsets] == [(0, 1, 0)]
    assert {m.member_id for m in info.members} == {"m1", "m2"}


async def test_group_fetch_with_commit_resumes_after_restart_of_members() -> None:
    broker = make_broker()
    await broker.produce("t", values(5))
    got = await broker.group_fetch("g", "t", "m1", FetchLimits(max_records=3), commit=True)
    assert [item.record.offset for item in got.records] == [0, 1, 2]
    broker.leave("g", "t", "m1")
    again = await broker.group_fetch("g", "t", "m9", FetchLimits())
    assert [item.record.offset for item in again.records] == [3, 4]


async def test_reset_and_delete_group() -> None:
    broker = make_broker()
    await broker.produce("t", values(5))
    info = await broker.reset_group("g", "t", StartPosition.latest())
    assert info.offsets[0].committed_offset == 5
    await broker.delete_group("g")
    with pytest.raises(GroupNotFound):
        broker.describe_group("g")


async def test_stream_cursor_follows_new_records() -> None:
    broker = make_broker()
    await broker.produce("t", values(2))
    cursor = broker.open_stream("t", StartPosition.earliest())
    first = await cursor.next_batch(1.0)
    assert first is not None and [i.record.offset for i in first] == [0, 1]
    assert await cursor.next_batch(0.01) == []
    broker.wake_all()
    assert await cursor.next_batch(1.0) is None


async def test_consume_locks_are_forgotten_after_use() -> None:
    broker = make_broker()
    await broker.produce("t", values(3))
    await asyncio.gather(*(broker.consume("t", f"c{i}") for i in range(10)))
    assert len(broker._consume_locks) == 0
