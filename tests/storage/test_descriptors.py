"""The bounded cache of segment descriptors: capacity, leases, and what a partition holds open."""

from __future__ import annotations

import errno
import os
import random
import threading
from pathlib import Path

import pytest

from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import StorageError
from minimq.storage import StorageLimits, open_storage
from minimq.storage.descriptors import DescriptorCache
from minimq.storage.partition import DiskPartitionLog
from minimq.storage.segment import LOG_FLAGS
from tests.storage.conftest import SMALL_SEGMENTS, records


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make_files(directory: Path, count: int) -> list[Path]:
    paths = []
    for number in range(count):
        path = directory / f"{number:04d}.log"
        path.write_bytes(f"file {number:04d}".encode())
        paths.append(path)
    return paths


def test_idle_descriptors_stay_within_the_capacity(tmp_path: Path) -> None:
    cache = DescriptorCache(8)
    files = [cache.register(path, LOG_FLAGS) for path in make_files(tmp_path, 50)]
    before = open_fds()
    for file, path in zip(files * 3, make_files(tmp_path, 50) * 3, strict=True):
        with cache.lease(file) as fd:
            assert os.pread(fd, 9, 0) == path.read_bytes()[:9]
        assert cache.open_count <= 8
    assert open_fds() - before <= 8
    assert cache.opens == 150  # 50 files in turn through 8 slots: every use reopens
    for file in files:
        cache.discard(file)
    assert cache.open_count == 0
    assert open_fds() == before


def test_recently_used_descriptors_are_kept(tmp_path: Path) -> None:
    cache = DescriptorCache(4)
    files = [cache.register(path, LOG_FLAGS) for path in make_files(tmp_path, 4)]
    for _ in range(10):
        for file in files:
            with cache.lease(file):
                pass
    assert cache.opens == 4, "within the capacity nothing is closed and reopened"


def test_a_leased_descriptor_is_never_closed(tmp_path: Path) -> None:
    cache = DescriptorCache(2)
    paths = make_files(tmp_path, 6)
    files = [cache.register(path, LOG_FLAGS) for path in paths]
    fds = [cache.acquire(file) for file in files]
    assert cache.open_count == 6, "more leases than the capacity: all stay open"
    for fd, path in zip(fds, paths, strict=True):
        assert os.pread(fd, 64, 0) == path.read_bytes()
    for file in files:
        cache.release(file)
    assert cache.open_count == 2, "back to the capacity once the leases end"


def test_a_discarded_file_closes_at_its_last_release_and_cannot_be_leased_again(
    tmp_path: Path,
) -> None:
    cache = DescriptorCache(4)
    (path,) = make_files(tmp_path, 1)
    file = cache.register(path, LOG_FLAGS)
    fd = cache.acquire(file)
    cache.discard(file)
    path.unlink()  # as retention does while a reader is still in the segment
    assert os.pread(fd, 9, 0) == b"file 0000", "still open for the reader that holds it"
    with pytest.raises(OSError) as late:
        cache.acquire(file)  # open, but no new lease on a discarded file
    assert late.value.errno == errno.EBADF
    cache.release(file)
    assert cache.open_count == 0
    with pytest.raises(OSError) as refused:
        cache.acquire(file)
    assert refused.value.errno == errno.EBADF


def test_readers_in_many_threads_always_read_their_own_file(tmp_path: Path) -> None:
    """Eviction under concurrent leases never closes, or swaps, a descriptor in use.

    Twelve files through three slots from eight threads: a descriptor closed
    under a reader would fail with EBADF or, once the kernel reused its
    number, return another file's bytes.
    """
    cache = DescriptorCache(3)
    paths = make_files(tmp_path, 12)
    files = [cache.register(path, LOG_FLAGS) for path in paths]
    expected = [path.read_bytes() for path in paths]
    failures: list[str] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2_000):
            number = rng.randrange(len(files))
            try:
                with cache.lease(files[number]) as fd:
                    first = os.pread(fd, 64, 0)
                    os.sched_yield()  # let other threads evict meanwhile
                    second = os.pread(fd, 64, 0)
            except OSError as exc:
                failures.append(f"file {number}: {exc}")
                return
            if first != expected[number] or second != expected[number]:
                failures.append(f"file {number}: read {first!r} / {second!r}")
                return

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a reader hung"
    assert failures == []
    assert cache.open_count <= 3
    assert cache.evictions > 0, "the test must make the cache evict"


