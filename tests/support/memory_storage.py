"""An in-memory implementation of the storage seam for fast core unit tests.

It keeps the semantics the core relies on (offsets, bounds, read limits,
OffsetOutOfRange, timestamps, topic ids, batch origin, append listeners) and
nothing of the on-disk engine.  ``append`` yields to the event loop once,
like a real group-committed fsync would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from minimq.core.records import NewRecord, Record
from minimq.core.storage_seam import AppendListener, LogBounds, SingleGatewayLeases
from minimq.core.topic_config import TopicConfig, validate_topic_name
from minimq.errors import OffsetOutOfRange, TopicAlreadyExists, TopicNotFound
from minimq.recordbatch.frames import (
    CLIENT_BATCH_EPOCH_BYTES,
    LEADER_EPOCH,
    BatchHeader,
    decode_records,
    encode_batch,
    parse_header,
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryPartitionLog:
    """``failures``: exceptions the next appends raise, in order, storing nothing.

    Every append call is one batch: ``batches`` holds each one's base offset,
    record count and, for a client's batch, its frame as stored (MiniMQ's own
    batches are encoded when ``read_raw`` asks for them).
    """

    def __init__(self, stored: Callable[[], None]) -> None:
        self.records: list[Record] = []
        self.batches: list[tuple[int, int, bytes | None]] = []
        self.start = 0
        self.failures: list[Exception] = []
        self._stored = stored

    @property
    def start_offset(self) -> int:
        return self.start

    @property
    def end_offset(self) -> int:
        return self.start + len(self.records)

    async def bounds(self) -> LogBounds:
        size = sum(len(r.value or b"") + len(r.key or b"") for r in self.records)
        return LogBounds(self.start_offset, self.end_offset, size)

    async def append(self, records: Sequence[NewRecord], dedup_id: str | None = None) -> int:
        if self.failures:
            await asyncio.sleep(0)
            raise self.failures.pop(0)
        base = self.end_offset
        now = _now_ms()
        for index, record in enumerate(records):
            stamp = record.timestamp if record.timestamp is not None else now
            self.records.append(
                Record(base + index, stamp, record.key, record.value, tuple(record.headers))
            )
        self.batches.append((base, len(records), None))
        self._stored()
        await asyncio.sleep(0)
        return base

    async def append_batches(self, frames: Sequence[bytearray]) -> int:
        if self.failures:
            await asyncio.sleep(0)
            raise self.failures.pop(0)
        first = self.end_offset
        for frame in frames:
            base = self.end_offset
            frame[:8] = base.to_bytes(8, "big")
            frame[LEADER_EPOCH] = CLIENT_BATCH_EPOCH_BYTES
            decoded = decode_records(frame, base, 1 << 31)
            self.records.extend(decoded)
            self.batches.append((base, parse_header(frame).record_count, bytes(frame)))
        self._stored()
        await asyncio.sleep(0)
        return first

    def _check(self, offset: int) -> None:
        if not self.start_offset <= offset <= self.end_offset:
            raise OffsetOutOfRange(f"offset {offset} out of range")

    async def read(self, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        self._check(offset)
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

    async def read_raw(self, offset: int, max_bytes: int) -> tuple[list[memoryview | bytes], int]:
        self._check(offset)
        frames: list[memoryview | bytes] = []
        budget = max_bytes
        for base, count, client_frame in self.batches:
            if base + count <= offset:
                continue
            if client_frame is not None:
                frame = client_frame
            else:
                records = self.records[base - self.start : base - self.start + count]
                own = [NewRecord(r.key, r.value, r.headers, r.timestamp) for r in records]
                frame = bytes(encode_batch(base, own, _now_ms()))
            if frames and len(frame) > budget:
                break
            frames.append(frame)
            budget -= len(frame)
            offset = base + count
        return frames, offset

    async def offset_for_timestamp(self, timestamp: int) -> int:
        for record in self.records:
            if record.timestamp >= timestamp:
                return record.offset
        return self.end_offset

    def recent_producer_batches(self, scan_bytes: int) -> Callable[[], list[BatchHeader]]:
        frames = [frame for _, _, frame in self.batches if frame is not None]

        def scan() -> list[BatchHeader]:
            headers = [parse_header(frame) for frame in frames]
            return [header for header in headers if header.producer_id >= 0]

        return scan


class MemoryLogStore:
    def __init__(self) -> None:
        self.configs: dict[str, TopicConfig] = {}
        self.partitions: dict[tuple[str, int], MemoryPartitionLog] = {}
        self.listeners: list[AppendListener] = []

    def _stored(self, topic: str, partition: int) -> None:
        for listener in self.listeners:
            listener(topic, partition)

    async def topic_names(self) -> list[str]:
        return list(self.configs)

    async def topic_config(self, topic: str) -> TopicConfig:
        return self.config(topic)

    def config(self, topic: str) -> TopicConfig:
        if topic not in self.configs:
            raise TopicNotFound(topic)
        return self.configs[topic]

    def validate_topic_name(self, name: str) -> None:
        validate_topic_name(name)

    async def create_topic(self, topic: str, config: TopicConfig) -> None:
        if topic in self.configs:
            raise TopicAlreadyExists(topic)
        self.configs[topic] = dataclasses.replace(config, topic_id=uuid.uuid4().hex)
        for index in range(config.partitions):
            stored = functools.partial(self._stored, topic, index)
            self.partitions[(topic, index)] = MemoryPartitionLog(stored)

    async def delete_topic(self, topic: str) -> None:
        config = self.configs.pop(topic)
        for index in range(config.partitions):
            del self.partitions[(topic, index)]
        for index in range(config.partitions):
            self._stored(topic, index)

    async def update_retention(
        self, topic: str, retention_ms: int | None, retention_bytes: int | None
    ) -> TopicConfig:
        config = dataclasses.replace(
            self.config(topic), retention_ms=retention_ms, retention_bytes=retention_bytes
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

    def _committed(self, group: str) -> dict[tuple[str, int], int]:
        return {
            key: offset
            for key, (topic_id, offset) in self.offsets.get(group, {}).items()
            if self._live_topic_id(key[0]) == topic_id
        }

    async def committed(self, group: str) -> dict[tuple[str, int], int]:
        return self._committed(group)

    async def metadata(self, group: str) -> dict[tuple[str, int], str]:
        live = self._committed(group)
        return {key: note for key, note in self.notes.get(group, {}).items() if key in live}

    async def group_names(self) -> list[str]:
        return [group for group in self.offsets if self._committed(group)]

    async def delete_group(self, group: str) -> None:
        self.offsets.pop(group, None)
        self.notes.pop(group, None)

    async def delete_topic(self, topic: str) -> None:
        for stored in self.offsets.values():
            for key in [k for k in stored if k[0] == topic]:
                del stored[key]

    async def close(self) -> None:
        return


class MemoryProducerIdStore:
    """Producer ids from a counter: never repeated while the fake lives (it does not outlive it)."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    async def allocate(self) -> int:
        return next(self._ids)


class MemoryStorage:
    def __init__(self) -> None:
        self._logs = MemoryLogStore()
        self._offsets = MemoryOffsetStore(self._logs.topic_id)
        self._producer_ids = MemoryProducerIdStore()
        self._group_leases = SingleGatewayLeases()
        self.closed = False

    @property
    def logs(self) -> MemoryLogStore:
        return self._logs

    @property
    def offsets(self) -> MemoryOffsetStore:
        return self._offsets

    @property
    def producer_ids(self) -> MemoryProducerIdStore:
        return self._producer_ids

    @property
    def group_leases(self) -> SingleGatewayLeases:
        return self._group_leases

    def add_append_listener(self, listener: AppendListener) -> None:
        self._logs.listeners.append(listener)

    async def close(self) -> None:
        self.closed = True
