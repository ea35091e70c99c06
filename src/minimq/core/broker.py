"""The transport-agnostic broker facade: topics, produce, fetch, streams; groups beside it.

Every transport (the HTTP server today) validates its input, makes one call
here (or on :attr:`Broker.groups`, the group coordinator) and serializes the
result. The broker owns no I/O of its own beyond the storage seam
(:mod:`minimq.core.storage_seam`): the disk engine, the JetStream backend or,
in tests, an in-memory fake.  The backend wakes long-polls and streams after
its appends (its append listeners), so a backend shared by several broker
processes wakes the waiters of all of them.

A produce stores each of its partitions' batches or not, on its own (see
:meth:`Broker.produce`); under an idempotency key it is done once however
often it is sent (:mod:`minimq.core.idempotency`).

Concurrency: all methods run on one event loop. Appends to a partition are
serialized by the storage writer; the broker serializes topic creation and
deletion so auto-create never races. Group reads and commits are the
coordinator's (:mod:`minimq.core.groups.coordinator`), with one lock per group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter

from minimq.core.batch_errors import OutOfOrderSequence
from minimq.core.groups import GroupCoordinator
from minimq.core.header_limits import DEFAULT_HEADER_LIMITS, HeaderLimits
from minimq.core.idempotency import (
    DEFAULT_WINDOW_BOUNDS,
    ProduceWindow,
    WindowBounds,
    dedup_id,
    fingerprint,
    keyed_spread_start,
)
from minimq.core.keyed_locks import KeyedLocks
from minimq.core.models import (
    FetchLimits,
    FetchResult,
    PartitionInfo,
    PartitionRecord,
    ProduceRecord,
    RawFetchResult,
    RawProduceResult,
    RecordPosition,
    RecordPositions,
    StartPosition,
    TimestampOffset,
    TopicInfo,
)
from minimq.core.observer import BrokerObserver, NullObserver
from minimq.core.partitioner import Partitioner
from minimq.core.producer_state import REBUILD_SCAN_BYTES, PartitionProducers, last_sequence
from minimq.core.reader import PartitionReader, record_size
from minimq.core.record_batches import CheckedBatch, check_batches
from minimq.core.records import NewRecord
from minimq.core.signals import PartitionSignals
from minimq.core.storage_seam import PartitionLog, Storage
from minimq.core.timestamps import DEFAULT_BOUNDS, TimestampBounds, check_timestamps
from minimq.core.topic_config import TopicConfig, validate_topic_name
from minimq.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    MessageTooLarge,
    MiniMQError,
    PartitionNotFound,
    TopicAlreadyExists,
    TopicNotFound,
)
from minimq.recordbatch.frames import NO_PRODUCER_ID

log = logging.getLogger("minimq.broker")


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    default_partitions: int = 1
    auto_create_topics: bool = True
    max_record_bytes: int = 1024 * 1024
    header_limits: HeaderLimits = DEFAULT_HEADER_LIMITS
    session_timeout_ms: int = 10_000
    timestamp_bounds: TimestampBounds = DEFAULT_BOUNDS
    idempotency: WindowBounds = DEFAULT_WINDOW_BOUNDS


# Truthy for a record naming a partition other than 0.
_EXPLICIT_PARTITION = attrgetter("partition")
# A ProduceRecord's timestamp; itemgetter is cheaper than the field property.
_TIMESTAMP = itemgetter(4)
# The settings of a topic that can change after creation (update_topic_config).
RETENTION_SETTINGS = frozenset({"retention_ms", "retention_bytes"})


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
        storage.add_append_listener(self._stored)
        self.reader = PartitionReader(self._logs, self._signals, lambda: self.observer)
        self.groups = GroupCoordinator(
            self.reader,
            storage.offsets,
            self.settings.session_timeout_ms,
            leases=storage.group_leases,
        )
        self._topic_lock = asyncio.Lock()
        self.produce_window = ProduceWindow(self.settings.idempotency)
        # Idempotent Kafka producers, per (topic id, partition); locks per producer.
        self._producer_states: dict[tuple[str, int], PartitionProducers] = {}
        self._producer_locks = KeyedLocks()

    # -- lifecycle -------------------------------------------------------------

    def _stored(self, topic: str, partition: int) -> None:
        """The backend stored records in (or deleted) ``topic``/``partition``: wake its waiters."""
        self._signals.notify((topic, partition))

    def wake_all(self) -> None:
        """Shutdown: end every long-poll and stream now; later waits return at once."""
        self._signals.close()

    async def apply_retention(self) -> int:
        """Delete segments past each topic's retention; return how many went."""
        self.produce_window.expire()
        removed = await self._logs.apply_retention()
        if removed:
            log.info("retention removed %d segment(s)", removed)
        return removed

    async def close(self) -> None:
        """Wake waiters, then flush, fsync and close the storage."""
        self.wake_all()
        await self.storage.close()

    # -- topics ----------------------------------------------------------------

    async def topic_names(self) -> list[str]:
        return sorted(await self._logs.topic_names())

    async def list_topics(self) -> list[TopicInfo]:
        found = []
        for name in await self.topic_names():
            try:
                found.append(await self.describe_topic(name))
            except TopicNotFound:
                continue  # deleted while the list was made
        return found

    async def describe_topic(self, topic: str) -> TopicInfo:
        config = await self._config(topic)
        partitions = []
        for index in range(config.partitions):
            start, end, size = await self._logs.partition(topic, index).bounds()
            partitions.append(PartitionInfo(index, start, end, size))
        return TopicInfo(topic, config, tuple(partitions))

    async def _create(self, topic: str, config: TopicConfig) -> None:
        """Create ``topic`` if both the broker's name rule and the backend's accept it."""
        validate_topic_name(topic)
        self._logs.validate_topic_name(topic)
        await self._logs.create_topic(topic, config)

    async def create_topic(self, topic: str, config: TopicConfig) -> TopicInfo:
        async with self._topic_lock:
            if await self._exists(topic):
                raise TopicAlreadyExists(f"topic {topic!r} already exists")
            await self._create(topic, config)
        log.info("topic created: %s (partitions: %d)", topic, config.partitions)
        return await self.describe_topic(topic)

    async def update_topic_config(self, topic: str, changes: Mapping[str, int | None]) -> TopicInfo:
        """Change the topic's ``retention_ms`` / ``retention_bytes`` (None: unlimited).

        ``changes`` holds the settings to change, others keep their value (merged
        under the topic lock, so two updates of different settings both apply).
        Persisted by the log store; the next retention pass deletes by them.
        """
        unknown = set(changes) - RETENTION_SETTINGS
        if unknown:
            raise InvalidRequest(f"only retention can be changed, not {', '.join(sorted(unknown))}")
        async with self._topic_lock:
            current = await self._config(topic)
            retention_ms = changes.get("retention_ms", current.retention_ms)
            retention_bytes = changes.get("retention_bytes", current.retention_bytes)
            await self._logs.update_retention(topic, retention_ms, retention_bytes)
        log.info(
            "topic retention updated: %s (retention_ms: %s, retention_bytes: %s)",
            topic,
            retention_ms,
            retention_bytes,
        )
        return await self.describe_topic(topic)

    async def delete_topic(self, topic: str) -> None:
        async with self._topic_lock:
            config = await self._config(topic)
            # Once the log is gone so are its commits, whatever happens next: they are
            # keyed by the topic id, and the store's open removes any left by a crash.
            await self._logs.delete_topic(topic)
            await self._offsets.delete_topic(topic)
        self.produce_window.forget_topic(config.topic_id or "")
        for partition in range(config.partitions):
            self._producer_states.pop((config.topic_id or "", partition), None)
        self.reader.forget(topic)
        self.groups.forget_topic(topic)
        self._partitioner.forget(topic)
        log.info("topic deleted: %s", topic)

    async def _exists(self, topic: str) -> bool:
        return await self.reader.exists(topic)

    async def _config(self, topic: str) -> TopicConfig:
        return await self.reader.config(topic)

    async def _config_or_create(self, topic: str) -> TopicConfig:
        # try/except, not contextlib.suppress: this runs for every produce, and a
        # context-manager object per call was a measurable share of a one-record one.
        try:
            return await self._logs.topic_config(topic)
        except TopicNotFound:
            pass
        if not self.settings.auto_create_topics:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        async with self._topic_lock:
            if not await self._exists(topic):
                await self._create(topic, TopicConfig(partitions=self.settings.default_partitions))
                log.info(
                    "topic created: %s (partitions: %d, on first produce)",
                    topic,
                    self.settings.default_partitions,
                )
        return await self._logs.topic_config(topic)

    async def _partition(self, topic: str, partition: int) -> PartitionLog:
        return await self.reader.partition(topic, partition)

    # -- produce ---------------------------------------------------------------

    async def produce(
        self,
        topic: str,
        records: Sequence[ProduceRecord],
        idempotency_key: str | None = None,
    ) -> RecordPositions:
        """Append ``records``: one batch per partition, acknowledged per the fsync policy.

        Returns each record's position in request order. Batches for different
        partitions are appended concurrently, and each partition's outcome is
        its own: when some fail, the first failed partition's error is raised,
        and if other partitions were stored its ``details`` say where each
        record went (:func:`_failed_produce`).  Atomic across partitions it
        cannot be: a crash between two partitions' fsyncs keeps one of them.

        With ``idempotency_key``, the request is done once per key
        (:mod:`minimq.core.idempotency`): sent again, it is answered with the
        offsets already stored, and only partitions that failed are appended.
        """
        if not records:
            raise InvalidRequest("at least one record is required")
        limit = self.settings.max_record_bytes
        checked_headers = self.settings.header_limits.checked_size
        # Inline, not record_size() per record: a call each was a tenth of a batch's cost.
        # Headers are sized (and bounded, HeadersTooLarge) only where a record has them.
        sizes = [
            (0 if value is None else len(value))
            + (0 if key is None else len(key))
            + (checked_headers(headers) if headers else 0)
            for value, key, headers, _, _ in records
        ]
        if max(sizes) > limit:
            raise MessageTooLarge(f"a record is larger than the {limit}-byte record limit")
        config = await self._config_or_create(topic)
        if idempotency_key is not None:
            return await self._produce_once(topic, config, records, sizes, idempotency_key)
        check_timestamps(
            map(_TIMESTAMP, records), config, self._clock_ms(), self.settings.timestamp_bounds
        )
        if config.partitions == 1 and not any(map(_EXPLICIT_PARTITION, records)):
            # The common case: one partition, none named but 0. No partitioner, no gather.
            base = await self._append(topic, 0, records, sum(sizes))
            return RecordPositions.consecutive(0, base, len(records))
        chosen = self._partitioner.assign(topic, config.partitions, records)
        by_partition = _by_partition(chosen)
        if len(by_partition) == 1:
            base = await self._append(topic, chosen[0], records, sum(sizes))
            return RecordPositions.consecutive(chosen[0], base, len(records))
        bases, errors = await self._append_partitions(topic, records, sizes, by_partition)
        if errors:
            raise _failed_produce(topic, by_partition, bases, errors)
        return _positions(by_partition, bases, len(records))

    async def _produce_once(
        self,
        topic: str,
        config: TopicConfig,
        records: Sequence[ProduceRecord],
        sizes: list[int],
        key: str,
    ) -> RecordPositions:
        """``produce`` under an idempotency key: what the key has not stored yet, nothing more."""
        window = self.produce_window
        topic_id = config.topic_id or ""
        digest = fingerprint(records)
        while True:
            entry = window.find(topic_id, key)
            if entry is None or (entry.in_flight is None and not entry.stored):
                entry = None  # none, or an attempt that stored nothing: start afresh
                break
            if entry.fingerprint != digest:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key {key!r} was used for other records of topic {topic!r}; "
                    "a new request needs a new key"
                )
            if entry.in_flight is None:
                break
            # The first attempt is still appending: its outcome is this one's.
            await asyncio.shield(entry.in_flight)
        if entry is None:
            check_timestamps(
                map(_TIMESTAMP, records), config, self._clock_ms(), self.settings.timestamp_bounds
            )
            start = keyed_spread_start(key, config.partitions)
            by_partition = self._assignment(start, topic, config, records)
            entry = window.begin(topic_id, key, digest, start, len(by_partition))
        else:
            by_partition = self._assignment(entry.spread_start, topic, config, records)
            if entry.complete:
                return _positions(by_partition, entry.bases, len(records))
        already = entry.bases
        missing = {p: idx for p, idx in by_partition.items() if p not in already}
        done = entry.in_flight = asyncio.get_running_loop().create_future()
        try:
            bases, errors = await self._append_partitions(
                topic, records, sizes, missing, (topic_id, key)
            )
            entry.add_bases(bases)
        finally:
            entry.in_flight = None
            done.set_result(None)
        if errors:
            raise _failed_produce(topic, by_partition, entry.bases, errors)
        return _positions(by_partition, entry.bases, len(records))

    def _assignment(
        self, start: int, topic: str, config: TopicConfig, records: Sequence[ProduceRecord]
    ) -> dict[int, list[int]]:
        """Each partition's record indexes, from round-robin start ``start``."""
        if config.partitions == 1 and not any(map(_EXPLICIT_PARTITION, records)):
            return {0: list(range(len(records)))}
        return _by_partition(
            self._partitioner.assign_from(start, topic, config.partitions, records)
        )

    async def _append_partitions(
        self,
        topic: str,
        records: Sequence[ProduceRecord],
        sizes: list[int],
        by_partition: dict[int, list[int]],
        idempotency: tuple[str, str] | None = None,
    ) -> tuple[dict[int, int], dict[int, MiniMQError]]:
        """Append each partition's records concurrently: the bases stored, the errors raised.

        ``idempotency`` (topic id, key) names each partition's batch for the backend
        (:func:`~minimq.core.idempotency.dedup_id`), so a retry through another broker
        sharing it can be recognised there.
        """
        items = list(by_partition.items())
        whole = len(items) == 1 and len(items[0][1]) == len(records)
        chunks = [
            (partition, records if whole else [records[i] for i in idx], idx)
            for partition, idx in items
        ]
        results = await asyncio.gather(
            *(
                self._append(
                    topic,
                    partition,
                    chunk,
                    sum(sizes) if whole else sum(sizes[i] for i in idx),
                    None if idempotency is None else dedup_id(*idempotency, partition, chunk),
                )
                for partition, chunk, idx in chunks
            ),
            return_exceptions=True,
        )
        bases: dict[int, int] = {}
        errors: dict[int, MiniMQError] = {}
        for (partition, _), result in zip(items, results, strict=True):
            if isinstance(result, MiniMQError):
                errors[partition] = result
            elif isinstance(result, BaseException):
                raise result
            else:
                bases[partition] = result
        return bases, errors

    async def _append(
        self,
        topic: str,
        partition: int,
        records: Sequence[ProduceRecord],
        size: int,
        dedup: str | None = None,
    ) -> int:
        plog = self._logs.partition(topic, partition)
        new = tuple.__new__
        batch = [
            new(NewRecord, (key, value, headers, timestamp))
            for value, key, headers, _, timestamp in records
        ]
        started = time.perf_counter()
        base = await plog.append(batch, dedup)
        self.observer.appended(topic, len(batch), size, time.perf_counter() - started)
        return base

    # -- Kafka: raw record batches --------------------------------------------

    async def ensure_topic(self, topic: str) -> TopicInfo:
        """``topic``, created with the default partition count if it does not exist yet.

        For transports that create topics on first use by their own rule (the
        Kafka listener's auto-creation); never raises ``TopicAlreadyExists``.
        """
        if not await self._exists(topic):
            async with self._topic_lock:
                if not await self._exists(topic):
                    partitions = self.settings.default_partitions
                    await self._create(topic, TopicConfig(partitions=partitions))
                    log.info("topic created: %s (partitions: %d, on first use)", topic, partitions)
        return await self.describe_topic(topic)

    async def produce_raw(
        self, topic: str, partition: int, records: bytes | bytearray | memoryview
    ) -> RawProduceResult:
        """Store a Kafka producer's RecordBatch frames verbatim; where the first one went.

        The frames are checked first (:mod:`minimq.core.record_batches`) and
        stored only if all pass; an idempotent producer's retry is answered
        with the original offset (:mod:`minimq.core.producer_state`).  Returns
        once the fsync policy is met; long-polls and streams wake as for
        :meth:`produce`.  The topic must exist (see :meth:`ensure_topic`).
        """
        config = await self._config(topic)
        plog = await self._partition(topic, partition)
        batches = check_batches(
            records,
            config,
            self._clock_ms(),
            max_batch_bytes=self.settings.max_record_bytes,
            timestamp_bounds=self.settings.timestamp_bounds,
        )
        producer_id = batches[0].header.producer_id
        if producer_id == NO_PRODUCER_ID and all(
            b.header.producer_id == NO_PRODUCER_ID for b in batches
        ):
            base = await self._append_raw(topic, plog, batches)
            return RawProduceResult(base, (await plog.bounds()).start)
        key = (config.topic_id or "", partition)
        state = await self._producer_state(key, plog)
        async with self._producer_locks.hold((*key, producer_id)):
            original = _check_sequences(state, batches)
            if original is not None:
                return RawProduceResult(original, (await plog.bounds()).start, duplicate=True)
            base = await self._append_raw(topic, plog, batches)
            offset = base
            for batch in batches:
                state.record(batch.header, offset)
                offset += batch.header.record_count
        return RawProduceResult(base, (await plog.bounds()).start)

    async def _append_raw(self, topic: str, plog: PartitionLog, batches: list[CheckedBatch]) -> int:
        started = time.perf_counter()
        base = await plog.append_batches([batch.frame for batch in batches])
        count = sum(batch.header.record_count for batch in batches)
        size = sum(batch.header.total_size for batch in batches)
        self.observer.appended(topic, count, size, time.perf_counter() - started)
        return base

    async def _producer_state(self, key: tuple[str, int], plog: PartitionLog) -> PartitionProducers:
        """The partition's producer state, rebuilt from its log tail the first time."""
        state = self._producer_states.get(key)
        if state is not None:
            return state
        async with self._producer_locks.hold(key):
            state = self._producer_states.get(key)
            if state is None:
                scan = plog.recent_producer_batches(REBUILD_SCAN_BYTES)
                headers = await asyncio.get_running_loop().run_in_executor(None, scan)
                state = PartitionProducers()
                state.rebuild(headers)
                self._producer_states[key] = state
        return state

    async def fetch_raw(
        self, topic: str, partition: int, offset: int, max_bytes: int
    ) -> RawFetchResult:
        """Stored frames from the one holding ``offset``: at most ``max_bytes``, at least one.

        ``OffsetOutOfRange`` outside ``[log start, high watermark]``; no frames
        at the high watermark.  Nothing is decoded or copied beyond one read.
        """
        plog = await self._partition(topic, partition)
        # Asked once, before the read (JetStream: one request to the stream leader).
        start, end, _ = await plog.bounds()
        if offset == end:
            return RawFetchResult([], end, start)
        batches, next_offset = await plog.read_raw(offset, max_bytes)
        if batches:
            self.observer.fetched(topic, next_offset - offset, sum(map(len, batches)))
        if next_offset > end:  # records stored since: the end they belong to (rare)
            end = max((await plog.bounds()).end, next_offset)
        return RawFetchResult(batches, end, start)

    async def wait_for_records(
        self, positions: Mapping[tuple[str, int], int], timeout: float
    ) -> None:
        """Return once a partition has a record at or past its position, or after ``timeout`` s.

        Wakes on the same per-partition notification as HTTP long-polls (no
        polling); returns at once for a partition that does not exist (any
        more), so the caller's next read reports it, and at shutdown.
        """
        deadline = time.monotonic() + timeout
        keys = list(positions)
        while True:
            # Armed before the checks, which may suspend: no append slips between.
            armed = self._signals.arm(keys)
            for (topic, partition), position in positions.items():
                try:
                    plog = await self.reader.partition(topic, partition)
                    if (await plog.bounds()).end > position:
                        return
                except (TopicNotFound, PartitionNotFound):
                    return
            if not await self._signals.wait_armed(armed, deadline - time.monotonic()):
                return

    async def init_producer_id(self) -> tuple[int, int]:
        """A new idempotent producer: ``(producer id, epoch 0)``; ids never repeat."""
        return await self.storage.producer_ids.allocate(), 0

    async def earliest_offset(self, topic: str, partition: int) -> int:
        return (await (await self._partition(topic, partition)).bounds()).start

    async def latest_offset(self, topic: str, partition: int) -> int:
        """The high watermark: the offset the next record gets."""
        return (await (await self._partition(topic, partition)).bounds()).end

    async def offset_for_timestamp(
        self, topic: str, partition: int, timestamp: int
    ) -> TimestampOffset | None:
        """The first record whose timestamp is >= ``timestamp``, None when there is none."""
        plog = await self._partition(topic, partition)
        offset = await plog.offset_for_timestamp(timestamp)
        start, end, _ = await plog.bounds()
        if offset >= end:
            return None
        records = await plog.read(max(offset, start), 1, 1)
        return TimestampOffset(offset, records[0].timestamp) if records else None

    # -- fetch -----------------------------------------------------------------

    async def fetch(
        self, topic: str, partition: int, start: StartPosition, limits: FetchLimits
    ) -> FetchResult:
        """Records of one partition from ``start``, long-polling up to ``limits.wait_ms``."""
        plog = await self._partition(topic, partition)
        # The bounds are asked once (JetStream: one request to the stream leader) and serve
        # the start, the read and the answer's high watermark; a time seek scans first.
        if start.kind == "timestamp":
            offset = await self.reader.resolve_start(plog, start)
            bounds = await plog.bounds()
        else:
            bounds = await plog.bounds()
            offset = await self.reader.resolve_start(plog, start, bounds)
        if limits.wait_ms > 0 and offset >= bounds.end:

            async def position() -> dict[int, int]:
                return {partition: offset}

            await self.reader.wait_for_data(topic, position, limits.wait_ms)
            plog = await self._partition(topic, partition)
            bounds = await plog.bounds()
        records = await self.reader.read(plog, offset, limits, bounds)
        self.reader.count_fetched(topic, records)
        next_offset = records[-1].offset + 1 if records else offset
        end = bounds.end
        if next_offset > end:
            # Records stored since the bounds were read (a read may go past their end): the
            # end they belong to, never one below a record handed out.  Rare: a race.
            end = max((await plog.bounds()).end, next_offset)
        return FetchResult(topic, partition, records, next_offset, end, bounds.start)

    async def open_stream(
        self, topic: str, start: StartPosition, partition: int | None = None
    ) -> StreamCursor:
        """A cursor over ``topic``'s records from ``start`` (one partition or all).

        Validates the topic, partition and offset now, so a transport can
        report errors before it starts streaming.
        """
        config = await self._config(topic)
        partitions = [partition] if partition is not None else list(range(config.partitions))
        positions = {
            p: await self.reader.resolve_start(await self._partition(topic, p), start)
            for p in partitions
        }
        return StreamCursor(self.reader, topic, positions)


