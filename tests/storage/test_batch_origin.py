"""A batch's origin, kept on disk: MiniMQ's own (``append``) or a Kafka client's (raw append).

``partitionLeaderEpoch`` marks it (-1 own, 0 a client's). The decoded read
gives a client's values as :class:`ClientBytes` and MiniMQ's own as plain
``bytes``, which the HTTP API trusts (``minimq.server.value_rule``), so the
mark must survive restarts, and a data directory from before it (-1 on
every batch) must read as it did.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from minimq.core.records import ClientBytes, Record
from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import CorruptLog
from minimq.recordbatch.frames import CLIENT_BATCH_EPOCH, OWN_BATCH_EPOCH, parse_header
from minimq.storage import open_storage
from minimq.storage.partition import DiskPartitionLog
from tests.storage.conftest import records
from tests.storage.kafka_batches import client_batch

LOG = "00000000000000000000.log"
CLIENT_VALUES = [b"\x00\xffnot JSON", b'{"a":1}']


def _epochs(log_file: Path) -> list[int]:
    data = log_file.read_bytes()
    epochs, position = [], 0
    while position < len(data):
        header = parse_header(data, position)
        epochs.append(header.leader_epoch)
        position += header.total_size
    return epochs


def _reopen(directory: Path, *, clean: bool) -> DiskPartitionLog:
    return DiskPartitionLog.open(directory, TopicConfig(), FsyncPolicy(), clean=clean)


def _value_types(read: list[Record]) -> list[type]:
    return [type(record.value) for record in read]


async def test_client_values_read_back_as_client_bytes_own_as_bytes_across_restarts(
    data_dir: Path,
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig())
    log = storage.logs.partition("t", 0)
    await log.append(records(2))  # offsets 0-1
    await log.append_batches([bytearray(client_batch(CLIENT_VALUES))])  # 2-3
    await log.append_batches([bytearray(client_batch(CLIENT_VALUES, codec="lz4"))])  # 4-5
    await log.append(records(1, start=6))  # 6
    expected = [bytes, bytes, *[ClientBytes] * 4, bytes]
    assert _value_types(await log.read(0, 100, 1 << 20)) == expected
    await storage.close()
    directory = data_dir / "topics" / "t" / "0"
    own, client = OWN_BATCH_EPOCH, CLIENT_BATCH_EPOCH
    assert _epochs(directory / LOG) == [own, client, client, own]

    # A clean start (stored index) and an unclean one (every frame verified again).
    for clean in (True, False):
        reopened = _reopen(directory, clean=clean)
        try:
            read = await reopened.read(0, 100, 1 << 20)
            assert _value_types(read) == expected, f"clean={clean}"
            assert [r.value for r in read[2:6]] == CLIENT_VALUES * 2
            assert [r.value for r in read[:2]] == [r.value for r in records(2)]
            # Mid-batch, the same; keys and header values stay plain bytes either way.
            (middle,) = await reopened.read(3, 1, 1 << 20)
            assert type(middle.value) is ClientBytes and middle.value == CLIENT_VALUES[1]
            assert {type(r.key) for r in read} == {bytes}
            assert {type(value) for r in read for _, value in r.headers} == {bytes}
        finally:
            await reopened.close()


async def test_a_client_tombstone_stays_none(data_dir: Path) -> None:
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
    builder.append(0, 1_700_000_000_000, b"k", None, [])
    storage = await open_storage(data_dir)
    try:
        await storage.logs.create_topic("t", TopicConfig())
        log = storage.logs.partition("t", 0)
        await log.append_batches([builder.build()])
        (record,) = await log.read(0, 10, 1 << 20)
        assert record.value is None
    finally:
        await storage.close()


def _frame_before_the_mark(base_offset: int, values: list[bytes]) -> bytes:
    """A batch as MiniMQ wrote every batch before the mark: uncompressed, epoch -1."""
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
    for delta, value in enumerate(values):
        builder.append(delta, 1_700_000_000_000 + delta, None, value, [("h", b"v")])
    frame = builder.build()
    frame[:8] = base_offset.to_bytes(8, "big")
    return bytes(frame)


@pytest.mark.parametrize("clean", [True, False])
async def test_a_data_directory_from_before_the_mark_opens_and_reads(
    data_dir: Path, clean: bool
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig())
    await storage.close()
    directory = data_dir / "topics" / "t" / "0"
    values = [b'{"n":%d}' % n for n in range(9)]
    frames = [_frame_before_the_mark(3 * n, values[3 * n : 3 * n + 3]) for n in range(3)]
    assert {frame[12:16] for frame in frames} == {b"\xff\xff\xff\xff"}
    (directory / LOG).write_bytes(b"".join(frames))
    for index in (*directory.glob("*.index"), *directory.glob("*.timeindex")):
        index.unlink()  # rebuilt from the log, as after any lost index

    reopened = _reopen(directory, clean=clean)
    try:
        assert reopened.end_offset == 9
        read = await reopened.read(0, 100, 1 << 20)
        assert [r.value for r in read] == values
        assert set(_value_types(read)) == {bytes}  # MiniMQ's own, as every such batch was
    finally:
        await reopened.close()
    storage = await open_storage(data_dir)  # and through the whole engine
    try:
        assert (await storage.logs.partition("t", 0).read(4, 2, 1 << 20))[0].value == values[4]
    finally:
        await storage.close()


async def test_any_other_leader_epoch_is_damage(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig())
    log = storage.logs.partition("t", 0)
    await log.append(records(2))
    await log.append_batches([bytearray(client_batch(CLIENT_VALUES))])
    await storage.close()
    directory = data_dir / "topics" / "t" / "0"
    data = bytearray((directory / LOG).read_bytes())
    second = parse_header(data).total_size
    data[second + 12 : second + 16] = (1).to_bytes(4, "big", signed=True)

    reopened = _reopen(directory, clean=True)
    try:
        (directory / LOG).write_bytes(data)  # damaged under a reader: not served
        assert len(await reopened.read(0, 2, 1 << 20)) == 2
        with pytest.raises(CorruptLog, match="malformed batch header"):
            await reopened.read(2, 10, 1 << 20)
    finally:
        await reopened.close()
    with pytest.raises(CorruptLog, match="refusing to open"):
        _reopen(directory, clean=True)  # after a clean stop the tail must be whole
    reopened = _reopen(directory, clean=False)  # after a crash: a torn tail, cut off
    try:
        assert reopened.end_offset == 2
    finally:
        await reopened.close()
