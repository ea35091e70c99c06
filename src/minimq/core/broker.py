"""The transport-agnostic broker facade: topics, produce, fetch, streams; groups beside it.

Every transport (the HTTP server today) validates its input, makes one call
here (or on :attr:`Broker.groups`, the group coordinator) and serializes the
result. The broker owns no I/O of its own beyond the storage protocols of
:mod:`minimq.storage.api`, so tests can run it on an in-memory fake.

Concurrency: all methods run on one event loop. Appends to a partition are
serialized by the storage writer; the broker serializes topic creation and
deletion so auto-create never races. Group reads and commits are the
coordinator's (:mod:`minimq.core.groups.coordinator`), with one lock per group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter

from minimq.core.groups import GroupCoordinator
from minimq.core.models import (
    FetchLimits,
    FetchResult,
    PartitionInfo,
    PartitionRecord,
    ProduceRecord,
    RecordPosition,
    RecordPositions,
    StartPosition,
    TopicInfo,
)
from minimq.core.observer import BrokerObserver, NullObserver
from minimq.core.partitioner import Partitioner
from minimq.core.reader import PartitionReader, headers_size
from minimq.core.signals import PartitionSignals
from minimq.core.timestamps import DEFAULT_BOUNDS, TimestampBounds, check_timestamps
from minimq.errors import (
    InvalidRequest,
    MessageTooLarge,
    TopicAlreadyExists,
    TopicNotFound,
)
from minimq.storage.api import NewRecord, PartitionLog, Storage, TopicConfig

log = logging.getLogger("minimq.broker")


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    default_partitions: int = 1
    auto_create_topics: bool = True
    max_record_bytes: int = 1024 * 1024
    session_timeout_ms: int = 10_000
    timestamp_bounds: TimestampBounds = DEFAULT_BOUNDS


# Truthy for a record naming a partition other than 0.
_EXPLICIT_PARTITION = attrgetter("partition")
# A ProduceRecord's timestamp; itemgetter is cheaper than the field property.
_TIMESTAMP = itemgetter(4)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Broker:
    def __init__(
        self,
        storage: Storage,
        settings: BrokerSettings | None = None,
        observer: BrokerObserver | None = None,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.storage = storage
        self.settings = settings or BrokerSettings()
        self.observer: BrokerObserver = observer or NullObserver()
        self._clock_ms = clock_ms
        self._logs = storage.logs
        self._offsets = storage.offsets
        self._partitioner = Partitioner()
        self._signals = PartitionSignals()
        self.reader = PartitionReader(self._logs, self._signals, lambda: self.observer)
        self.groups = GroupCoordinator(
            self.reader, storage.offsets, self.settings.session_timeout_ms
        )
        self._topic_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------

    def wake_all(self) -> None:
        """Shutdown: end every long-poll and stream now; later waits return at once."""
        self._signals.close()

    async def apply_retention(self) -> int:
        """Delete segments past each topic's retention; return how many went."""
        removed = await self._logs.apply_retention()
        if removed:
            log.info("retention removed %d segment(s)", removed)
        return removed

    async def close(self) -> None:
        """Wake waiters, then flush, fsync and close the storage."""
        self.wake_all()
        await self.storage.close()

    # -- topics ----------------------------------------------------------------

    def topic_names(self) -> list[str]:
        return sorted(self._logs.topic_names())

    def list_topics(self) -> list[TopicInfo]:
        return [self.describe_topic(name) for name in self.topic_names()]

    def describe_topic(self, topic: str) -> TopicInfo:
        config = self._config(topic)
        partitions = []
        for index in range(config.partitions):
            plog = self._logs.partition(topic, index)
            partitions.append(
                PartitionInfo(index, plog.start_offset, plog.end_offset, plog.size_bytes)
            )
        return TopicInfo(topic, config, tuple(partitions))

    async def create_topic(self, topic: str, config: TopicConfig) -> TopicInfo:
        async with self._topic_lock:
            if topic in self._logs.topic_names():
                raise TopicAlreadyExists(f"topic {topic!r} already exists")
            await self._logs.create_topic(topic, config)
        log.info("topic created: %s (partitions: %d)", topic, config.partitions)
        return self.describe_topic(topic)

    async def delete_topic(self, topic: str) -> None:
        async with self._topic_lock:
            config = self._config(topic)
            await self._logs.delete_topic(topic)
            await self._offsets.delete_topic(topic)
        self.groups.forget_topic(topic)
        self._partitioner.forget(topic)
        for partition in range(config.partitions):
            self._signals.notify((topic, partition))
        log.info("topic deleted: %s", topic)

    def _exists(self, topic: str) -> bool:
        return self.reader.exists(topic)

    def _config(self, topic: str) -> TopicConfig:
        return self.reader.config(topic)

    async def _config_or_create(self, topic: str) -> TopicConfig:
        # try/except, not contextlib.suppress: this runs for every produce, and a
        # context-manager object per call was a measurable share of a one-record one.
        try:
            return self._logs.topic_config(topic)
        except TopicNotFound:
            pass
        if not self.settings.auto_create_topics:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        async with self._topic_lock:
            if not self._exists(topic):
                await self._logs.create_topic(
                    topic, TopicConfig(partitions=self.settings.default_partitions)
                )
                log.info(
                    "topic created: %s (partitions: %d, on first produce)",
                    topic,
                    self.settings.default_partitions,
                )
        return self._logs.topic_config(topic)

    def _partition(self, topic: str, partition: int) -> PartitionLog:
        return self.reader.partition(topic, partition)

    # -- produce ---------------------------------------------------------------

    async def produce(self, topic: str, records: Sequence[ProduceRecord]) -> RecordPositions:
        """Append ``records``: one batch per partition, acknowledged per the fsync policy.

        Returns each record's position in request order. Batches for different
        partitions are appended concurrently; if one fails the call raises and
        nothing is reported as acknowledged (other partitions may still hold
        their batch, as with any partial failure of a multi-partition write).
        """
        if not records:
            raise InvalidRequest("at least one record is required")
        limit = self.settings.max_record_bytes
        # Inline, not record_size() per record: a call each was a tenth of a batch's cost.
        sizes = [
            (0 if value is None else len(value))
            + (0 if key is None else len(key))
            + (headers_size(headers) if headers else 0)
            for value, key, headers, _, _ in records
        ]
        if max(sizes) > limit:
            raise MessageTooLarge(f"a record is larger than the {limit}-byte record limit")
        config = await self._config_or_create(topic)
        check_timestamps(
            map(_TIMESTAMP, records), config, self._clock_ms(), self.settings.timestamp_bounds
        )
        if config.partitions == 1 and not any(map(_EXPLICIT_PARTITION, records)):
            # The common case: one partition, none named but 0. No partitioner, no gather.
            base = await self._append(topic, 0, records, sum(sizes))
            return RecordPositions.consecutive(0, base, len(records))
        chosen = self._partitioner.assign(topic, config.partitions, records)
        by_partition: dict[int, list[int]] = {}
        for index, partition in enumerate(chosen):
            by_partition.setdefault(partition, []).append(index)
        if len(by_partition) == 1:
            base = await self._append(topic, chosen[0], records, sum(sizes))
            return RecordPositions.consecutive(chosen[0], base, len(records))
        items = list(by_partition.items())
        bases = await asyncio.gather(
            *(
                self._append(
                    topic, partition, [records[i] for i in idx], sum(sizes[i] for i in idx)
                )
                for partition, idx in items
            )
        )
        positions: list[RecordPosition] = [RecordPosition(0, 0)] * len(records)
        for (partition, indexes), base in zip(items, bases, strict=True):
            for delta, index in enumerate(indexes):
                positions[index] = RecordPosition(partition, base + delta)
        return RecordPositions(positions)

    async def _append(
        self, topic: str, partition: int, records: Sequence[ProduceRecord], size: int
    ) -> int:
        plog = self._logs.partition(topic, partition)
        new = tuple.__new__
        batch = [
            new(NewRecord, (key, value, headers, timestamp))
            for value, key, headers, _, timestamp in records
        ]
        started = time.perf_counter()
        base = await plog.append(batch)
        self.observer.appended(topic, len(batch), size, time.perf_counter() - started)
        self._signals.notify((topic, partition))
        return base

    # -- fetch -----------------------------------------------------------------

    async def fetch(
        self, topic: str, partition: int, start: StartPosition, limits: FetchLimits
    ) -> FetchResult:
        """Records of one partition from ``start``, long-polling up to ``limits.wait_ms``."""
        plog = self._partition(topic, partition)
        offset = self.reader.resolve_start(plog, start)
        if offset >= plog.end_offset and limits.wait_ms > 0:
            await self.reader.wait_for_data(topic, lambda: {partition: offset}, limits.wait_ms)
            plog = self._partition(topic, partition)
        records = self.reader.read(plog, offset, limits)
        self.reader.count_fetched(topic, records)
        next_offset = records[-1].offset + 1 if records else offset
        return FetchResult(
            topic, partition, records, next_offset, plog.end_offset, plog.start_offset
        )

    def open_stream(
        self, topic: str, start: StartPosition, partition: int | None = None
    ) -> StreamCursor:
        """A cursor over ``topic``'s records from ``start`` (one partition or all).

        Validates the topic, partition and offset now, so a transport can
        report errors before it starts streaming.
        """
        config = self._config(topic)
        partitions = [partition] if partition is not None else list(range(config.partitions))
        positions = {
            p: self.reader.resolve_start(self._partition(topic, p), start) for p in partitions
        }
        return StreamCursor(self.reader, topic, positions)