def _check_sequences(state: PartitionProducers, batches: Sequence[CheckedBatch]) -> int | None:
    """The stored base offset when ``batches`` are a retry, None when they are new.

    Several batches of one produce must come from one producer and follow
    each other; either all of them were stored before or none was.
    """
    first = batches[0].header
    original = state.check(first)
    previous = first
    for batch in batches[1:]:
        header = batch.header
        if (
            header.producer_id != first.producer_id
            or header.producer_epoch != first.producer_epoch
            or header.base_sequence != (last_sequence(previous) + 1) % 2**31
        ):
            raise OutOfOrderSequence(
                "the batches of one produce must be one producer's, in sequence"
            )
        if (state.check(header) is None) != (original is None):
            raise OutOfOrderSequence("a produce may not mix new batches with retried ones")
        previous = header
    return original


def _by_partition(chosen: Sequence[int]) -> dict[int, list[int]]:
    """The indexes of the records of each partition, in request order."""
    by_partition: dict[int, list[int]] = {}
    for index, partition in enumerate(chosen):
        by_partition.setdefault(partition, []).append(index)
    return by_partition


def _positions(
    by_partition: dict[int, list[int]], bases: dict[int, int], count: int
) -> RecordPositions:
    if len(by_partition) == 1:
        ((partition, _),) = by_partition.items()
        return RecordPositions.consecutive(partition, bases[partition], count)
    positions: list[RecordPosition] = [RecordPosition(0, 0)] * count
    for partition, indexes in by_partition.items():
        base = bases[partition]
        for delta, index in enumerate(indexes):
            positions[index] = RecordPosition(partition, base + delta)
    return RecordPositions(positions)


