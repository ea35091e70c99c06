"""The transport-agnostic broker facade: topics, produce, fetch, groups, streams.

Every transport (the HTTP server today) validates its input, makes one call
here and serializes the result. The broker owns no I/O of its own beyond the
storage protocols of :mod:`minimq.storage.api`, so tests can run it on an
in-memory fake.

Concurrency: all methods run on one event loop. Appends to a partition are
serialized by the storage writer; the broker adds two locks of its own:
topic creation/deletion is serialized so auto-create never races, and
read-and-commit sequences of one (group, topic) — the original ``/consume``
and group fetches with ``commit=true`` — are serialized so concurrent callers
sharing a group never get the same record and never skip one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter

from minimq.core.keyed_locks import KeyedLocks
from minimq.core.membership import Membership
from minimq.core.models import (
    CommitOffset,
    ConsumedMessage,
    FetchLimits,
    FetchResult,
    GroupFetchResult,
    GroupInfo,
    GroupOffset,
    GroupSummary,
    PartitionInfo,
    PartitionRecord,
    ProduceRecord,
    RecordPosition,
    RecordPositions,
    ResetPolicy,
    StartPosition,
    TopicInfo,
)
from minimq.core.observer import BrokerObserver, NullObserver
from minimq.core.partitioner import Partitioner
from minimq.core.signals import PartitionSignals
from minimq.errors import (
    GroupNotFound,
    InvalidRequest,
    MessageTooLarge,
    OffsetOutOfRange,
    PartitionNotFound,
    TopicAlreadyExists,
    TopicNotFound,
)
from minimq.storage.api import NewRecord, PartitionLog, Record, Storage, TopicConfig

log = logging.getLogger("minimq.broker")


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    default_partitions: int = 1
    auto_create_topics: bool = True
    max_record_bytes: int = 1024 * 1024
    session_timeout_ms: int = 10_000


def record_size(record: Record | ProduceRecord) -> int:
    """Payload bytes of a record: key, value and headers."""
    size = len(record.value or b"") + len(record.key or b"")
    return size + _headers_size(record.headers) if record.headers else size


def _headers_size(headers: Sequence[tuple[str, bytes]]) -> int:
    return sum(len(name) + len(value or b"") for name, value in headers)


# Truthy for a record naming a partition other than 0.
_EXPLICIT_PARTITION = attrgetter("partition")
# Positions in a stored Record; itemgetter is cheaper than the field properties.
_KEY, _VALUE, _HEADERS = itemgetter(2), itemgetter(3), itemgetter(4)


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
        self._membership = Membership(self.settings.session_timeout_ms)
        self._topic_lock = asyncio.Lock()
        self._consume_locks = KeyedLocks()

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
        self._membership.forget_topic(topic)
        self._partitioner.forget(topic)
        for partition in range(config.partitions):
            self._signals.notify((topic, partition))
        log.info("topic deleted: %s", topic)

    def _exists(self, topic: str) -> bool:
        # A dict lookup; ``topic_names()`` builds a sorted list per call.
        try:
            self._logs.topic_config(topic)
        except TopicNotFound:
            return False
        return True

    def _config(self, topic: str) -> TopicConfig:
        try:
            return self._logs.topic_config(topic)
        except TopicNotFound:
            raise TopicNotFound(f"topic {topic!r} does not exist") from None

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
        config = self._config(topic)
        if not 0 <= partition < config.partitions:
            raise PartitionNotFound(
                f"topic {topic!r} has partitions 0..{config.partitions - 1}, not {partition}"
            )
        return self._logs.partition(topic, partition)

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
            + (_headers_size(headers) if headers else 0)
            for value, key, headers, _, _ in records
        ]
        if max(sizes) > limit:
            raise MessageTooLarge(f"a record is larger than the {limit}-byte record limit")
        config = await self._config_or_create(topic)
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

    def resolve_start(self, plog: PartitionLog, start: StartPosition) -> int:
        if start.kind == "earliest":
            return plog.start_offset
        if start.kind == "latest":
            return plog.end_offset
        if start.kind == "timestamp":
            return plog.offset_for_timestamp(start.value)
        if not plog.start_offset <= start.value <= plog.end_offset:
            raise OffsetOutOfRange(
                f"offset {start.value} is outside {plog.start_offset}..{plog.end_offset}"
            )
        return start.value

    async def fetch(
        self, topic: str, partition: int, start: StartPosition, limits: FetchLimits
    ) -> FetchResult:
        """Records of one partition from ``start``, long-polling up to ``limits.wait_ms``."""
        plog = self._partition(topic, partition)
        offset = self.resolve_start(plog, start)
        if offset >= plog.end_offset and limits.wait_ms > 0:
            await self._wait_for_data(topic, [partition], {partition: offset}, limits.wait_ms)
            plog = self._partition(topic, partition)
        records = self._read(plog, offset, limits)
        self._count_fetched(topic, records)
        next_offset = records[-1].offset + 1 if records else offset
        return FetchResult(
            topic, partition, records, next_offset, plog.end_offset, plog.start_offset
        )

    def _read(self, plog: PartitionLog, offset: int, limits: FetchLimits) -> list[Record]:
        if offset >= plog.end_offset:
            return []
        offset = max(offset, plog.start_offset)
        return plog.read(offset, limits.max_records, limits.max_bytes)

    async def _wait_for_data(
        self, topic: str, partitions: list[int], positions: dict[int, int], wait_ms: int
    ) -> None:
        """Return once any partition has data beyond its position, or after ``wait_ms``."""
        deadline = time.monotonic() + wait_ms / 1000
        keys = [(topic, p) for p in partitions]
        while True:
            if not self._exists(topic):
                return
            if any(self._logs.partition(topic, p).end_offset > positions[p] for p in partitions):
                return
            remaining = deadline - time.monotonic()
            if not await self._signals.wait_any(keys, remaining):
                return

    def _count_fetched(self, topic: str, records: Sequence[Record]) -> None:
        if records:
            # map/filter run in C: this counts every record served.
            size = sum(map(len, filter(None, map(_VALUE, records))))
            size += sum(map(len, filter(None, map(_KEY, records))))
            for headers in filter(None, map(_HEADERS, records)):
                size += _headers_size(headers)
            self.observer.fetched(topic, len(records), size)

    def open_stream(
        self, topic: str, start: StartPosition, partition: int | None = None
    ) -> StreamCursor:
        """A cursor over ``topic``'s records from ``start`` (one partition or all).

        Validates the topic, partition and offset now, so a transport can
        report errors before it starts streaming.
        """
        config = self._config(topic)
        partitions = [partition] if partition is not None else list(range(config.partitions))
        positions = {p: self.resolve_start(self._partition(topic, p), start) for p in partitions}
        return StreamCursor(self, topic, positions)

    # -- consumer groups -------------------------------------------------------

    def _member_partitions(self, group: str, topic: str, member_id: str) -> list[int]:
        config = self._config(topic)
        return self._membership.touch(group, topic, member_id, config.partitions, self._clock_ms())

    def heartbeat(self, group: str, topic: str, member_id: str | None) -> tuple[str, list[int]]:
        """Keep ``member_id`` alive on ``topic``; return it and its partitions."""
        member = member_id or uuid.uuid4().hex
        return member, self._member_partitions(group, topic, member)

    def leave(self, group: str, topic: str, member_id: str) -> None:
        self._membership.leave(group, topic, member_id)

    def _initial_position(self, group: str, topic: str, partition: int, reset: ResetPolicy) -> int:
        plog = self._logs.partition(topic, partition)
        committed = self._offsets.committed(group).get((topic, partition))
        if committed is None or not plog.start_offset <= committed <= plog.end_offset:
            return plog.start_offset if reset == "earliest" else plog.end_offset
        return committed

    async def group_fetch(
        self,
        group: str,
        topic: str,
        member_id: str | None,
        limits: FetchLimits,
        *,
        commit: bool = False,
        auto_offset_reset: ResetPolicy = "earliest",
    ) -> GroupFetchResult:
        """Fetch as ``member_id`` of ``group`` from its owned partitions' positions.

        With ``commit`` the advanced positions are committed durably before
        returning; such fetches of one (group, topic) are serialized.
        """
        member, owned = self.heartbeat(group, topic, member_id)
        state = self._membership.state(group, topic)
        assert state is not None  # heartbeat created it
        for p in owned:
            if p not in state.positions:
                state.positions[p] = self._initial_position(group, topic, p, auto_offset_reset)
        if owned and limits.wait_ms > 0:
            await self._wait_for_data(topic, owned, dict(state.positions), limits.wait_ms)
        if commit:
            async with self._consume_locks.hold((group, topic)):
                records = self._take(group, topic, member, limits)
                if records:
                    await self._commit_positions(group, topic, records)
        else:
            records = self._take(group, topic, member, limits)
        current = self._membership.state(group, topic)
        owned_now = list(current.assignment.get(member, [])) if current else []
        positions = {
            p: current.positions[p] for p in owned_now if current and p in current.positions
        }
        return GroupFetchResult(group, topic, member, owned_now, records, positions)

    def _take(
        self, group: str, topic: str, member: str, limits: FetchLimits
    ) -> list[PartitionRecord]:
        """Read from the member's partitions and advance their positions (no await inside)."""
        state = self._membership.state(group, topic)
        if state is None or not self._exists(topic):
            return []
        taken: list[PartitionRecord] = []
        remaining = FetchLimits(limits.max_records, limits.max_bytes)
        for p in state.assignment.get(member, []):
            if remaining.max_records <= 0 or remaining.max_bytes <= 0:
                break
            if p not in state.positions:
                continue
            records = self._read(self._logs.partition(topic, p), state.positions[p], remaining)
            if not records:
                continue
            state.positions[p] = records[-1].offset + 1
            taken.extend(PartitionRecord(p, r) for r in records)
            remaining = FetchLimits(
                remaining.max_records - len(records),
                remaining.max_bytes - sum(record_size(r) for r in records),
            )
        self._count_fetched(topic, [item.record for item in taken])
        return taken

    async def _commit_positions(
        self, group: str, topic: str, records: list[PartitionRecord]
    ) -> None:
        latest: dict[int, int] = {}
        for item in records:
            latest[item.partition] = item.record.offset + 1
        await self._offsets.commit(group, [(topic, p, o) for p, o in latest.items()])

    async def commit(self, group: str, offsets: Sequence[CommitOffset]) -> list[CommitOffset]:
        """Durably store ``offsets`` (next offsets to read) for ``group``."""
        for item in offsets:
            plog = self._partition(item.topic, item.partition)
            if not 0 <= item.offset <= plog.end_offset:
                raise OffsetOutOfRange(
                    f"offset {item.offset} of {item.topic}/{item.partition} is outside"
                    f" 0..{plog.end_offset}"
                )
        await self._offsets.commit(group, [(o.topic, o.partition, o.offset) for o in offsets])
        return list(offsets)

    async def consume(self, topic: str, consumer_id: str) -> ConsumedMessage | None:
        """The original ``/consume``: next unread record of ``consumer_id``, committed.

        Partitions are tried in order; the returned record's offset + 1 is
        committed durably before this returns, under the (consumer_id, topic)
        lock, so concurrent callers never share or skip a record.
        """
        if not self._exists(topic):
            return None
        async with self._consume_locks.hold((consumer_id, topic)):
            if not self._exists(topic):
                return None
            committed = self._offsets.committed(consumer_id)
            for partition in range(self._logs.topic_config(topic).partitions):
                plog = self._logs.partition(topic, partition)
                position = max(committed.get((topic, partition), 0), plog.start_offset)
                records = self._read(plog, position, FetchLimits(max_records=1))
                if records:
                    record = records[0]
                    await self._offsets.commit(consumer_id, [(topic, partition, record.offset + 1)])
                    self._count_fetched(topic, records)
                    return ConsumedMessage(partition, record)
        return None

    def list_groups(self) -> list[GroupSummary]:
        now = self._clock_ms()
        names = set(self._offsets.group_names()) | set(self._membership.group_names(now))
        summaries = []
        for group in sorted(names):
            members = self._membership.members(group, now)
            topics = {topic for topic, _ in self._offsets.committed(group)}
            topics.update(m.topic for m in members)
            summaries.append(
                GroupSummary(group, sorted(topics), len({m.member_id for m in members}))
            )
        return summaries

    def describe_group(self, group: str) -> GroupInfo:
        members = self._membership.members(group, self._clock_ms())
        committed = self._offsets.committed(group)
        if not members and not committed and group not in self._offsets.group_names():
            raise GroupNotFound(f"group {group!r} does not exist")
        names = set(self._logs.topic_names())
        offsets = [
            GroupOffset(topic, partition, offset, self._logs.partition(topic, partition).end_offset)
            for (topic, partition), offset in sorted(committed.items())
            if topic in names and partition < self._logs.topic_config(topic).partitions
        ]
        return GroupInfo(group, members, offsets)

    async def reset_group(
        self, group: str, topic: str, start: StartPosition, partition: int | None = None
    ) -> GroupInfo:
        """Move ``group``'s committed offsets on ``topic`` (one partition or all)."""
        config = self._config(topic)
        partitions = [partition] if partition is not None else list(range(config.partitions))
        targets = [
            (topic, p, self.resolve_start(self._partition(topic, p), start)) for p in partitions
        ]
        async with self._consume_locks.hold((group, topic)):
            await self._offsets.commit(group, targets)
            self._membership.reset_positions(group, topic, partitions)
        return self.describe_group(group)

    async def delete_group(self, group: str) -> None:
        known = group in self._offsets.group_names()
        forgotten = self._membership.forget_group(group)
        if not known and not forgotten:
            raise GroupNotFound(f"group {group!r} does not exist")
        await self._offsets.delete_group(group)

    def group_lags(self) -> list[tuple[str, GroupOffset]]:
        """Every group's committed offsets with end offset and lag (for metrics)."""
        names = set(self._logs.topic_names())
        found = []
        for group in self._offsets.group_names():
            for (topic, partition), offset in self._offsets.committed(group).items():
                if topic in names and partition < self._logs.topic_config(topic).partitions:
                    end = self._logs.partition(topic, partition).end_offset
                    found.append((group, GroupOffset(topic, partition, offset, end)))
        return found


