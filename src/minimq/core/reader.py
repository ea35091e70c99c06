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
from collections.abc import Callable, Hashable, Iterable, Sequence
from operator import itemgetter

from minimq.core.models import FetchLimits, StartPosition
from minimq.core.observer import BrokerObserver
from minimq.core.signals import PartitionSignals
from minimq.errors import OffsetOutOfRange, PartitionNotFound, TopicNotFound
from minimq.storage.api import LogStore, PartitionLog, Record, TopicConfig

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

    def exists(self, topic: str) -> bool:
        # A dict lookup; ``topic_names()`` builds a sorted list per call.
        try:
            self._logs.topic_config(topic)
        except TopicNotFound:
            return False
        return True

    def config(self, topic: str) -> TopicConfig:
        try:
            return self._logs.topic_config(topic)
        except TopicNotFound:
            raise TopicNotFound(f"topic {topic!r} does not exist") from None

    def partitions_of(self, topic: str) -> int:
        """How many partitions ``topic`` has; 0 once it is gone."""
        try:
            return self._logs.topic_config(topic).partitions
        except TopicNotFound:
            return 0

    def partition(self, topic: str, partition: int) -> PartitionLog:
        config = self.config(topic)
        if not 0 <= partition < config.partitions:
            raise PartitionNotFound(
                f"topic {topic!r} has partitions 0..{config.partitions - 1}, not {partition}"
            )
        return self._logs.partition(topic, partition)

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

    def read(self, plog: PartitionLog, offset: int, limits: FetchLimits) -> list[Record]:
        """Records from ``offset`` (moved up to the start offset if retention passed it)."""
        if offset >= plog.end_offset:
            return []
        offset = max(offset, plog.start_offset)
        return plog.read(offset, limits.max_records, limits.max_bytes)

    def has_data(self, topic: str, positions: dict[int, int]) -> bool:
        """Whether any partition of ``positions`` holds a record at or past its position."""
        return any(self._logs.partition(topic, p).end_offset > o for p, o in positions.items())

    async def wait_for_data(
        self,
        topic: str,
        positions: Callable[[], dict[int, int]],
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
            if not self.exists(topic) or stop():
                return
            current = positions()
            if self.has_data(topic, current):
                return
            remaining = deadline - time.monotonic()
            keys: list[Hashable] = [(topic, p) for p in current]
            if not await self.signals.wait_any([*keys, *extra], remaining):
                return

    def count_fetched(self, topic: str, records: Sequence[Record]) -> None:
        if records:
            # map/filter run in C: this counts every record served.
            size = sum(map(len, filter(None, map(_VALUE, records))))
            size += sum(map(len, filter(None, map(_KEY, records))))
            for headers in filter(None, map(_HEADERS, records)):
                size += headers_size(headers)
            self._observer().fetched(topic, len(records), size)