def _failed_produce(
    topic: str,
    by_partition: dict[int, list[int]],
    bases: dict[int, int],
    errors: dict[int, MiniMQError],
) -> MiniMQError:
    """The error of a produce some of whose partitions failed.

    The first failed partition's error, as it is when nothing was stored.  When
    other partitions were stored it says so, and its ``details`` hold
    ``{"topic", "offsets"}`` with one entry per record in request order:
    ``{"partition", "offset"}`` where it was stored, ``{"partition", "offset":
    None, "error": code}`` where not.
    """
    first = errors[min(errors)]
    if not bases:
        return first
    offsets: list[dict[str, object]] = [{}] * sum(map(len, by_partition.values()))
    for partition, indexes in by_partition.items():
        base = bases.get(partition)
        code = None if base is not None else errors[partition].code
        for delta, index in enumerate(indexes):
            offsets[index] = (
                {"partition": partition, "offset": base + delta}
                if base is not None
                else {"partition": partition, "offset": None, "error": code}
            )
    error = type(first)(
        f"{first.message}; of this produce, partition(s) {sorted(bases)} were stored and "
        f"{sorted(errors)} not ('offsets' says which records): sent again with the same "
        "Idempotency-Key, it stores only the rest"
    )
    error.details = {"topic": topic, "offsets": offsets}
    return error