class StreamCursor:
    """Follows a topic for a live stream; created by :meth:`Broker.open_stream`."""

    def __init__(self, reader: PartitionReader, topic: str, positions: dict[int, int]) -> None:
        self._reader = reader
        self.topic = topic
        self.positions = positions

    async def next_batch(self, idle_s: float) -> list[PartitionRecord] | None:
        """New records, waiting up to ``idle_s`` for some.

        Returns an empty list after ``idle_s`` without records (time for a
        keep-alive) and None once the topic is gone or the broker shuts down.
        """
        reader = self._reader
        for attempt in range(2):
            if reader.signals.closed or not reader.exists(self.topic):
                return None
            batch: list[PartitionRecord] = []
            for p, position in self.positions.items():
                plog = reader.partition(self.topic, p)
                records = reader.read(plog, position, _STREAM_LIMITS)
                if records:
                    self.positions[p] = records[-1].offset + 1
                    batch.extend(PartitionRecord(p, r) for r in records)
            if batch:
                reader.count_fetched(self.topic, [item.record for item in batch])
                return batch
            if attempt == 0:
                keys = [(self.topic, p) for p in self.positions]
                await reader.signals.wait_any(keys, idle_s)
        return []


_STREAM_LIMITS = FetchLimits(max_records=1000)