async def test_a_partition_of_many_segments_reads_everything_through_a_few_descriptors(
    data_dir: Path,
) -> None:
    storage = await open_storage(data_dir, limits=StorageLimits(max_open_segment_files=4))
    await storage.logs.create_topic("t", SMALL_SEGMENTS)
    log = storage.logs.partition("t", 0)
    written = []
    for number in range(60):
        batch = records(3, start=number * 3)
        await log.append(batch)
        written.extend(batch)
    assert log.segment_count >= 10
    files = storage.logs.files
    assert files.open_count <= 4
    got = await log.read(0, 10_000, 1 << 30)
    assert [r.value for r in got] == [r.value for r in written]
    assert files.open_count <= 4
    await storage.close()
    assert files.open_count == 0


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "after-crash"])
async def test_opening_many_topics_never_holds_more_than_the_cache(
    data_dir: Path, clean: bool
) -> None:
    limits = StorageLimits(max_open_segment_files=16)
    storage = await open_storage(data_dir, limits=limits)
    for number in range(150):
        await storage.logs.create_topic(f"t{number}", TopicConfig(partitions=2))
        await storage.logs.partition(f"t{number}", 1).append(records(2))
    await storage.close()
    if not clean:
        (data_dir / ".clean-shutdown").unlink()

    before = open_fds()
    peak = 0
    real_open = os.open

    def counting_open(*args: object, **kwargs: object) -> int:
        nonlocal peak
        fd = real_open(*args, **kwargs)  # type: ignore[arg-type]
        peak = max(peak, open_fds())
        return fd

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "open", counting_open)
        storage = await open_storage(data_dir, limits=limits)
    try:
        # 300 partitions (900 segment files) opened and recovered, never more than
        # the cache's 16 segment descriptors (+ the lock, the directory lock and the
        # offsets database with its WAL and a thread's worth of slack) at once.
        assert peak - before <= 16 + 12, f"{peak - before} descriptors at the peak"
        assert storage.logs.files.open_count <= 16
        for number in range(0, 150, 7):
            got = await storage.logs.partition(f"t{number}", 1).read(0, 10, 1 << 20)
            assert [r.value for r in got] == [r.value for r in records(2)]
    finally:
        await storage.close()


async def test_an_unsynced_interval_write_keeps_its_log_open_until_the_fsync(
    data_dir: Path,
) -> None:
    storage = await open_storage(
        data_dir, FsyncPolicy.parse("interval:3600000"), StorageLimits(max_open_segment_files=1)
    )
    for name in ("a", "b", "c"):
        await storage.logs.create_topic(name, TopicConfig())
        await storage.logs.partition(name, 0).append(records(1))
    files = storage.logs.files
    # Three active logs written and not yet fsynced, each holding its lease, so the
    # cache holds more than its capacity of one until the interval fsync.
    assert files.open_count >= 3
    await storage.close()  # fsyncs and gives every descriptor back
    assert files.open_count == 0


async def test_a_descriptor_that_cannot_be_reopened_fails_reads_and_appends_cleanly(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE on a reopen: a 503-class ``StorageError``, never a poisoned log."""
    storage = await open_storage(data_dir, limits=StorageLimits(max_open_segment_files=1))
    await storage.logs.create_topic("a", TopicConfig())
    await storage.logs.create_topic("b", TopicConfig())
    a, b = storage.logs.partition("a", 0), storage.logs.partition("b", 0)
    await a.append(records(2))
    await b.append(records(2))  # "a"'s descriptors were closed to make room
    real_open = os.open
    root = str(data_dir)

    def out_of_descriptors(path: object, *args: object, **kwargs: object) -> int:
        if str(path).startswith(root):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", out_of_descriptors)
    with pytest.raises(StorageError) as read_refused:
        await a.read(0, 10, 1 << 20)
    assert read_refused.value.code == "STORAGE_ERROR"
    with pytest.raises(StorageError) as append_refused:
        await a.append(records(1, start=2))
    assert append_refused.value.code == "STORAGE_ERROR", "not LOG_FAILED: nothing was written"
    monkeypatch.setattr(os, "open", real_open)

    assert not a.failed
    assert await a.append(records(1, start=2)) == 2, "the log stayed writable"
    assert [r.value for r in await a.read(0, 10, 1 << 20)] == [r.value for r in records(3)]
    await storage.close()


async def test_a_roll_whose_segment_cannot_be_reopened_leaves_the_log_writable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE when a roll reopens the full segment to fsync it: refused, not poisoned."""
    storage = await open_storage(data_dir, limits=StorageLimits(max_open_segment_files=1))
    await storage.logs.create_topic("t", SMALL_SEGMENTS)
    await storage.logs.create_topic("other", TopicConfig())
    log = storage.logs.partition("t", 0)
    count = 0
    while log.segment_count == 1:  # fill the first segment up to just before its roll
        await log.append(records(1, start=count))
        count += 1
    await storage.logs.partition("other", 0).append(records(1))  # evicts t's descriptors
    segments = log.segment_count
    real_open = os.open
    root = str(data_dir / "topics" / "t")

    def out_of_descriptors(path: object, *args: object, **kwargs: object) -> int:
        if str(path).startswith(root):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    big = [records(1, start=count, size=900)[0]]
    monkeypatch.setattr(os, "open", out_of_descriptors)
    with pytest.raises(StorageError) as refused:
        await log.append(big)  # needs a roll
    assert refused.value.code == "STORAGE_ERROR"
    assert ": roll " in refused.value.message, refused.value.message
    monkeypatch.setattr(os, "open", real_open)
    assert not log.failed and log.segment_count == segments
    assert await log.append(big) == count
    assert log.segment_count == segments + 1
    await storage.close()


def test_a_standalone_partition_gets_a_cache_of_its_own(data_dir: Path) -> None:
    directory = data_dir / "p"
    directory.mkdir()
    log = DiskPartitionLog.open(directory, TopicConfig(), FsyncPolicy(), clean=True)
    assert log.segment_count == 1
    log.close_files()
