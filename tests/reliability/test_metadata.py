"""Deleted or damaged metadata files: rebuilt where they can be, a loud refusal where not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from minimq.core.topic_config import TopicConfig
from minimq.storage import open_storage
from tests.storage.conftest import records
from tests.support.processes import BrokerProcess

DAMAGE = {
    "deleted": None,
    "empty": b"",
    "truncated": b'{"format": 1, "partitions": ',
    "garbage": b"\x00\xff not json",
    "wrong values": b'{"format": 1, "partitions": -3}',
}


@pytest.mark.parametrize("damage", DAMAGE)
async def test_lost_topic_metadata_is_rebuilt_and_no_record_dropped(
    data_dir: Path, damage: str
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("meta", TopicConfig(partitions=3, segment_bytes=1024))
    for partition in range(3):
        for number in range(20):
            await storage.logs.partition("meta", partition).append(records(2, start=number * 2))
    await storage.close()
    config_path = data_dir / "topics" / "meta" / "topic.json"
    original = config_path.read_bytes()
    replacement = DAMAGE[damage]
    if replacement is None:
        config_path.unlink()
    else:
        config_path.write_bytes(replacement)
    (data_dir / ".clean-shutdown").unlink()  # as after a crash: recovery runs too

    storage = await open_storage(data_dir)
    try:
        assert await storage.logs.topic_names() == ["meta"]
        assert (await storage.logs.topic_config("meta")).partitions == 3
        for partition in range(3):
            log = storage.logs.partition("meta", partition)
            assert [r.value for r in await log.read(0, 100, 1 << 20)] == [
                r.value for r in records(40)
            ]
    finally:
        await storage.close()
    assert config_path.read_bytes() != original  # rebuilt: default settings, say the logs
    bad = config_path.with_name("topic.json.bad")
    assert bad.exists() == (replacement is not None)
    if replacement is not None:
        assert bad.read_bytes() == replacement
    storage = await open_storage(data_dir)  # and the rebuilt file is itself valid
    await storage.close()


async def test_an_interrupted_creation_without_records_is_still_removed(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("never-used", TopicConfig(partitions=2))
    await storage.close()
    (data_dir / "topics" / "never-used" / "topic.json").unlink()
    storage = await open_storage(data_dir)
    try:
        assert await storage.logs.topic_names() == []
    finally:
        await storage.close()


def test_damaged_offsets_database_stops_the_broker_with_the_file_named(data_dir: Path) -> None:
    broker = BrokerProcess(data_dir).start()
    try:
        httpx.post(f"{broker.url}/produce", json={"topic": "t", "message": 1}).raise_for_status()
        httpx.post(
            f"{broker.url}/v1/groups/g/commit",
            json={"offsets": [{"topic": "t", "partition": 0, "offset": 1}]},
        ).raise_for_status()
    finally:
        broker.stop()
    database = data_dir / "offsets.sqlite3"
    database.write_bytes(b"this is not a SQLite database" * 200)
    with pytest.raises(RuntimeError, match=r"offsets\.sqlite3"):
        broker.start(timeout=15)

    # Deleted: committed offsets are gone (nothing can rebuild them) but no message is.
    database.unlink()
    with broker:
        fetched = httpx.get(f"{broker.url}/v1/topics/t/partitions/0/records").json()
        assert [r["value"] for r in fetched["records"]] == [1]
        assert httpx.get(f"{broker.url}/v1/groups/g").status_code == 404
