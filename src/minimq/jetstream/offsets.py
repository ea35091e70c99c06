"""Committed consumer-group offsets in a replicated KV bucket: one key per group.

The key is the escaped group name; the value, JSON::

    {"topics": {"<topic>": {"id": "<topic_id>", "partitions": {"<p>": [offset, "metadata"]}}}}

One key per group makes a group's commits one leader read (``committed``/``metadata`` see the
latest acknowledged commit from any gateway) and one revision-checked write: a commit reads the
key, merges, and writes at the revision it read; when another gateway committed meanwhile, the
write is refused and the commit starts over from a fresh read.  Repeating a commit is harmless
(it sets the same offsets), which is what makes a lost answer safe to retry.

Each topic's offsets carry the ``topic_id`` they were committed against; reads drop those whose
topic no longer exists as that incarnation, so a topic deleted and created again starts with no
commits even if ``delete_topic`` here was cut short.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from minimq.errors import StorageError, TopicNotFound
from minimq.jetstream.buckets import LeaderBucket, RevisionConflict
from minimq.jetstream.names import escape, unescape
from minimq.jetstream.topics import TopicCatalog

_MAX_CONFLICT_RETRIES = 1000


class JetStreamOffsetStore:
    """The OffsetStore of the JetStream backend; safe from many gateways at once."""

    def __init__(self, bucket: LeaderBucket, catalog: TopicCatalog) -> None:
        self._bucket = bucket
        self._catalog = catalog

    async def _load(self, group: str) -> tuple[dict[str, Any], int]:
        entry = await self._bucket.get(escape(group))
        if entry is None:
            return {"topics": {}}, 0
        return json.loads(entry.value), entry.revision

    async def _current_ids(self, topics: Iterable[str]) -> dict[str, str | None]:
        ids: dict[str, str | None] = {}
        for topic in topics:
            try:
                config, _ = await self._catalog.get(topic)
                ids[topic] = config.topic_id
            except TopicNotFound:
                ids[topic] = None
        return ids

    async def commit(
        self,
        group: str,
        offsets: Iterable[tuple[str, int, int]],
        topic_ids: Mapping[str, str] | None = None,
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        triples = list(offsets)
        current = await self._current_ids({topic for topic, _, _ in triples})
        for topic, topic_id in current.items():
            wanted = (topic_ids or {}).get(topic, topic_id)
            if topic_id is None or wanted != topic_id:
                raise TopicNotFound(f"topic {topic!r} does not exist (any more)")
        for _ in range(_MAX_CONFLICT_RETRIES):
            value, revision = await self._load(group)
            topics: dict[str, Any] = value.setdefault("topics", {})
            for topic, partition, offset in triples:
                entry = topics.get(topic)
                if entry is None or entry.get("id") != current[topic]:
                    entry = topics[topic] = {"id": current[topic], "partitions": {}}
                text = (metadata or {}).get((topic, partition), "")
                entry["partitions"][str(partition)] = [offset, text]
            try:
                await self._bucket.put(
                    escape(group), json.dumps(value, sort_keys=True).encode(), revision
                )
                return
            except RevisionConflict:
                continue
        raise StorageError(f"group {group!r}: too many concurrent commits, try again")

    async def _live(self, group: str) -> dict[tuple[str, int], tuple[int, str]]:
        value, _ = await self._load(group)
        topics: dict[str, Any] = value.get("topics", {})
        current = await self._current_ids(topics)
        live: dict[tuple[str, int], tuple[int, str]] = {}
        for topic, entry in topics.items():
            if current.get(topic) is None or entry.get("id") != current[topic]:
                continue
            for partition, (offset, text) in entry.get("partitions", {}).items():
                live[(topic, int(partition))] = (int(offset), str(text))
        return live

    async def committed(self, group: str) -> dict[tuple[str, int], int]:
        return {where: offset for where, (offset, _) in (await self._live(group)).items()}

    async def metadata(self, group: str) -> dict[tuple[str, int], str]:
        return {where: text for where, (_, text) in (await self._live(group)).items() if text}

    async def group_names(self) -> list[str]:
        names: list[str] = []
        for key in await self._bucket.keys():
            try:
                names.append(unescape(key))
            except ValueError:
                continue
        return sorted(names)

    async def delete_group(self, group: str) -> None:
        await self._bucket.purge(escape(group))

    async def delete_topic(self, topic: str) -> None:
        """Drop the topic from every group's commits; never raises (reads filter anyway)."""
        try:
            groups = await self.group_names()
        except Exception:
            return
        for group in groups:
            try:
                await self._drop_topic(group, topic)
            except Exception:
                continue

    async def _drop_topic(self, group: str, topic: str) -> None:
        for _ in range(_MAX_CONFLICT_RETRIES):
            value, revision = await self._load(group)
            if revision == 0 or topic not in value.get("topics", {}):
                return
            del value["topics"][topic]
            try:
                await self._bucket.put(
                    escape(group), json.dumps(value, sort_keys=True).encode(), revision
                )
                return
            except RevisionConflict:
                continue

    async def close(self) -> None:
        """Nothing of its own to close: the storage owns the connection."""
