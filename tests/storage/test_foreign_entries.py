"""What MiniMQ finds in its data directory and did not make: kept, moved aside, never followed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from minimq.core.topic_config import TopicConfig
from minimq.errors import StorageError
from minimq.storage import open_storage
from tests.storage.conftest import records


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its bytes (files) or link target (symlinks)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[key] = path.read_bytes()
        else:
            found[key] = "dir"
    return found


async def a_topic_elsewhere(tmp_path: Path) -> Path:
    """A complete topic directory (records, ``topic.json``) outside the data directory."""
    elsewhere = tmp_path / "elsewhere-data"
    elsewhere.mkdir()
    storage = await open_storage(elsewhere)
    await storage.logs.create_topic("outside", TopicConfig())
    await storage.logs.partition("outside", 0).append(records(3))
    await storage.close()
    (elsewhere / ".clean-shutdown").unlink()  # its next open would rewrite indexes
    return elsewhere / "topics" / "outside"


def unrecognized(data_dir: Path) -> dict[str, Path]:
    """What was moved aside, by original name."""
    folder = data_dir / "unrecognized"
    if not folder.exists():
        return {}
    return {path.name.rsplit(".", 1)[0]: path for path in folder.iterdir()}


async def test_symlinks_in_topics_are_moved_aside_and_never_followed(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = await a_topic_elsewhere(tmp_path)
    empty_outside = tmp_path / "empty-outside"
    empty_outside.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"not a topic")
    topics = data_dir / "topics"
    topics.mkdir()
    (topics / "linked").symlink_to(outside)
    (topics / "linked-empty").symlink_to(empty_outside)
    (topics / "dangling").symlink_to(tmp_path / "nothing-here")
    (topics / "to-a-file").symlink_to(a_file)
    before = snapshot(outside.parent.parent)

    with caplog.at_level(logging.ERROR, logger="minimq.storage.topics"):
        storage = await open_storage(data_dir)  # the first start: no crash
    try:
        assert await storage.logs.topic_names() == []
        moved = unrecognized(data_dir)
        assert sorted(moved) == ["dangling", "linked", "linked-empty", "to-a-file"]
        assert all(path.is_symlink() for path in moved.values()), "the links, not their targets"
        assert caplog.text.count("MOVED ASIDE") == 4
        # The name is free for a real topic, made inside the data directory.
        await storage.logs.create_topic("linked", TopicConfig())
        await storage.logs.partition("linked", 0).append(records(1))
        assert not (topics / "linked").is_symlink()
    finally:
        await storage.close()
    assert snapshot(outside.parent.parent) == before, "nothing outside DATA_DIR was written"
    assert list(empty_outside.iterdir()) == [] and a_file.read_bytes() == b"not a topic"


@pytest.mark.parametrize("content", ["empty", "a file of its own"])
async def test_a_directory_without_topic_files_is_moved_aside_not_deleted(
    data_dir: Path, content: str
) -> None:
    mine = data_dir / "topics" / "operators-stuff"
    mine.mkdir(parents=True)
    if content != "empty":
        (mine / "notes.txt").write_bytes(b"keep me")
    storage = await open_storage(data_dir)
    try:
        assert await storage.logs.topic_names() == []
        assert not mine.exists()
        kept = unrecognized(data_dir)["operators-stuff"]
        assert snapshot(kept) == ({} if content == "empty" else {"notes.txt": b"keep me"})
    finally:
        await storage.close()


async def test_a_symlinked_trash_is_moved_aside_not_emptied(data_dir: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_bytes(b"not MiniMQ's")
    data_dir.joinpath("trash").symlink_to(precious)
    storage = await open_storage(data_dir)
    try:
        assert (data_dir / "trash").is_dir() and not (data_dir / "trash").is_symlink()
        assert (precious / "data").read_bytes() == b"not MiniMQ's"
        assert unrecognized(data_dir)["trash"].is_symlink()
    finally:
        await storage.close()


async def test_a_symlinked_partition_directory_stops_the_open_with_its_name(
    data_dir: Path, tmp_path: Path
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig())
    await storage.logs.partition("t", 0).append(records(2))
    await storage.close()
    partition = data_dir / "topics" / "t" / "0"
    moved = tmp_path / "partition-elsewhere"
    partition.rename(moved)
    partition.symlink_to(moved)
    (data_dir / ".clean-shutdown").unlink()
    before = snapshot(moved)
    with pytest.raises(StorageError, match="0 is a symbolic link"):
        await open_storage(data_dir)
    assert snapshot(moved) == before
    await (await open_storage(tmp_path / "other")).close()  # the failed open left no lock


async def test_a_segment_file_replaced_by_a_symlink_is_refused_not_written(
    data_dir: Path, tmp_path: Path
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig())
    await storage.logs.partition("t", 0).append(records(2))
    await storage.close()
    segment = data_dir / "topics" / "t" / "0" / "00000000000000000000.log"
    victim = tmp_path / "victim"
    original = segment.read_bytes()
    victim.write_bytes(original)
    segment.unlink()
    segment.symlink_to(victim)
    (data_dir / ".clean-shutdown").unlink()  # recovery would truncate and write
    with pytest.raises(StorageError, match="symbolic links"):
        await open_storage(data_dir)
    assert victim.read_bytes() == original
    storage = await open_storage(tmp_path / "fresh")
    await storage.close()
