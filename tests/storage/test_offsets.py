from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.errors import (
    CorruptLog,
    InvalidRequest,
    OffsetsFailed,
    StorageFull,
    TopicNotFound,
)
from minimq.storage import open_storage
from minimq.storage.engine import OFFSETS_FILE, DiskStorage
from minimq.storage.offsets import REFUSED_FILE, REFUSED_SIZE, SCHEMA_VERSION
from tests.support import failing_sqlite


async def test_commit_read_list_and_delete(storage: DiskStorage) -> None:
    await storage.logs.create_topic("a", TopicConfig(partitions=2))
    await storage.logs.create_topic("b", TopicConfig())
    offsets = storage.offsets
    assert await offsets.group_names() == []
    assert await offsets.committed("g1") == {}
    await offsets.commit("g1", [("a", 0, 5), ("a", 1, 7)])
    await offsets.commit("g1", [("a", 0, 9)])
    await offsets.commit("g2", [("b", 0, 1)])
    assert await offsets.committed("g1") == {("a", 0): 9, ("a", 1): 7}
    assert await offsets.group_names() == ["g1", "g2"]
    await offsets.delete_group("g1")
    assert await offsets.group_names() == ["g2"]
    await offsets.commit("g3", [("a", 0, 1), ("b", 0, 2)])
    await offsets.delete_topic("b")
    assert await offsets.group_names() == ["g3"]
    assert await offsets.committed("g3") == {("a", 0): 1}


async def test_commits_survive_a_restart(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig(partitions=4))
    await storage.offsets.commit("g", [("t", 3, 42)])
    await storage.close()
    storage = await open_storage(data_dir)
    try:
        assert await storage.offsets.committed("g") == {("t", 3): 42}
    finally:
        await storage.close()


@pytest.mark.parametrize("bad", [("t", -1, 0), ("t", 0, -1), ("t", "0", 1), (None, 0, 1)])
async def test_malformed_commits_are_rejected(
    storage: DiskStorage, bad: tuple[object, ...]
) -> None:
    with pytest.raises(InvalidRequest):
        await storage.offsets.commit("g", [bad])  # type: ignore[list-item]
    assert await storage.offsets.committed("g") == {}


# -- topic incarnations (issue #17, defect 4) ---------------------------------------


async def test_commits_name_the_topic_incarnation(storage: DiskStorage) -> None:
    logs, offsets = storage.logs, storage.offsets
    with pytest.raises(TopicNotFound):
        await offsets.commit("g", [("missing", 0, 1)])
    await logs.create_topic("t", TopicConfig())
    old_id = (await logs.topic_config("t")).topic_id
    assert old_id is not None and len(old_id) == 32
    await offsets.commit("g", [("t", 0, 0)], {"t": old_id})
    await logs.delete_topic("t")
    await logs.create_topic("t", TopicConfig())
    assert (await logs.topic_config("t")).topic_id != old_id
    # Checked against the old topic (say, before waiting for the group lock): refused,
    # and nothing lands on the new one.
    with pytest.raises(TopicNotFound):
        await offsets.commit("g", [("t", 0, 0)], {"t": old_id})
    assert await offsets.committed("g") == {}, "the new topic inherited a commit of the old one"


async def test_a_deletion_cut_short_leaves_no_commits_to_inherit(data_dir: Path) -> None:
    """The log is deleted, the process dies before the offsets are: nothing is inherited."""
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    await storage.logs.create_topic("other", TopicConfig())
    await storage.offsets.commit("g", [("t", 0, 300), ("t", 1, 7), ("other", 0, 3)])
    await storage.logs.delete_topic("t")  # and then kill -9: the offsets keep their rows
    await storage.close()
    storage = await open_storage(data_dir)
    try:
        assert storage.offsets.report.removed == 2
        await storage.logs.create_topic("t", TopicConfig(partitions=2))
        assert await storage.offsets.committed("g") == {("other", 0): 3}
    finally:
        await storage.close()
    with sqlite3.connect(data_dir / OFFSETS_FILE) as db:
        rows = db.execute("SELECT topic FROM offsets").fetchall()
    assert rows == [("other",)]


def _make_legacy(data_dir: Path, rows: list[tuple[str, str, int, int]]) -> None:
    """Turn ``data_dir`` into one written before topic ids: no ids, the old table."""
    for config_path in (data_dir / "topics").glob("*/topic.json"):
        document = json.loads(config_path.read_text())
        del document["topic_id"]
        config_path.write_text(json.dumps(document))
    for path in data_dir.glob(OFFSETS_FILE + "*"):
        path.unlink()
    (data_dir / REFUSED_FILE).unlink(missing_ok=True)
    with sqlite3.connect(data_dir / OFFSETS_FILE) as db:
        db.execute(
            "CREATE TABLE offsets (group_id TEXT NOT NULL, topic TEXT NOT NULL,"
            " partition INTEGER NOT NULL, offset INTEGER NOT NULL,"
            " PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID"
        )
        db.executemany("INSERT INTO offsets VALUES (?, ?, ?, ?)", rows)


