"""The Broker facade on the in-memory storage fake."""

from __future__ import annotations

import asyncio
import time

import pytest

from minimq.core import (
    Broker,
    BrokerSettings,
    FetchLimits,
    ProduceRecord,
    StartPosition,
)
from minimq.core.topic_config import TopicConfig
from minimq.errors import (
    MessageTooLarge,
    OffsetOutOfRange,
    TopicAlreadyExists,
    TopicNotFound,
)
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
        await broker.describe_topic("t")


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


async def test_stream_cursor_follows_new_records() -> None:
    broker = make_broker()
    await broker.produce("t", values(2))
    cursor = await broker.open_stream("t", StartPosition.earliest())
    first = await cursor.next_batch(1.0)
    assert first is not None and [i.record.offset for i in first] == [0, 1]
    assert await cursor.next_batch(0.01) == []
    broker.wake_all()
    assert await cursor.next_batch(1.0) is None