# Records per partition in one stream batch, and payload bytes in all of them.
_STREAM_RECORDS = 1000
STREAM_BATCH_BYTES = 1024 * 1024


class StreamCursor:
    """Follows a topic for a live stream; created by :meth:`Broker.open_stream`."""

    def __init__(self, reader: PartitionReader, topic: str, positions: dict[int, int]) -> None:
        self._reader = reader
        self.topic = topic
        self.positions = positions
        # Where the next batch starts reading: batches are bounded in bytes, so
        # each starts one partition further on, and a partition with a long
        # backlog cannot starve the others.
        self._first = 0

    async def next_batch(
        self, idle_s: float, max_bytes: int = STREAM_BATCH_BYTES
    ) -> list[PartitionRecord] | None:
        """New records (at most ``max_bytes`` of payload, or one record), waiting up to ``idle_s``.

        Returns an empty list after ``idle_s`` without records (time for a
        keep-alive) and None once the topic is gone or the broker shuts down.
        """
        reader = self._reader
        keys = [(self.topic, p) for p in self.positions]
        for attempt in range(2):
            # Armed before the reads, which may suspend: no append slips between.
            armed = reader.signals.arm(keys)
            if reader.signals.closed or not await reader.exists(self.topic):
                return None
            batch: list[PartitionRecord] = []
            order = list(self.positions.items())
            self._first = (self._first + 1) % len(order)
            budget = max_bytes
            for p, position in order[self._first :] + order[: self._first]:
                plog = await reader.partition(self.topic, p)
                limits = FetchLimits(max_records=_STREAM_RECORDS, max_bytes=budget)
                records = await reader.read(plog, position, limits)
                if records:
                    self.positions[p] = records[-1].offset + 1
                    batch.extend(PartitionRecord(p, r) for r in records)
                    budget -= sum(map(record_size, records))
                    if budget <= 0:
                        break
            if batch:
                reader.count_fetched(self.topic, [item.record for item in batch])
                return batch
            if attempt == 0:
                await reader.signals.wait_armed(armed, idle_s)
        return []

    def unread(self, batch: Sequence[PartitionRecord]) -> None:
        """Move back to the start of ``batch``, which the transport could not send yet."""
        for item in reversed(batch):
            self.positions[item.partition] = item.record.offset
