from __future__ import annotations

import logging
import os
import resource
from pathlib import Path

import pytest

from minimq.core.records import NewRecord
from minimq.core.storage_seam import LogStore, OffsetStore, PartitionLog, Storage
from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import DataDirLocked, StorageError
from minimq.storage import StorageLimits, open_storage


async def test_second_opener_is_refused_until_the_first_closes(data_dir: Path) -> None:
    first = await open_storage(data_dir)
    with pytest.raises(DataDirLocked):
        await open_storage(data_dir)
    await first.close()
    second = await open_storage(data_dir)
    await second.close()


async def test_clean_shutdown_marker_lives_only_between_close_and_open(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    assert not (data_dir / ".clean-shutdown").exists()
    await storage.close()
    assert (data_dir / ".clean-shutdown").exists()
    storage = await open_storage(data_dir)
    assert not (data_dir / ".clean-shutdown").exists()
    await storage.close()


async def test_open_creates_a_missing_data_dir(tmp_path: Path) -> None:
    storage = await open_storage(tmp_path / "new" / "data")
    assert await storage.logs.topic_names() == []
    await storage.close()


async def test_storage_satisfies_the_core_protocols(data_dir: Path) -> None:
    """Typed against the protocols the broker core uses (mypy checks this file)."""
    storage: Storage = await open_storage(data_dir, FsyncPolicy.parse("interval:10"))
    logs: LogStore = storage.logs
    await logs.create_topic("p", TopicConfig(partitions=2))
    log: PartitionLog = logs.partition("p", 1)
    assert await log.append([NewRecord(None, b"x")]) == 0
    assert (log.start_offset, log.end_offset) == (0, 1)
    assert log.size_bytes > 0
    offsets: OffsetStore = storage.offsets
    await offsets.commit("g", [("p", 1, 1)])
    assert await offsets.committed("g") == {("p", 1): 1}
    await storage.close()


async def test_deleting_the_lock_file_does_not_let_a_second_opener_in(data_dir: Path) -> None:
    first = await open_storage(data_dir)
    try:
        (data_dir / ".lock").unlink()  # the second opener makes and locks a new one...
        with pytest.raises(DataDirLocked):  # ...but the directory itself is still locked
            await open_storage(data_dir)
    finally:
        await first.close()
    second = await open_storage(data_dir)
    await second.close()


async def test_a_data_dir_that_cannot_be_opened_is_a_storage_error_naming_the_file(
    data_dir: Path,
) -> None:
    (data_dir / ".lock").mkdir()  # EISDIR, as EACCES or EROFS would be, but also as root
    with pytest.raises(StorageError) as refused:
        await open_storage(data_dir)
    assert refused.value.message == f"{data_dir / '.lock'}: Is a directory"
    (data_dir / ".lock").rmdir()
    storage = await open_storage(data_dir)  # nothing was left locked
    await storage.close()


async def test_a_descriptor_limit_below_the_segment_cache_is_warned_about(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 100, hard))
    try:
        with caplog.at_level(logging.WARNING, logger="minimq.storage.engine"):
            storage = await open_storage(data_dir, limits=StorageLimits(max_open_segment_files=512))
        await storage.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "less than the 512 segment files the cache may keep open" in caplog.text
