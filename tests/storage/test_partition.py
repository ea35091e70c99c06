from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from minimq.core.records import NewRecord
from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import (
    InvalidRequest,
    LogFailed,
    OffsetOutOfRange,
)
from minimq.recordbatch.frames import HEADER_READ_BYTES
from minimq.storage import open_storage
from minimq.storage.engine import DiskStorage
from minimq.storage.partition import DiskPartitionLog
from tests.storage.conftest import SMALL_SEGMENTS, records


async def make_log(storage: DiskStorage, config: TopicConfig = SMALL_SEGMENTS) -> DiskPartitionLog:
    await storage.logs.create_topic("t", config)
    return storage.logs.partition("t", 0)


async def fill(log: DiskPartitionLog, batches: int, per_batch: int) -> None:
    for number in range(batches):
        await log.append(records(per_batch, start=number * per_batch))


def count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count calls of ``os.<name>`` while still performing them."""
    calls: list[int] = []
    real: Callable[[int], None] = getattr(os, name)

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, name, counting)
    return calls


async def test_offsets_are_consecutive_and_reads_return_what_was_appended(
    storage: DiskStorage,
) -> None:
    log = await make_log(storage)
    assert (log.start_offset, log.end_offset, log.size_bytes) == (0, 0, 0)
    assert await log.append(records(3)) == 0
    assert await log.append(records(2, start=3)) == 3
    assert log.end_offset == 5
    got = await log.read(0, 100, 1 << 20)
    assert [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in got] == [
        (i, r.key, r.value, r.headers, r.timestamp) for i, r in enumerate(records(5))
    ]
    assert log.size_bytes == sum(p.stat().st_size for p in Path(log.directory).glob("*.log"))


async def test_read_limits_and_range(storage: DiskStorage) -> None:
    log = await make_log(storage)
    await fill(log, batches=30, per_batch=4)
    assert [r.offset for r in await log.read(57, 3, 1 << 20)] == [57, 58, 59]
    assert [r.offset for r in await log.read(118, 10, 1 << 20)] == [118, 119]
    assert await log.read(120, 10, 1 << 20) == []
    # max_bytes: each record carries 20 value bytes + 2-3 key bytes + 3-4 header bytes,
    # and its one header counts HEADER_READ_BYTES more (see storage/batch.py).
    assert len(await log.read(0, 100, 60 + 2 * HEADER_READ_BYTES)) == 2
    assert len(await log.read(0, 100, 60)) == 1
    assert len(await log.read(0, 100, 1)) == 1  # at least one record, even past max_bytes
    with pytest.raises(OffsetOutOfRange):
        await log.read(121, 1, 100)
    with pytest.raises(OffsetOutOfRange):
        await log.read(-1, 1, 100)


async def test_reads_across_segments_see_every_offset_once(storage: DiskStorage) -> None:
    log = await make_log(storage)
    await fill(log, batches=40, per_batch=5)
    assert log.segment_count > 5
    for start in (0, 7, 99, 150, 199):
        assert [r.offset for r in await log.read(start, 1000, 1 << 30)] == list(range(start, 200))


async def test_empty_batch_is_rejected(storage: DiskStorage) -> None:
    log = await make_log(storage)
    with pytest.raises(InvalidRequest):
        await log.append([])


async def test_roll_by_size_keeps_segments_under_the_limit(storage: DiskStorage) -> None:
    log = await make_log(storage)
    await fill(log, batches=50, per_batch=3)
    sizes = [p.stat().st_size for p in sorted(Path(log.directory).glob("*.log"))]
    assert len(sizes) == log.segment_count > 1
    assert all(0 < size <= 1024 for size in sizes)
    names = sorted(p.stem for p in Path(log.directory).glob("*.log"))
    assert names[0] == "0" * 20
    assert all(len(name) == 20 for name in names)


async def test_roll_by_age(storage: DiskStorage) -> None:
    log = await make_log(storage, TopicConfig(segment_ms=20))
    await log.append(records(1))
    await log.append(records(1))
    assert log.segment_count == 1
    await asyncio.sleep(0.05)
    await log.append(records(1))
    assert log.segment_count == 2


async def test_concurrent_appends_share_one_fsync(
    storage: DiskStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = await make_log(storage, TopicConfig())
    fsyncs = count_calls(monkeypatch, "fsync")
    offsets = await asyncio.gather(*(log.append(records(2)) for _ in range(50)))
    assert sorted(offsets) == list(range(0, 100, 2))
    assert 1 <= len(fsyncs) <= 2
    assert [r.offset for r in await log.read(0, 1000, 1 << 20)] == list(range(100))


async def test_interval_policy_acknowledges_before_the_fsync(
    storage: DiskStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = await make_log(storage, TopicConfig(fsync=FsyncPolicy.parse("interval:50")))
    fsyncs = count_calls(monkeypatch, "fsync")
    await log.append(records(1))
    assert fsyncs == []
    for _ in range(100):
        if fsyncs:
            break
        await asyncio.sleep(0.02)
    assert fsyncs, "the interval fsync did not run within 2 s"


async def test_never_policy_fsyncs_only_on_close(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = await open_storage(data_dir, FsyncPolicy.parse("never"))
    log = await make_log(storage, TopicConfig())
    fsyncs = count_calls(monkeypatch, "fsync")
    for _ in range(5):
        await log.append(records(10))
    await asyncio.sleep(0.1)
    assert fsyncs == []
    await storage.close()
    assert fsyncs


async def test_offset_for_timestamp(storage: DiskStorage) -> None:
    log = await make_log(storage)
    await fill(log, batches=40, per_batch=5)  # timestamps 1000 + offset
    assert await log.offset_for_timestamp(0) == 0
    for offset in (0, 1, 57, 133, 199):
        assert await log.offset_for_timestamp(1_000 + offset) == offset
    assert await log.offset_for_timestamp(5_000) == 200


async def test_offset_for_timestamp_with_timestamps_out_of_order(storage: DiskStorage) -> None:
    log = await make_log(storage)
    stamps = [50, 10, 70, 20, 60, 90, 30]
    for stamp in stamps:
        await log.append([NewRecord(b"k", b"v" * 200, (), stamp)])
    assert await log.offset_for_timestamp(55) == 2
    assert await log.offset_for_timestamp(15) == 0
    assert await log.offset_for_timestamp(80) == 5
    assert await log.offset_for_timestamp(91) == 7


async def test_retention_by_size_deletes_oldest_whole_segments(storage: DiskStorage) -> None:
    log = await make_log(storage, TopicConfig(segment_bytes=1024, retention_bytes=3000))
    await fill(log, batches=60, per_batch=3)
    before = log.segment_count
    deleted = await storage.logs.apply_retention()
    assert deleted > 0
    assert log.segment_count == before - deleted
    first = sorted(Path(log.directory).glob("*.log"))[0]
    assert log.start_offset == int(first.stem) > 0
    assert log.size_bytes >= 3000
    assert log.size_bytes - first.stat().st_size < 3000
    with pytest.raises(OffsetOutOfRange):
        await log.read(0, 1, 100)
    assert (await log.read(log.start_offset, 1, 100))[0].offset == log.start_offset
    assert await storage.logs.apply_retention() == 0


async def test_retention_by_time_removes_expired_segments_including_the_active_one(
    storage: DiskStorage,
) -> None:
    log = await make_log(storage, TopicConfig(segment_bytes=1024, retention_ms=60_000))
    await fill(log, batches=20, per_batch=3)  # timestamps in 1970: long expired
    assert await storage.logs.apply_retention() > 0
    assert log.start_offset == log.end_offset == 60
    assert await log.read(60, 10, 100) == []
    assert await log.append(records(1)) == 60
    fresh = NewRecord(b"k", b"v")  # broker time: not expired
    await log.append([fresh])
    await storage.logs.apply_retention()
    assert (await log.read(61, 10, 1000))[0].value == b"v"


def failing(error: int, after: int = 0) -> Callable[..., int]:
    calls = [0]

    def fail(*args: object) -> int:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(error, os.strerror(error))
        fd, data, position = args
        assert isinstance(fd, int) and isinstance(position, int)
        return real_pwrite(fd, memoryview(data)[:10], position)  # type: ignore[arg-type]

    return fail


real_pwrite = os.pwrite


# ENOSPC under fsync=always recovers in place instead: tests/reliability/test_disk_errors.py.
# Under "never" a small group is written on the event loop, under "always" in a
# worker thread: both paths must fail the same way.
@pytest.mark.parametrize("fsync", ["always", "never"])
@pytest.mark.parametrize(("error", "expected"), [(errno.EIO, LogFailed)])
async def test_failed_write_poisons_the_log_until_reopened(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: int,
    expected: type[Exception],
    fsync: str,
) -> None:
    storage = await open_storage(data_dir)
    log = await make_log(storage, replace(SMALL_SEGMENTS, fsync=FsyncPolicy.parse(fsync)))
    await fill(log, batches=3, per_batch=2)
    log_file = sorted(Path(log.directory).glob("*.log"))[-1]
    size_before = log_file.stat().st_size
    monkeypatch.setattr(os, "pwrite", failing(error, after=1))  # one short write, then fail
    with pytest.raises(expected):
        await log.append(records(2, start=6))
    monkeypatch.undo()
    assert log_file.stat().st_size == size_before  # the partial write was cut off
    with pytest.raises(LogFailed):
        await log.append(records(1, start=6))
    assert [r.offset for r in await log.read(0, 100, 1 << 20)] == list(range(6))
    await storage.close()
    assert not (data_dir / ".clean-shutdown").exists()

    storage = await open_storage(data_dir)
    log = storage.logs.partition("t", 0)
    assert log.end_offset == 6
    assert await log.append(records(1, start=6)) == 6
    assert [r.value for r in await log.read(0, 100, 1 << 20)] == [r.value for r in records(7)]
    await storage.close()


async def test_failed_fsync_fails_every_waiting_append_and_is_never_retried(
    storage: DiskStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = await make_log(storage, TopicConfig())
    await log.append(records(1))
    attempts: list[int] = []

    def broken_fsync(fd: int) -> None:
        attempts.append(fd)
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    results = await asyncio.gather(
        *(log.append(records(1)) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(result, LogFailed) for result in results)
    assert len(attempts) == 1
    assert log.end_offset == 1
    assert [r.offset for r in await log.read(0, 10, 1 << 20)] == [0]
    monkeypatch.undo()


async def test_unexpected_writer_error_fails_appends_instead_of_hanging(
    storage: DiskStorage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = await make_log(storage, TopicConfig())
    await log.append(records(1))

    def broken_plan(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("minimq.storage.segment.Segment.plan", broken_plan)
    with pytest.raises(LogFailed):
        await asyncio.wait_for(log.append(records(1)), timeout=5)
    monkeypatch.undo()
    with pytest.raises(LogFailed):
        await log.append(records(1))
    assert log.end_offset == 1
    assert "writer failed" in caplog.text


async def test_readers_never_see_a_batch_that_is_still_being_written(
    storage: DiskStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = await make_log(storage, TopicConfig())
    await log.append(records(2))
    write_started, release = threading.Event(), threading.Event()

    def slow_pwrite(fd: int, data: bytes, position: int) -> int:
        written = real_pwrite(fd, memoryview(data)[:7], position)  # part of the batch is on disk
        write_started.set()
        assert release.wait(10)
        return written

    monkeypatch.setattr(os, "pwrite", slow_pwrite)
    pending = asyncio.ensure_future(log.append(records(3, start=2)))
    assert await asyncio.to_thread(write_started.wait, 10)
    monkeypatch.setattr(os, "pwrite", real_pwrite)  # the rest of the write goes through
    assert log.end_offset == 2
    assert [r.offset for r in await log.read(0, 100, 1 << 20)] == [0, 1]
    assert await log.read(2, 100, 1 << 20) == []
    release.set()
    assert await pending == 2
    assert [r.offset for r in await log.read(0, 100, 1 << 20)] == [0, 1, 2, 3, 4]
