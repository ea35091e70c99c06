"""Topic metadata in a replicated KV bucket: one key per topic (its escaped name).

The value is the topic's :class:`~minimq.core.topic_config.TopicConfig` as JSON, ``topic_id``
included.  Creating a topic is a write at revision 0, which the bucket refuses when the key
exists: that write is where concurrent creates on different gateways are decided.  Updates
name the revision they replace.  Reads go to the bucket's leader (``buckets``); produce and
fetch look configs up in each gateway's copy instead (``topic_cache``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import TopicAlreadyExists, TopicNotFound
from minimq.jetstream.buckets import LeaderBucket, RevisionConflict
from minimq.jetstream.names import escape, unescape


def config_to_json(config: TopicConfig) -> bytes:
    return json.dumps(
        {
            "partitions": config.partitions,
            "retention_ms": config.retention_ms,
            "retention_bytes": config.retention_bytes,
            "segment_bytes": config.segment_bytes,
            "segment_ms": config.segment_ms,
            "fsync": None if config.fsync is None else str(config.fsync),
            "message_timestamp_before_max_ms": config.message_timestamp_before_max_ms,
            "message_timestamp_after_max_ms": config.message_timestamp_after_max_ms,
            "topic_id": config.topic_id,
        },
        sort_keys=True,
    ).encode()


def config_from_json(raw: bytes) -> TopicConfig:
    fields: dict[str, Any] = json.loads(raw)
    fsync = fields.pop("fsync", None)
    return TopicConfig(**fields, fsync=None if fsync is None else FsyncPolicy.parse(fsync))


class TopicCatalog:
    """Every topic of the namespace; safe to use from many gateways at once."""

    def __init__(self, bucket: LeaderBucket) -> None:
        self._bucket = bucket

    async def names(self) -> list[str]:
        names: list[str] = []
        for key in await self._bucket.keys():
            try:
                names.append(unescape(key))
            except ValueError:
                continue  # not written by this backend
        return sorted(names)

    async def get(self, topic: str) -> tuple[TopicConfig, int]:
        """The topic's config and its revision; ``TopicNotFound`` if there is none."""
        entry = await self._bucket.get(escape(topic))
        if entry is None:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        return config_from_json(entry.value), entry.revision

    async def create(self, topic: str, config: TopicConfig) -> int:
        """Record ``config`` (its ``topic_id`` set), return its revision; ``TopicAlreadyExists``
        if the key exists.

        A create whose first answer was lost and whose retry finds the key holding this very
        ``topic_id`` did succeed, and says so.
        """
        try:
            return await self._bucket.put(escape(topic), config_to_json(config), 0)
        except RevisionConflict:
            entry = await self._bucket.get(escape(topic))
            if entry is not None and config_from_json(entry.value).topic_id == config.topic_id:
                return entry.revision
            raise TopicAlreadyExists(f"topic {topic!r} already exists") from None

    async def update(self, topic: str, config: TopicConfig, revision: int) -> int:
        """Replace the config at ``revision``, return the new revision; ``RevisionConflict`` if
        it changed meanwhile."""
        return await self._bucket.put(escape(topic), config_to_json(config), revision)

    async def delete(self, topic: str) -> None:
        await self._bucket.purge(escape(topic))


def with_retention(
    config: TopicConfig, retention_ms: int | None, retention_bytes: int | None
) -> TopicConfig:
    return replace(config, retention_ms=retention_ms, retention_bytes=retention_bytes)
