"""An in-memory implementation of the storage protocols for fast core unit tests.

It keeps the semantics the core relies on (offsets, start/end, read limits,
OffsetOutOfRange, timestamps, topic ids) and nothing of the on-disk engine.
``append`` yields to the event loop once, like a real group-committed fsync would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from minimq.errors import OffsetOutOfRange, TopicAlreadyExists, TopicNotFound
from minimq.storage.api import NewRecord, Record, TopicConfig


class MemoryPartitionLog:
    """``failures``: exceptions the next appends raise, in order, storing nothing."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.start = 0
        self.failures: list[Exception] = []

    @property
    def start_offset(self) -> int:
        return self.start

    @property
    def end_offset(self) -> int:
        return self.start + len(self.records)

    @property
    def size_bytes(self) -> int:
        return sum(len(r.value or b"") + len(r.key or b"") for r in self.records)

    async def append(self, records: Sequence[NewRecord]) -> int:
        if self.failures:
            await asyncio.sleep(0)
            raise self.failures.pop(0)
        base = self.end_offset
        now = time.time_ns() // 1_000_000
        for index, record in enumerate(records):
            stamp = record.timestamp if record.timestamp is not None else now
            self.records.append(
                Record(base + index, stamp, record.key, record.value, tuple(record.headers))
            )
        await asyncio.sleep(0)
        return base

    def read(self, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        if not self.start_offset <= offset <= self.end_offset:
            raise OffsetOutOfRange(f"offset {offset} out of range")
        found: list[Record] = []
        size = 0
        for record in self.records[offset - self.start :]:
            size += len(record.value or b"")
            if found and (len(found) >= max_records or size > max_bytes):
                break
            found.append(record)
            if len(found) >= max_records:
                break
        return found

    def offset_for_timestamp(self, timestamp: int) -> int:
        for record in self.records:
            if record.timestamp >= timestamp:
                return record.offset
        return self.end_offset


class MemoryLogStore:
    def __init__(self) -> None:
        self.configs: dict[str, TopicConfig] = {}
        self.partitions: dict[tuple[str, int], MemoryPartitionLog] = {}

    def topic_names(self) -> list[str]:
        return list(self.configs)

    def topic_config(self, topic: str) -> TopicConfig:
        if topic not in self.configs:
            raise TopicNotFound(topic)
        return self.configs[topic]

    async def create_topic(self, topic: str, config: TopicConfig) -> None:
        if topic in self.configs:
            raise TopicAlreadyExists(topic)
        self.configs[topic] = dataclasses.replace(config, topic_id=uuid.uuid4().hex)
        for index in range(config.partitions):
            self.partitions[(topic, index)] = MemoryPartitionLog()

    async def delete_topic(self, topic: str) -> None:
        config = self.configs.pop(topic)
        for index in range(config.partitions):
            del self.partitions[(topic, index)]

    async def update_retention(
        self, topic: str, retention_ms: int | None, retention_bytes: int | None
    ) -> TopicConfig:
        config = dataclasses.replace(
            self.topic_config(topic), retention_ms=retention_ms, retention_bytes=retention_bytes
        )
        self.configs[topic] = config
        return config

    def topic_id(self, topic: str) -> str | None:
        config = self.configs.get(topic)
        return None if config is None else config.topic_id

    def partition(self, topic: str, partition: int) -> MemoryPartitionLog:
        try:
            return self.partitions[(topic, partition)]
        except KeyError:
            raise TopicNotFound(f"{topic}/{partition}") from None

    async def apply_retention(self) -> int:
        return 0

    async def close(self) -> None:
        return


class MemoryOffsetStore:
    """Committed offsets in a dict, updated only after the "write" returned (as SQLite's are).

    Keyed by topic incarnation as the SQLite store is: a commit checked against
    a topic that is gone (or re-created) is refused, and offsets of a deleted
    incarnation are never returned.  Tests may hold commits at ``gate`` (an
    unset event) to race other work against a commit in flight, and make the
    next commits fail with ``failures`` (exceptions raised in order, nothing
    stored).
    """

    def __init__(self, live_topic_id: Callable[[str], str | None]) -> None:
        self._live_topic_id = live_topic_id
        # group -> (topic, partition) -> (topic_id, offset)
        self.offsets: dict[str, dict[tuple[str, int], tuple[str, int]]] = {}
        self.notes: dict[str, dict[tuple[str, int], str]] = {}  # commit metadata
        self.gate: asyncio.Event | None = None
        self.failures: list[Exception] = []

    async def commit(
        self,
        group: str,
        offsets: Iterable[tuple[str, int, int]],
        topic_ids: Mapping[str, str] | None = None,
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        entries = list(offsets)
        incarnations = {}
        for topic, _, _ in entries:
            live = self._live_topic_id(topic)
            expected = live if topic_ids is None else topic_ids.get(topic)
            if live is None or live != expected:
                raise TopicNotFound(f"topic {topic!r} was deleted")
            incarnations[topic] = live
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        stored = self.offsets.setdefault(group, {})
        notes = self.notes.setdefault(group, {})
        for topic, partition, offset in entries:
            stored[(topic, partition)] = (incarnations[topic], offset)
            note = (metadata or {}).get((topic, partition))
            if note:
                notes[(topic, partition)] = note
            else:
                notes.pop((topic, partition), None)

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        return {
            key: offset
            for key, (topic_id, offset) in self.offsets.get(group, {}).items()
            if self._live_topic_id(key[0]) == topic_id
        }

    def metadata(self, group: str) -> dict[tuple[str, int], str]:
        live = self.committed(group)
        return {key: note for key, note in self.notes.get(group, {}).items() if key in live}

    def group_names(self) -> list[str]:
        return [group for group in self.offsets if self.committed(group)]

    async def delete_group(self, group: str) -> None:
        self.offsets.pop(group, None)
        self.notes.pop(group, None)

    async def delete_topic(self, topic: str) -> None:
        for stored in self.offsets.values():
            for key in [k for k in stored if k[0] == topic]:
                del stored[key]

    async def close(self) -> None:
        return


class MemoryStorage:
    def __init__(self) -> None:
        self._logs = MemoryLogStore()
        self._offsets = MemoryOffsetStore(self._logs.topic_id)
        self.closed = False

    @property
    def logs(self) -> MemoryLogStore:
        return self._logs

    @property
    def offsets(self) -> MemoryOffsetStore:
        return self._offsets

    async def close(self) -> None:
        self.closed = True
