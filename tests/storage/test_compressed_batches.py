"""Client batches stored verbatim: every codec, raw reads, decoded reads, recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from crc32c import crc32c

from minimq.core.topic_config import TopicConfig
from minimq.errors import OffsetOutOfRange
from minimq.storage import open_storage
from minimq.storage.engine import DiskStorage
from tests.storage.kafka_batches import BASE_TIMESTAMP, CODECS, client_batch, raw_snappy_batch

ROOT = Path(__file__).resolve().parents[2]
CODEC_BATCHES = {
    **{name: (lambda values, name=name: client_batch(values, codec=name)) for name in CODECS},
    "raw-snappy": raw_snappy_batch,
}


def values(count: int, start: int = 0) -> list[bytes]:
    return [f"value-{i:05d}".encode() * 3 for i in range(start, start + count)]


async def stored_log(storage: DiskStorage) -> bytes:
    log = storage.logs.partition("t", 0)
    return (log.directory / "00000000000000000000.log").read_bytes()


@pytest.mark.parametrize("codec", sorted(CODEC_BATCHES))
async def test_a_client_batch_is_stored_verbatim_but_for_its_base_offset(
    storage: DiskStorage, codec: str
) -> None:
    await storage.logs.create_topic("t", TopicConfig())
    log = storage.logs.partition("t", 0)
    first = CODEC_BATCHES[codec](values(5))
    second = CODEC_BATCHES[codec](values(7, 5))
    assert await log.append_batches([bytearray(first)]) == 0
    assert await log.append_batches([bytearray(second)]) == 5
    on_disk = await stored_log(storage)
    # Base offset 5 and the client-batch mark (partitionLeaderEpoch 0); all else the client's.
    assert on_disk[len(first) + 16 :] == second[16:]
    assert on_disk[len(first) + 8 : len(first) + 12] == second[8:12]
    assert int.from_bytes(on_disk[len(first) : len(first) + 8], "big") == 5
    assert on_disk[len(first) + 12 : len(first) + 16] == b"\x00\x00\x00\x00"
    assert on_disk[16 : len(first)] == first[16:] and on_disk[8:12] == first[8:12]
    stored_crc = int.from_bytes(on_disk[len(first) + 17 : len(first) + 21], "big")
    assert crc32c(on_disk[len(first) + 21 :]) == stored_crc

    # Decoded reads (HTTP, SSE, UI) see the records, compressed or not.
    records = await log.read(0, 100, 1 << 20)
    assert [r.offset for r in records] == list(range(12))
    assert [r.value for r in records] == values(12)
    assert records[3].key == b"key" and records[3].headers == (("h", b"v"),)
    assert records[3].timestamp == BASE_TIMESTAMP + 3
    # From the middle of a batch: its later records only.
    assert [r.offset for r in await log.read(7, 100, 1 << 20)] == list(range(7, 12))
    assert await log.offset_for_timestamp(BASE_TIMESTAMP + 2) == 2


async def test_a_raw_read_returns_the_whole_batch_holding_the_offset(storage: DiskStorage) -> None:
    await storage.logs.create_topic("t", TopicConfig())
    log = storage.logs.partition("t", 0)
    frames = [client_batch(values(10, 10 * n), codec="lz4") for n in range(3)]
    for frame in frames:
        await log.append_batches([bytearray(frame)])
    on_disk = await stored_log(storage)

    views, next_offset = await log.read_raw(14, len(frames[1]))  # mid-batch, room for one
    assert b"".join(views) == on_disk[len(frames[0]) : len(frames[0]) + len(frames[1])]
    assert next_offset == 20
    views, next_offset = await log.read_raw(0, 1 << 20)
    assert b"".join(views) == on_disk and next_offset == 30
    # A first batch larger than max_bytes still comes whole; nothing after it.
    views, next_offset = await log.read_raw(25, 1)
    assert b"".join(views) == on_disk[-len(frames[2]) :] and next_offset == 30
    assert await log.read_raw(30, 1 << 20) == ([], 30)
    with pytest.raises(OffsetOutOfRange):
        await log.read_raw(31, 100)


async def test_raw_reads_cross_segments_and_index_entries(storage: DiskStorage) -> None:
    await storage.logs.create_topic("t", TopicConfig(segment_bytes=8 * 1024))
    log = storage.logs.partition("t", 0)
    frames = [client_batch(values(3, 3 * n)) for n in range(200)]
    for frame in frames:
        await log.append_batches([bytearray(frame)])
    assert log.segment_count > 3
    for offset in (0, 1, 299, 301, 599):
        views, next_offset = await log.read_raw(offset, 3000)
        data = b"".join(views)
        number = offset // 3
        assert data[16:].startswith(frames[number][16:]), offset  # but for the origin mark
        assert int.from_bytes(data[:8], "big") == 3 * number
        assert len(data) <= 3000 and next_offset > offset
    # Everything, read on from where each read ended, is every batch in order.
    offset, whole = 0, b""
    while offset < log.end_offset:
        views, offset = await log.read_raw(offset, 5000)
        whole += b"".join(views)
    assert whole.count(b"value-00599") == 3 and len(whole) == sum(map(len, frames))


async def test_several_batches_of_one_append_get_consecutive_offsets(storage: DiskStorage) -> None:
    await storage.logs.create_topic("t", TopicConfig())
    log = storage.logs.partition("t", 0)
    batch = [bytearray(client_batch(values(4), codec="zstd")) for _ in range(3)]
    assert await log.append_batches(batch) == 0
    assert log.end_offset == 12
    assert [r.offset for r in await log.read(0, 100, 1 << 20)] == list(range(12))


async def test_compressed_producer_batches_survive_kill_9(data_dir: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.raw_crash_child", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    acknowledged: list[tuple[int, int]] = []
    try:
        while len(acknowledged) < 200:
            line = child.stdout.readline()
            if not line:
                break
            base, sequence = map(int, line.split())
            acknowledged.append((base, sequence))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        stderr = child.stderr.read().decode()
        child.stdout.close()
        child.stderr.close()
    assert len(acknowledged) == 200, stderr
    storage = await open_storage(data_dir)
    try:
        log = storage.logs.partition("crash", 0)
        for base, sequence in acknowledged:
            records = await log.read(base, 5, 1 << 20)
            assert [r.value for r in records] == [f"{sequence}-{i}".encode() for i in range(5)]
        headers = log.recent_producer_batches(1 << 30)()
        assert {h.base_sequence for h in headers} >= {s for _, s in acknowledged}
        assert all(h.producer_id == 4242 for h in headers)
    finally:
        await storage.close()