async def test_a_database_from_before_topic_ids_migrates(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("kept", TopicConfig(partitions=2))
    await storage.close()
    _make_legacy(data_dir, [("g", "kept", 0, 5), ("g", "kept", 1, 7), ("g", "gone", 0, 300)])

    storage = await open_storage(data_dir)
    try:
        assert await storage.offsets.committed("g") == {("kept", 0): 5, ("kept", 1): 7}
        topic_id = (await storage.logs.topic_config("kept")).topic_id
        await storage.offsets.commit("g", [("kept", 0, 6)])
    finally:
        await storage.close()
    on_disk = json.loads((data_dir / "topics" / "kept" / "topic.json").read_text())
    assert on_disk["topic_id"] == topic_id
    with sqlite3.connect(data_dir / OFFSETS_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT DISTINCT topic, topic_id FROM offsets").fetchall() == [
            ("kept", topic_id)
        ]
    storage = await open_storage(data_dir)
    try:
        assert (await storage.logs.topic_config("kept")).topic_id == topic_id
        assert await storage.offsets.committed("g") == {("kept", 0): 6, ("kept", 1): 7}
    finally:
        await storage.close()


async def test_a_rebuilt_topic_json_keeps_the_topics_commits(data_dir: Path) -> None:
    """Its id went with the damaged file; the rebuilt topic adopts its commits."""
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig())
    await storage.logs.partition("t", 0).append([NewRecord(None, b"1"), NewRecord(None, b"2")])
    await storage.offsets.commit("g", [("t", 0, 1)])
    await storage.close()
    (data_dir / "topics" / "t" / "topic.json").write_text("garbage")
    storage = await open_storage(data_dir)
    try:
        assert await storage.offsets.committed("g") == {("t", 0): 1}
    finally:
        await storage.close()


# -- refused commits (issue #17, defect 5) ------------------------------------------


@pytest.fixture
def faults() -> Iterator[list[str | None]]:
    """What the next offsets COMMITs do (see ``tests/support/failing_sqlite.py``)."""
    plan: list[str | None] = []
    undo = failing_sqlite.install(lambda: plan.pop(0) if plan else None)
    yield plan
    undo()


async def test_a_commit_refused_after_its_fsync_failed_is_undone_at_open(
    data_dir: Path, faults: list[str | None]
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig(partitions=2))
    await storage.offsets.commit("g", [("t", 0, 5)])
    faults.append("fsync")  # SQLite writes this one, then reports its fsync failed
    with pytest.raises(OffsetsFailed):
        await storage.offsets.commit("g", [("t", 0, 9), ("t", 1, 4)])
    assert storage.offsets.failed
    assert await storage.offsets.committed("g") == {("t", 0): 5}
    # Out of service: every later write is refused, with the same code, untouched.
    with pytest.raises(OffsetsFailed):
        await storage.offsets.commit("g", [("t", 0, 6)])
    with pytest.raises(OffsetsFailed):
        await storage.offsets.delete_group("g")
    assert failing_sqlite.FaultyConnection.commits_failed == 1
    assert (data_dir / REFUSED_FILE).read_bytes().startswith(b"minimq-refused-txn ")
    await storage.close()

    with sqlite3.connect(data_dir / OFFSETS_FILE) as db:
        stored = {
            (t, p): o for t, p, o in db.execute("SELECT topic, partition, offset FROM offsets")
        }
    assert stored == {("t", 0): 9, ("t", 1): 4}, "the injected fault must have written it"

    storage = await open_storage(data_dir)
    try:
        assert storage.offsets.report.reverted == 2
        assert await storage.offsets.committed("g") == {("t", 0): 5}
        assert (data_dir / REFUSED_FILE).read_bytes() == bytes(REFUSED_SIZE)
        await storage.offsets.commit("g", [("t", 0, 7)])
        assert await storage.offsets.committed("g") == {("t", 0): 7}
    finally:
        await storage.close()
    storage = await open_storage(data_dir)
    try:
        assert storage.offsets.report.reverted == 0
        assert await storage.offsets.committed("g") == {("t", 0): 7}
    finally:
        await storage.close()


async def test_a_full_disk_refuses_the_commit_and_keeps_the_store_in_service(
    faults: list[str | None], storage: DiskStorage
) -> None:
    await storage.logs.create_topic("t", TopicConfig())
    faults.append("full")
    with pytest.raises(StorageFull):
        await storage.offsets.commit("g", [("t", 0, 3)])
    assert not storage.offsets.failed
    assert await storage.offsets.committed("g") == {}
    await storage.offsets.commit("g", [("t", 0, 4)])
    assert await storage.offsets.committed("g") == {("t", 0): 4}


async def test_an_unreadable_refused_file_stops_the_open(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.close()
    (data_dir / REFUSED_FILE).write_bytes(b"minimq-refused-txn twelve\n")
    with pytest.raises(CorruptLog, match=REFUSED_FILE):
        await open_storage(data_dir)
