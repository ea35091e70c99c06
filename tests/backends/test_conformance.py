"""What every storage backend must do, the same way (the seam in ``minimq.core.storage_seam``)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.record.memory_records import MemoryRecords

from minimq.core.records import ClientBytes, NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.errors import OffsetOutOfRange, TopicAlreadyExists, TopicNotFound
from tests.backends.conftest import Backend
from tests.support.binary_records import Stored, client_batch


def plain(n: int, prefix: str = "v") -> list[NewRecord]:
    return [NewRecord(None, f'"{prefix}{i}"'.encode()) for i in range(n)]


async def test_topics_are_created_described_listed_and_deleted(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("orders", TopicConfig(partitions=3, retention_ms=60_000))
    assert "orders" in await logs.topic_names()
    config = await logs.topic_config("orders")
    assert (config.partitions, config.retention_ms) == (3, 60_000)
    assert config.topic_id
    with pytest.raises(TopicAlreadyExists):
        await logs.create_topic("orders", TopicConfig(partitions=1))
    await logs.delete_topic("orders")
    assert "orders" not in await logs.topic_names()
    with pytest.raises(TopicNotFound):
        await logs.topic_config("orders")
    await logs.create_topic("orders", TopicConfig(partitions=1))
    again = await logs.topic_config("orders")
    assert again.topic_id != config.topic_id, "a re-created topic is another incarnation"
    assert (await logs.partition("orders", 0).bounds()).end == 0


async def test_appends_get_contiguous_offsets_and_bounds_follow(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig(partitions=2))
    log0 = logs.partition("t", 0)
    assert await log0.append(plain(3)) == 0
    assert await log0.append(plain(2, "w")) == 3
    bounds = await log0.bounds()
    assert (bounds.start, bounds.end) == (0, 5)
    assert bounds.size_bytes > 0
    assert (await logs.partition("t", 1).bounds()).end == 0, "partitions are separate logs"
    records = await log0.read(0, 100, 1 << 20)
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    assert [r.value for r in records] == [b'"v0"', b'"v1"', b'"v2"', b'"w0"', b'"w1"']


async def test_read_honours_limits_and_range(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig())
    log = logs.partition("t", 0)
    await log.append([NewRecord(None, b'"' + b"x" * 1000 + b'"') for _ in range(10)])
    assert [r.offset for r in await log.read(2, 3, 1 << 20)] == [2, 3, 4]
    one = await log.read(5, 100, 10)
    assert [r.offset for r in one] == [5], "at least one record even over max_bytes"
    some = await log.read(0, 100, 3_500)
    assert 1 <= len(some) <= 4 and some[0].offset == 0
    assert await log.read(10, 100, 1 << 20) == []
    with pytest.raises(OffsetOutOfRange):
        await log.read(11, 100, 1 << 20)
    with pytest.raises(OffsetOutOfRange):
        await log.read(-1, 100, 1 << 20)


async def test_keys_headers_and_timestamps_round_trip(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig())
    log = logs.partition("t", 0)
    awkward = bytes(range(256))
    headers = (("trace", b"abc"), ("bin", awkward), ("crlf", b"a\r\nb"), ("sp ace", "é".encode()))
    await log.append(
        [
            NewRecord(b"key with space\r\n", b'"a"', headers, 1_700_000_000_123),
            NewRecord(None, b'"b"', (), None),
            NewRecord(awkward, None, (("dup", b"1"), ("dup", b"2")), 5),
        ]
    )
    first, second, third = await log.read(0, 10, 1 << 20)
    assert (first.key, first.value, first.headers, first.timestamp) == (
        b"key with space\r\n",
        b'"a"',
        headers,
        1_700_000_000_123,
    )
    assert second.key is None and second.headers == ()
    assert second.timestamp > 1_700_000_000_000, "no producer timestamp: broker time"
    assert (third.key, third.value, third.headers, third.timestamp) == (
        awkward,
        None,
        (("dup", b"1"), ("dup", b"2")),
        5,
    )


async def test_client_batches_read_back_as_client_bytes(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig())
    log = logs.partition("t", 0)
    await log.append(plain(1))
    frame = client_batch(
        (Stored(b"k", b"\xff\x00 not json", (), False), Stored(None, b"{}", (), True))
    )
    assert await log.append_batches([frame]) == 1
    own, raw1, raw2 = await log.read(0, 10, 1 << 20)
    assert type(own.value) is bytes, "MiniMQ's own values are plain bytes"
    assert isinstance(raw1.value, ClientBytes) and raw1.value == b"\xff\x00 not json"
    assert raw1.key == b"k"
    assert isinstance(raw2.value, ClientBytes) and raw2.offset == 2


async def test_read_raw_returns_frames_that_cover_the_offset(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig())
    log = logs.partition("t", 0)
    await log.append(plain(5))
    await log.append(plain(5, "w"))
    frames, next_offset = await log.read_raw(3, 1 << 20)
    blob = b"".join(bytes(f) for f in frames)
    offsets: list[int] = []
    values: list[bytes | None] = []
    # Decoded by a Kafka client library, not by MiniMQ's own codec.
    batches = MemoryRecords(blob)
    while (batch := batches.next_batch()) is not None:
        for record in batch:
            offsets.append(record.offset)
            values.append(record.value)
    assert offsets[0] <= 3 and offsets[-1] == 9, offsets
    assert offsets == list(range(offsets[0], 10)), "contiguous"
    assert values[offsets.index(3)] == b'"v3"'
    assert next_offset == 10
    assert await log.read_raw(10, 1 << 20) == ([], 10)
    with pytest.raises(OffsetOutOfRange):
        await log.read_raw(11, 1 << 20)


async def test_offset_for_timestamp(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig())
    log = logs.partition("t", 0)
    await log.append([NewRecord(None, b"1", (), ts) for ts in (100, 200, 300)])
    assert await log.offset_for_timestamp(0) == 0
    assert await log.offset_for_timestamp(150) == 1
    assert await log.offset_for_timestamp(300) == 2
    assert await log.offset_for_timestamp(301) == 3


async def test_retention_is_kept_by_the_backend(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig(partitions=2))
    updated = await logs.update_retention("t", 3_600_000, 10_000_000)
    assert (updated.retention_ms, updated.retention_bytes) == (3_600_000, 10_000_000)
    config = await logs.topic_config("t")
    assert (config.retention_ms, config.retention_bytes) == (3_600_000, 10_000_000)
    cleared = await logs.update_retention("t", None, None)
    assert (cleared.retention_ms, cleared.retention_bytes) == (None, None)
    assert cleared.topic_id == config.topic_id


async def test_committed_offsets(backend: Backend) -> None:
    logs, offsets = backend.storage.logs, backend.storage.offsets
    await logs.create_topic("t", TopicConfig(partitions=2))
    await offsets.commit("g", [("t", 0, 5), ("t", 1, 7)], metadata={("t", 0): "note"})
    assert await offsets.committed("g") == {("t", 0): 5, ("t", 1): 7}
    assert await offsets.metadata("g") == {("t", 0): "note"}
    await offsets.commit("g", [("t", 0, 6)])
    assert await offsets.committed("g") == {("t", 0): 6, ("t", 1): 7}
    assert await offsets.metadata("g") == {}
    assert "g" in await offsets.group_names()
    with pytest.raises(TopicNotFound):
        await offsets.commit("g", [("missing", 0, 1)])
    stale = (await logs.topic_config("t")).topic_id
    await logs.delete_topic("t")
    await offsets.delete_topic("t")
    await logs.create_topic("t", TopicConfig(partitions=2))
    assert await offsets.committed("g") == {}, "a re-created topic starts without commits"
    assert stale is not None
    with pytest.raises(TopicNotFound):
        await offsets.commit("g", [("t", 0, 1)], topic_ids={"t": stale})
    assert await offsets.committed("g") == {}
    await offsets.commit("h", [("t", 0, 1)])
    await offsets.delete_group("h")
    assert "h" not in await offsets.group_names()


async def test_listeners_run_after_records_are_stored(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig(partitions=2))
    woken: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    backend.storage.add_append_listener(
        lambda topic, partition: woken.put_nowait((topic, partition))
    )
    await logs.partition("t", 1).append(plain(2))
    topic, partition = await asyncio.wait_for(woken.get(), 60)
    assert (topic, partition) == ("t", 1)
    assert (await logs.partition("t", 1).bounds()).end == 2


async def test_producer_ids_are_never_handed_out_twice(backend: Backend) -> None:
    ids = [await backend.storage.producer_ids.allocate() for _ in range(5)]
    assert len(set(ids)) == 5 and all(i >= 0 for i in ids)


async def test_concurrent_appends_keep_each_call_contiguous(backend: Backend) -> None:
    logs = backend.storage.logs
    await logs.create_topic("t", TopicConfig())
    log = logs.partition("t", 0)
    calls = [[NewRecord(None, f'"{c}-{i}"'.encode()) for i in range(20)] for c in range(8)]
    bases = await asyncio.gather(*(log.append(call) for call in calls))
    records = await log.read(0, 1000, 1 << 24)
    assert len(records) == 160
    for call, base in zip(calls, bases, strict=True):
        assert [r.value for r in records[base : base + 20]] == [r.value for r in call]


async def test_data_survives_reopen(persistent_backend: Backend) -> None:
    logs = persistent_backend.storage.logs
    await logs.create_topic("t", TopicConfig(partitions=2, retention_ms=90_000))
    await logs.partition("t", 1).append(plain(4))
    await persistent_backend.storage.offsets.commit("g", [("t", 1, 3)])
    topic_id = (await logs.topic_config("t")).topic_id
    reopened = await persistent_backend.reopen()
    config = await reopened.logs.topic_config("t")
    assert (config.partitions, config.retention_ms, config.topic_id) == (2, 90_000, topic_id)
    assert [r.value for r in await reopened.logs.partition("t", 1).read(0, 10, 1 << 20)] == [
        b'"v0"',
        b'"v1"',
        b'"v2"',
        b'"v3"',
    ]
    assert await reopened.offsets.committed("g") == {("t", 1): 3}
    assert await reopened.logs.partition("t", 1).append(plain(1)) == 4
