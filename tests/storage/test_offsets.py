from __future__ import annotations

from pathlib import Path

import pytest

from minimq.errors import InvalidRequest
from minimq.storage import open_storage
from minimq.storage.engine import DiskStorage


async def test_commit_read_list_and_delete(storage: DiskStorage) -> None:
    offsets = storage.offsets
    assert offsets.group_names() == []
    assert offsets.committed("g1") == {}
    await offsets.commit("g1", [("a", 0, 5), ("a", 1, 7)])
    await offsets.commit("g1", [("a", 0, 9)])
    await offsets.commit("g2", [("b", 0, 1)])
    assert offsets.committed("g1") == {("a", 0): 9, ("a", 1): 7}
    assert offsets.group_names() == ["g1", "g2"]
    await offsets.delete_group("g1")
    assert offsets.group_names() == ["g2"]
    await offsets.commit("g3", [("a", 0, 1), ("b", 0, 2)])
    await offsets.delete_topic("b")
    assert offsets.group_names() == ["g3"]
    assert offsets.committed("g3") == {("a", 0): 1}


async def test_commits_survive_a_restart(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.offsets.commit("g", [("t", 3, 42)])
    await storage.close()
    storage = await open_storage(data_dir)
    try:
        assert storage.offsets.committed("g") == {("t", 3): 42}
    finally:
        await storage.close()


@pytest.mark.parametrize("bad", [("t", -1, 0), ("t", 0, -1), ("t", "0", 1), (None, 0, 1)])
async def test_malformed_commits_are_rejected(
    storage: DiskStorage, bad: tuple[object, ...]
) -> None:
    with pytest.raises(InvalidRequest):
        await storage.offsets.commit("g", [bad])  # type: ignore[list-item]
    assert storage.offsets.committed("g") == {}