class StreamCursor:
    """Follows a topic for a live stream; created by :meth:`Broker.open_stream`."""

    def __init__(self, broker: Broker, topic: str, positions: dict[int, int]) -> None:
        self._broker = broker
        self.topic = topic
        self.positions = positions

    async def next_batch(self, idle_s: float) -> list[PartitionRecord] | None:
        """New records, waiting up to ``idle_s`` for some.

        Returns an empty list after ``idle_s`` without records (time for a
        keep-alive) and None once the topic is gone or the broker shuts down.
        """
        broker = self._broker
        for attempt in range(2):
            if broker._signals.closed or not broker._exists(self.topic):
                return None
            batch: list[PartitionRecord] = []
            for p, position in self.positions.items():
                plog = broker._logs.partition(self.topic, p)
                records = broker._read(plog, position, _STREAM_LIMITS)
                if records:
                    self.positions[p] = records[-1].offset + 1
                    batch.extend(PartitionRecord(p, r) for r in records)
            if batch:
                broker._count_fetched(self.topic, [item.record for item in batch])
                return batch
            if attempt == 0:
                keys = [(self.topic, p) for p in self.positions]
                await broker._signals.wait_any(keys, idle_s)
        return []


_STREAM_LIMITS = FetchLimits(max_records=1000)
