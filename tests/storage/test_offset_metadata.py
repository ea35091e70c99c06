"""Commit metadata in the offsets database: stored, replaced, undone, migrated."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimq.core.topic_config import TopicConfig
from minimq.errors import InvalidRequest, OffsetsFailed
from minimq.storage import open_storage
from minimq.storage.engine import OFFSETS_FILE, DiskStorage
from minimq.storage.offsets import SCHEMA_VERSION
from tests.support import failing_sqlite

# Schema version 1 exactly as MiniMQ wrote it before commit metadata.
_VERSION_1_TABLE = """
CREATE TABLE offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    topic_id TEXT,
    txn INTEGER,
    previous_offset INTEGER,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID
"""


async def test_metadata_is_kept_with_its_offset_and_replaced_by_the_next_commit(
    storage: DiskStorage,
) -> None:
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    offsets = storage.offsets
    await offsets.commit("g", [("t", 0, 5), ("t", 1, 2)], metadata={("t", 0): "five"})
    assert await offsets.metadata("g") == {("t", 0): "five"}
    await offsets.commit("g", [("t", 0, 6)])  # an HTTP commit: no metadata
    assert await offsets.metadata("g") == {}
    await offsets.commit("g", [("t", 1, 3)], metadata={("t", 1): "x"})
    await offsets.delete_topic("t")
    assert await offsets.metadata("g") == {}
    with pytest.raises(InvalidRequest):
        await offsets.commit("g", [("t", 0, 1)], metadata={("t", 0): b"bytes"})  # type: ignore[dict-item]


async def test_metadata_survives_a_restart_unchanged(data_dir: Path) -> None:
    note = 'any text: ünïcode, "quotes", \\ and \x00 a NUL'
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    await storage.offsets.commit("g", [("t", 0, 4), ("t", 1, 1)], metadata={("t", 0): note})
    await storage.close()
    storage = await open_storage(data_dir)
    try:
        assert await storage.offsets.committed("g") == {("t", 0): 4, ("t", 1): 1}
        assert await storage.offsets.metadata("g") == {("t", 0): note}
    finally:
        await storage.close()


async def test_a_version_1_database_opens_and_gains_the_metadata_columns(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    topic_id = (await storage.logs.topic_config("t")).topic_id
    await storage.close()
    for path in data_dir.glob(OFFSETS_FILE + "*"):
        path.unlink()
    with sqlite3.connect(data_dir / OFFSETS_FILE) as db:
        db.execute(_VERSION_1_TABLE)
        db.execute(
            "INSERT INTO offsets VALUES"
            " ('g', 't', 0, 7, ?, 123, NULL), ('g', 't', 1, 2, ?, 123, 1)",
            (topic_id, topic_id),
        )
        db.execute("PRAGMA user_version = 1")

    storage = await open_storage(data_dir)
    try:
        assert await storage.offsets.committed("g") == {("t", 0): 7, ("t", 1): 2}
        assert await storage.offsets.metadata("g") == {}
        await storage.offsets.commit("g", [("t", 1, 3)], metadata={("t", 1): "after"})
    finally:
        await storage.close()
    with sqlite3.connect(data_dir / OFFSETS_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        columns = [row[1] for row in db.execute("PRAGMA table_info(offsets)")]
    assert columns[-2:] == ["metadata", "previous_metadata"]
    storage = await open_storage(data_dir)
    try:
        assert await storage.offsets.committed("g") == {("t", 0): 7, ("t", 1): 3}
        assert await storage.offsets.metadata("g") == {("t", 1): "after"}
    finally:
        await storage.close()


@pytest.fixture
def faults() -> Iterator[list[str | None]]:
    plan: list[str | None] = []
    undo = failing_sqlite.install(lambda: plan.pop(0) if plan else None)
    yield plan
    undo()


async def test_undoing_a_refused_commit_puts_the_old_metadata_back(
    data_dir: Path, faults: list[str | None]
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig())
    await storage.offsets.commit("g", [("t", 0, 5)], metadata={("t", 0): "before"})
    faults.append("fsync")  # written to the WAL, then reported as failed
    with pytest.raises(OffsetsFailed):
        await storage.offsets.commit("g", [("t", 0, 9)], metadata={("t", 0): "refused"})
    assert await storage.offsets.metadata("g") == {("t", 0): "before"}
    await storage.close()
    with sqlite3.connect(data_dir / OFFSETS_FILE) as db:
        assert db.execute("SELECT metadata FROM offsets").fetchall() == [("refused",)]
    storage = await open_storage(data_dir)
    try:
        assert storage.offsets.report.reverted == 1
        assert await storage.offsets.committed("g") == {("t", 0): 5}
        assert await storage.offsets.metadata("g") == {("t", 0): "before"}
    finally:
        await storage.close()
