from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimq.core.topic_config import FsyncPolicy, TopicConfig, validate_topic_name
from minimq.errors import (
    InvalidConfig,
    InvalidTopicName,
    PartitionNotFound,
    TopicAlreadyExists,
    TopicNotFound,
)
from minimq.storage import open_storage
from minimq.storage.engine import DiskStorage
from minimq.storage.topics import validate_config
from tests.storage.conftest import records

BAD_NAMES = [
    "",
    ".",
    "..",
    "../x",
    "x/../../y",
    "/etc/passwd",
    "%2e%2e",
    "a\x00b",
    "a\\b",
    "a b",
    "é",
    "x" * 250,
    "topic\n",
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_topic_names_are_rejected_without_touching_files(
    storage: DiskStorage, data_dir: Path, name: str
) -> None:
    before = sorted(os.walk(data_dir.parent))
    with pytest.raises(InvalidTopicName):
        await storage.logs.create_topic(name, TopicConfig())
    with pytest.raises(TopicNotFound):
        storage.logs.partition(name, 0)
    assert sorted(os.walk(data_dir.parent)) == before


@given(st.text(min_size=0, max_size=260))
def test_topic_name_rule(name: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    valid = 1 <= len(name) <= 249 and set(name) <= allowed and name not in (".", "..")
    if valid:
        assert validate_topic_name(name) == name
    else:
        with pytest.raises(InvalidTopicName):
            validate_topic_name(name)


@pytest.mark.parametrize(
    "config",
    [
        TopicConfig(partitions=0),
        TopicConfig(partitions=5000),
        TopicConfig(segment_bytes=10),
        TopicConfig(segment_bytes=1 << 40),
        TopicConfig(retention_ms=0),
        TopicConfig(retention_bytes=-5),
        TopicConfig(segment_ms=0),
        TopicConfig(fsync="always"),  # type: ignore[arg-type]
        TopicConfig(message_timestamp_before_max_ms=-1),
        TopicConfig(message_timestamp_after_max_ms=2**63),
        TopicConfig(message_timestamp_after_max_ms=True),
        TopicConfig(message_timestamp_before_max_ms="1"),  # type: ignore[arg-type]
    ],
)
def test_invalid_configs_are_rejected(config: TopicConfig) -> None:
    with pytest.raises(InvalidConfig):
        validate_config(config)


async def test_create_list_and_delete(storage: DiskStorage, data_dir: Path) -> None:
    logs = storage.logs
    await logs.create_topic("b.topic", TopicConfig(partitions=2))
    await logs.create_topic("a_topic", TopicConfig(fsync=FsyncPolicy.parse("never")))
    assert await logs.topic_names() == ["a_topic", "b.topic"]
    assert (await logs.topic_config("b.topic")).partitions == 2
    with pytest.raises(TopicAlreadyExists):
        await logs.create_topic("a_topic", TopicConfig())
    with pytest.raises(PartitionNotFound):
        logs.partition("b.topic", 2)
    with pytest.raises(PartitionNotFound):
        logs.partition("b.topic", -1)
    await logs.partition("b.topic", 1).append(records(3))
    assert (data_dir / "topics" / "b.topic" / "1" / ("0" * 20 + ".log")).stat().st_size > 0

    await logs.delete_topic("b.topic")
    assert await logs.topic_names() == ["a_topic"]
    assert not (data_dir / "topics" / "b.topic").exists()
    with pytest.raises(TopicNotFound):
        await logs.topic_config("b.topic")
    with pytest.raises(TopicNotFound):
        await logs.delete_topic("b.topic")
    await logs.create_topic("b.topic", TopicConfig())
    assert logs.partition("b.topic", 0).end_offset == 0


async def test_timestamp_bounds_are_persisted_with_the_topic(data_dir: Path) -> None:
    bounded = TopicConfig(
        message_timestamp_before_max_ms=0, message_timestamp_after_max_ms=2**63 - 1
    )
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("bounded", bounded)
    await storage.logs.create_topic("inherits", TopicConfig())
    await storage.close()
    storage = await open_storage(data_dir)
    assert await storage.logs.topic_config("bounded") == bounded
    assert await storage.logs.topic_config("inherits") == TopicConfig()
    await storage.close()


async def test_a_topic_json_from_before_the_timestamp_bounds_still_opens(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("old", TopicConfig(partitions=2, retention_ms=5_000))
    await storage.close()
    path = data_dir / "topics" / "old" / "topic.json"
    document = json.loads(path.read_bytes())
    del document["message_timestamp_before_max_ms"], document["message_timestamp_after_max_ms"]
    path.write_text(json.dumps(document))
    storage = await open_storage(data_dir)
    # Read as "the broker-wide default", not rebuilt as unreadable metadata.
    assert await storage.logs.topic_config("old") == TopicConfig(partitions=2, retention_ms=5_000)
    assert not path.with_name("topic.json.bad").exists()
    await storage.close()
