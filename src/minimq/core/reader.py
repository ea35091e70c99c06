"""Reading partitions for every kind of consumer: fetch, group fetch, streams, /consume.

The broker's plain fetch, the group coordinator and live streams all read the
same way: resolve where to start, read within limits, count what was handed
out, and long-poll on the per-partition "new data" signal. This module is that
one way, so that the coordinator sits *beside* the broker's fetch instead of
reaching into it.

Event-loop only (not thread-safe), like the signals it waits on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from operator import itemgetter

from minimq.core.models import FetchLimits, StartPosition
from minimq.core.observer import BrokerObserver
from minimq.core.records import Record
from minimq.core.signals import PartitionSignals
from minimq.core.storage_seam import LogBounds, LogStore, PartitionLog
from minimq.core.topic_config import TopicConfig
from minimq.errors import OffsetOutOfRange, PartitionNotFound, TopicNotFound

# Positions in a stored Record; itemgetter is cheaper than the field properties.
_KEY, _VALUE, _HEADERS = itemgetter(2), itemgetter(3), itemgetter(4)


def headers_size(headers: Sequence[tuple[str, bytes]]) -> int:
    return sum(len(name) + len(value or b"") for name, value in headers)


def record_size(record: Record) -> int:
    """Payload bytes of a stored record: key, value and headers."""
    size = len(record.value or b"") + len(record.key or b"")
    return size + headers_size(record.headers) if record.headers else size


class PartitionReader:
    """Reads partitions of the log store and waits for new data on them."""

    def __init__(
        self,
        logs: LogStore,
        signals: PartitionSignals,
        observer: Callable[[], BrokerObserver],
    ) -> None:
        self._logs = logs
        self.signals = signals
        # A callable, not the observer itself: the server sets the broker's
        # observer after construction, and reads must report to the current one.
        self._observer = observer
        # Partition counts of the topics looked up (they never change while a topic
        # lives), for the group state machine, which rebalances without awaiting.
        self._partition_counts: dict[str, int] = {}

    async def exists(self, topic: str) -> bool:
        try:
            await self._logs.topic_config(topic)
        except TopicNotFound:
            return False
        return True

    async def config(self, topic: str) -> TopicConfig:
        try:
            config = await self._logs.topic_config(topic)
        except TopicNotFound:
            self._partition_counts.pop(topic, None)
            raise TopicNotFound(f"topic {topic!r} does not exist") from None
        self._partition_counts[topic] = config.partitions
        return config

    async def partitions_of(self, topic: str) -> int:
        """How many partitions ``topic`` has; 0 once it is gone."""
        try:
            return (await self.config(topic)).partitions
        except TopicNotFound:
            return 0

    def known_partitions(self, topic: str) -> int:
        """The partition count :meth:`config` last saw for ``topic`` (0: none, or gone).

        Every topic a group member reads was looked up when it joined, so a
        rebalance can count partitions without awaiting the store.
        """
        return self._partition_counts.get(topic, 0)

    def forget(self, topic: str) -> None:
        """``topic`` was deleted: :meth:`known_partitions` says 0 until it is looked up again."""
        self._partition_counts.pop(topic, None)

    async def partition(self, topic: str, partition: int) -> PartitionLog:
        config = await self.config(topic)
        if not 0 <= partition < config.partitions:
            raise PartitionNotFound(
                f"topic {topic!r} has partitions 0..{config.partitions - 1}, not {partition}"
            )
        return self._logs.partition(topic, partition)

    async def resolve_start(
        self, plog: PartitionLog, start: StartPosition, bounds: LogBounds | None = None
    ) -> int:
        """The offset ``start`` names; ``OffsetOutOfRange`` for an offset outside the bounds.

        ``bounds``: the partition's bounds as the caller just read them (one question to
        the store per fetch: with JetStream each is a request to the stream leader).
        """
        if start.kind == "timestamp":
            return await plog.offset_for_timestamp(start.value)
        if bounds is None:
            bounds = await plog.bounds()
        if start.kind == "earliest":
            return bounds.start
        if start.kind == "latest":
            return bounds.end
        if not bounds.start <= start.value <= bounds.end:
            raise OffsetOutOfRange(f"offset {start.value} is outside {bounds.start}..{bounds.end}")
        return start.value

    async def read(
        self,
        plog: PartitionLog,
        offset: int,
        limits: FetchLimits,
        bounds: LogBounds | None = None,
    ) -> list[Record]:
        """Records from ``offset`` (moved up to the start offset if retention passed it).

        ``bounds`` taken by the caller are used as they are: ``[]`` at or past their end
        offset (a valid answer, the end as it was a moment ago).  Without them the log is
        read straight away and asked for its bounds only when it says the offset is out of
        range: at or past the end (``[]``) or below the start (read from the start).
        """
        if bounds is not None:
            if offset >= bounds.end:
                return []
            return await plog.read(max(offset, bounds.start), limits.max_records, limits.max_bytes)
        try:
            return await plog.read(offset, limits.max_records, limits.max_bytes)
        except OffsetOutOfRange:
            start, end, _ = await plog.bounds()
            if offset >= end:
                return []
            return await plog.read(max(offset, start), limits.max_records, limits.max_bytes)

    async def has_data(self, topic: str, positions: dict[int, int]) -> bool:
        """Whether any partition of ``positions`` holds a record at or past its position."""
        for p, position in positions.items():
            if (await self._logs.partition(topic, p).bounds()).end > position:
                return True
        return False

    async def wait_for_data(
        self,
        topic: str,
        positions: Callable[[], Awaitable[dict[int, int]]],
        wait_ms: int,
        also_wake_on: Iterable[Hashable] = (),
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Return once a partition has data past its position, or after ``wait_ms``.

        ``positions`` is asked again after every wake-up, because what a
        member owns may change while it waits. ``also_wake_on`` are further
        signal keys (a group's rebalance) to wake up on, and the wait ends
        early once ``stop()`` says so (the member's generation is over).
        """
        deadline = time.monotonic() + wait_ms / 1000
        extra = list(also_wake_on)
        while True:
            current = await positions()
            keys: list[Hashable] = [(topic, p) for p in current]
            # Armed before the checks, which may suspend: no append slips between.
            armed = self.signals.arm([*keys, *extra])
            if not await self.exists(topic) or stop():
                return
            if await self.has_data(topic, current):
                return
            if not await self.signals.wait_armed(armed, deadline - time.monotonic()):
                return

    def count_fetched(self, topic: str, records: Sequence[Record]) -> None:
        if records:
            # map/filter run in C: this counts every record served.
            size = sum(map(len, filter(None, map(_VALUE, records))))
            size += sum(map(len, filter(None, map(_KEY, records))))
            for headers in filter(None, map(_HEADERS, records)):
                size += headers_size(headers)
            self._observer().fetched(topic, len(records), size)
