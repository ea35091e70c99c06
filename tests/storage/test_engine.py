from __future__ import annotations

from pathlib import Path

import pytest

from minimq.errors import DataDirLocked
from minimq.storage import (
    FsyncPolicy,
    LogStore,
    NewRecord,
    OffsetStore,
    PartitionLog,
    Storage,
    TopicConfig,
    open_storage,
)


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
    assert storage.logs.topic_names() == []
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
    assert offsets.committed("g") == {("p", 1): 1}
    await storage.close()
