"""Caps on topics and partitions: a creation beyond them is refused and creates nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from minimq.core.topic_config import TopicConfig
from minimq.errors import InvalidConfig, PartitionLimitReached, TopicLimitReached
from minimq.storage import StorageLimits, open_storage


def on_disk(data_dir: Path) -> tuple[list[str], list[str]]:
    topics = sorted(p.name for p in (data_dir / "topics").iterdir())
    trash = sorted(p.name for p in (data_dir / "trash").iterdir())
    return topics, trash


async def test_a_topic_beyond_max_topics_is_refused_and_nothing_is_made(data_dir: Path) -> None:
    storage = await open_storage(data_dir, limits=StorageLimits(max_topics=3))
    try:
        for name in ("a", "b", "c"):
            await storage.logs.create_topic(name, TopicConfig())
        with pytest.raises(TopicLimitReached) as refused:
            await storage.logs.create_topic("d", TopicConfig())
        assert "--max-topics 3" in refused.value.message
        assert refused.value.code == "TOPIC_LIMIT_REACHED"
        assert on_disk(data_dir) == (["a", "b", "c"], [])
        await storage.logs.delete_topic("b")
        await storage.logs.create_topic("d", TopicConfig())  # room again
        assert await storage.logs.topic_names() == ["a", "c", "d"]
    finally:
        await storage.close()


async def test_partitions_of_all_topics_together_are_capped(data_dir: Path) -> None:
    storage = await open_storage(data_dir, limits=StorageLimits(max_partitions=5))
    try:
        await storage.logs.create_topic("three", TopicConfig(partitions=3))
        with pytest.raises(PartitionLimitReached) as refused:
            await storage.logs.create_topic("three-more", TopicConfig(partitions=3))
        assert refused.value.code == "PARTITION_LIMIT_REACHED"
        assert "3 of the broker's 5 partitions" in refused.value.message
        assert on_disk(data_dir) == (["three"], [])
        await storage.logs.create_topic("two", TopicConfig(partitions=2))  # exactly 5
        with pytest.raises(PartitionLimitReached):
            await storage.logs.create_topic("one", TopicConfig(partitions=1))
    finally:
        await storage.close()


async def test_a_data_dir_beyond_lowered_limits_opens_whole_with_a_warning(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = await open_storage(data_dir)
    for name in ("a", "b", "c"):
        await storage.logs.create_topic(name, TopicConfig(partitions=2))
    await storage.close()
    with caplog.at_level(logging.WARNING, logger="minimq.storage.topics"):
        storage = await open_storage(data_dir, limits=StorageLimits(max_topics=2))
    try:
        assert await storage.logs.topic_names() == ["a", "b", "c"], (
            "no topic is dropped for a limit"
        )
        assert "3 topics with 6 partitions are more than the limits" in caplog.text
        with pytest.raises(TopicLimitReached):
            await storage.logs.create_topic("d", TopicConfig())
    finally:
        await storage.close()


@pytest.mark.parametrize("field", ["max_open_segment_files", "max_topics", "max_partitions"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(InvalidConfig):
        StorageLimits(**{field: 0})
