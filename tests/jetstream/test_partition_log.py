"""Partition logs on a real 3-node JetStream cluster: append, read, bounds, frames, atomicity."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from minimq.core.records import ClientBytes, NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.errors import MessageTooLarge, OffsetOutOfRange, TopicNotFound
from minimq.jetstream import JetStreamStorage, open_jetstream_storage
from minimq.jetstream.message_format import message_size, to_message
from minimq.jetstream.partition_log import _BATCH_HEADERS_SIZE
from minimq.recordbatch.frames import (
    CLIENT_BATCH_EPOCH,
    OWN_BATCH_EPOCH,
    decode_records,
    encode_batch,
    parse_header,
)
from tests.support.nats_cluster import NatsCluster


async def _topic(storage: JetStreamStorage, name: str = "orders", partitions: int = 1) -> None:
    await storage.logs.create_topic(name, TopicConfig(partitions=partitions))


async def test_append_read_bounds_round_trip_every_field(storage: JetStreamStorage) -> None:
    await _topic(storage, "sensor.readings")
    log = storage.logs.partition("sensor.readings", 0)
    assert await log.bounds() == (0, 0, 0)
    records = [
        NewRecord(b"key-1", b'{"t": 1}', (("trace", b"a\r\nb"), ("bin", bytes(range(256)))), 17),
        NewRecord(None, None),
        NewRecord(b"", b"", (("empty", b""),), 2**62),
        NewRecord("ключ".encode(), "значение".encode(), (("имя", "ü".encode()),), 5),
    ]
    assert await log.append(records) == 0
    bounds = await log.bounds()
    assert (bounds.start, bounds.end) == (0, 4)
    assert bounds.size_bytes > 0
    read = await log.read(0, 10, 1_000_000)
    assert [r.offset for r in read] == [0, 1, 2, 3]
    assert (read[0].key, read[0].value, read[0].headers, read[0].timestamp) == (
        b"key-1",
        b'{"t": 1}',
        (("trace", b"a\r\nb"), ("bin", bytes(range(256)))),
        17,
    )
    assert read[1].key is None and read[1].value is None and read[1].timestamp > 0
    assert (read[2].key, read[2].value, read[2].headers) == (b"", b"", (("empty", b""),))
    assert read[3].headers == (("имя", "ü".encode()),)
    assert not any(isinstance(r.value, ClientBytes) for r in read)
    assert await log.append([NewRecord(None, b"next")]) == 4
    assert [r.offset for r in await log.read(2, 2, 1_000_000)] == [2, 3]
    assert await log.read(5, 10, 1000) == []


async def test_read_limits_and_out_of_range(storage: JetStreamStorage) -> None:
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    await log.append([NewRecord(None, b"x" * 1000) for _ in range(10)])
    # At least one record even when it alone exceeds max_bytes.
    assert [r.offset for r in await log.read(3, 10, 1)] == [3]
    assert len(await log.read(0, 10, 2500)) == 2
    assert len(await log.read(0, 4, 10**9)) == 4
    with pytest.raises(OffsetOutOfRange):
        await log.read(11, 1, 1000)
    with pytest.raises(OffsetOutOfRange):
        await log.read(-1, 1, 1000)


async def test_read_raw_encodes_frames_with_their_origin(storage: JetStreamStorage) -> None:
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    await log.append([NewRecord(b"a", b"own-1"), NewRecord(b"b", b"own-2")])
    client_frame = encode_batch(0, [NewRecord(b"c", b"kafka-1"), NewRecord(None, b"kafka-2")], 99)
    assert await log.append_batches([client_frame]) == 2
    await log.append([NewRecord(None, b"own-3")])

    frames, next_offset = await log.read_raw(1, 10**6)
    assert next_offset == 5
    headers = [parse_header(frame) for frame in frames]
    assert [(h.base_offset, h.record_count, h.leader_epoch) for h in headers] == [
        (1, 1, OWN_BATCH_EPOCH),
        (2, 2, CLIENT_BATCH_EPOCH),
        (4, 1, OWN_BATCH_EPOCH),
    ]
    decoded = [r for frame in frames for r in decode_records(frame, 0, 100)]
    assert [r.value for r in decoded] == [b"own-2", b"kafka-1", b"kafka-2", b"own-3"]
    assert [type(r.value) for r in decoded] == [bytes, ClientBytes, ClientBytes, bytes]
    read = await log.read(2, 2, 10**6)
    assert all(isinstance(r.value, ClientBytes) for r in read)
    assert await log.read_raw(5, 1000) == ([], 5)


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
async def test_a_clients_compressed_batch_is_served_with_its_codec(
    storage: JetStreamStorage, codec: int
) -> None:
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 10**7)
    for delta in range(3):
        builder.append(delta, 1000 + delta, None, b"compress me " * 20, [])
    frame = bytearray(builder.build())
    await log.append_batches([frame])
    await log.append([NewRecord(None, b"own")])
    frames, next_offset = await log.read_raw(0, 10**6)
    assert next_offset == 4
    assert [parse_header(f).codec for f in frames] == [codec, 0]
    assert [r.value for r in decode_records(frames[0], 0, 10)] == [b"compress me " * 20] * 3
    assert all(isinstance(r.value, ClientBytes) for r in decode_records(frames[0], 0, 10))


async def test_a_call_is_atomic_and_contiguous_beyond_the_batch_limit(
    storage: JetStreamStorage,
) -> None:
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    await log.append([NewRecord(None, b"first")])
    records = [NewRecord(None, f"r{i}".encode()) for i in range(2_500)]
    assert await log.append(records) == 1
    assert (await log.bounds()).end == 2_501
    values: list[bytes | None] = []
    offset = 1
    while offset < 2_501:
        page = await log.read(offset, 1000, 10**9)
        values.extend(r.value for r in page)
        offset = page[-1].offset + 1
    assert values == [f"r{i}".encode() for i in range(2_500)]


async def test_oversize_record_is_refused_and_the_connection_survives(
    storage: JetStreamStorage,
) -> None:
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    limit = storage._connection.max_payload
    with pytest.raises(MessageTooLarge):
        await log.append([NewRecord(None, b"x" * (limit + 1))])
    # Headers count too: a value just under the limit plus a large header is refused.
    with pytest.raises(MessageTooLarge):
        await log.append([NewRecord(None, b"x" * (limit - 100), (("h", b"y" * 200),))])
    with pytest.raises(MessageTooLarge):  # nothing of a batch with one oversize record
        await log.append([NewRecord(None, b"ok"), NewRecord(None, b"x" * limit)])
    assert (await log.bounds()).end == 0
    assert await log.append([NewRecord(None, b"fine")]) == 0
    assert [r.value for r in await log.read(0, 5, 1000)] == [b"fine"]


async def test_two_gateways_racing_keep_each_call_contiguous_and_in_order(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await _topic(storage)
    calls_per_writer, size = 40, 250
    logs = [storage.logs.partition("orders", 0), second_gateway.logs.partition("orders", 0)]

    async def writer(index: int) -> list[int]:
        bases = []
        for call in range(calls_per_writer):
            batch = [NewRecord(None, f"{index}:{call}:{i}".encode()) for i in range(size)]
            bases.append(await logs[index].append(batch))
        return bases

    bases_by_writer = await asyncio.gather(writer(0), writer(1))
    total = 2 * calls_per_writer * size
    assert (await logs[0].bounds()).end == total
    stored: list[bytes] = []
    offset = 0
    while offset < total:
        page = await logs[1].read(offset, 1000, 10**9)
        stored.extend(r.value or b"" for r in page)
        offset = page[-1].offset + 1
    assert len(stored) == total
    for index, bases in enumerate(bases_by_writer):
        assert bases == sorted(bases)  # each writer's calls in the order it made them
        for call, base in enumerate(bases):
            expected = [f"{index}:{call}:{i}".encode() for i in range(size)]
            assert stored[base : base + size] == expected  # contiguous, at the reported offset


async def test_a_deleted_topic_handle_raises_topic_not_found(storage: JetStreamStorage) -> None:
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    await log.append([NewRecord(None, b"x")])
    await storage.logs.delete_topic("orders")
    with pytest.raises(TopicNotFound):
        await log.bounds()
    with pytest.raises(TopicNotFound):
        await log.append([NewRecord(None, b"y")])
    await _topic(storage)
    fresh = storage.logs.partition("orders", 0)
    assert (await fresh.bounds()).end == 0
    with pytest.raises(TopicNotFound):
        await log.read(0, 1, 100)


async def test_reads_through_every_node_see_the_latest_append(
    nats_cluster: NatsCluster, storage: JetStreamStorage, namespace: str
) -> None:
    """A reader connected to each node in turn never gets less than what was acknowledged."""
    await _topic(storage)
    writer = storage.logs.partition("orders", 0)
    readers = [
        await open_jetstream_storage([url], namespace=namespace) for url in nats_cluster.urls
    ]
    try:
        for round_number in range(50):
            await writer.append([NewRecord(None, str(round_number).encode())])
            for reader in readers:
                got = await reader.logs.partition("orders", 0).read(round_number, 10, 10_000)
                assert got and got[0].value == str(round_number).encode()
    finally:
        for reader in readers:
            await reader.close()


async def test_offset_for_timestamp(storage: JetStreamStorage) -> None:
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    await log.append([NewRecord(None, b"a", (), 100), NewRecord(None, b"b", (), 200)])
    await log.append([NewRecord(None, b"c", (), 300)])
    assert await log.offset_for_timestamp(0) == 0
    assert await log.offset_for_timestamp(150) == 1
    assert await log.offset_for_timestamp(300) == 2
    assert await log.offset_for_timestamp(301) == 3


async def test_readers_never_see_part_of_a_call(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    """While 1,000-record calls are appended, the end offset only ever moves by whole calls."""
    await _topic(storage)
    writer = storage.logs.partition("orders", 0)
    reader = second_gateway.logs.partition("orders", 0)
    size, calls = 1000, 15
    done = asyncio.Event()
    seen_ends: set[int] = set()

    async def watch() -> None:
        while not done.is_set():
            seen_ends.add((await reader.bounds()).end)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    for call in range(calls):
        await writer.append([NewRecord(None, f"{call}:{i}".encode()) for i in range(size)])
    done.set()
    await watcher
    assert seen_ends, "the reader never ran"
    assert all(end % size == 0 for end in seen_ends), sorted(seen_ends)
    assert (await reader.bounds()).end == size * calls


async def test_an_uncommitted_batch_is_never_visible(storage: JetStreamStorage) -> None:
    """Messages of a batch whose commit never came are not stored (atomic: all or nothing)."""
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    await log.append([NewRecord(None, b"before")])
    location = await storage.logs._locate("orders", 0)
    client = storage._connection.client
    for number in range(1, 4):  # a batch of three, cut off before its commit
        await client.publish(
            location.subject,
            b"staged",
            headers={"Nats-Batch-Id": "cut-off-batch", "Nats-Batch-Sequence": str(number)},
        )
    await client.flush()
    assert await log.append([NewRecord(None, b"after")]) == 1
    assert [r.value for r in await log.read(0, 10, 10_000)] == [b"before", b"after"]
    assert (await log.bounds()).end == 2


async def test_a_batch_sent_again_after_a_lost_answer_is_stored_once(
    storage: JetStreamStorage,
) -> None:
    """The retry path of an unknown outcome: the same message id again is found, not re-stored."""
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    await log.append([NewRecord(None, b"first")])
    where = await storage.logs._locate("orders", 0)
    chunk = [({"Mq-Ts": "1"}, f"v{i}".encode()) for i in range(5)]
    stored = await log._commit(where, chunk, "call-1.0", None)
    assert stored == (2, 6)
    await log.append([NewRecord(None, b"someone else")])
    assert await log._commit(where, chunk, "call-1.0", None) == stored  # found, not re-stored
    assert (await log.bounds()).end == 7
    values = [r.value for r in await log.read(0, 10, 10_000)]
    assert values == [b"first", b"v0", b"v1", b"v2", b"v3", b"v4", b"someone else"]


async def test_expired_records_keep_offsets_stable(storage: JetStreamStorage) -> None:
    await storage.logs.create_topic("short", TopicConfig(retention_ms=1000))
    log = storage.logs.partition("short", 0)
    await log.append([NewRecord(None, b"a"), NewRecord(None, b"b")])
    async with asyncio.timeout(60):  # JetStream expires by max_age on its own schedule
        while (await log.bounds()).start < 2:
            await asyncio.sleep(0.2)
    assert (await log.bounds())[:2] == (2, 2)
    with pytest.raises(OffsetOutOfRange):
        await log.read(0, 10, 1000)
    assert await log.read(2, 10, 1000) == []
    assert await log.append([NewRecord(None, b"c")]) == 2
    assert [r.value for r in await log.read(2, 10, 1000)] == [b"c"]


async def test_the_largest_record_the_check_lets_through_is_stored(
    storage: JetStreamStorage,
) -> None:
    """The size check counts what the server counts: at the limit, stored, connection kept."""
    await _topic(storage)
    log = storage.logs.partition("orders", 0)
    limit = storage._connection.max_payload
    headers, _ = to_message(NewRecord(None, b"", (), 1), 0, from_client=False)
    largest = limit - message_size(headers, b"") - _BATCH_HEADERS_SIZE
    assert await log.append([NewRecord(None, b"x" * largest, (), 1)]) == 0
    with pytest.raises(MessageTooLarge):
        await log.append([NewRecord(None, b"x" * (largest + 1), (), 1)])
    assert await log.append([NewRecord(None, b"after", (), 1)]) == 1
    assert len((await log.read(0, 1, 1))[0].value or b"") == largest
