"""Where a live stream (``Client.stream`` / ``AsyncClient.stream``) has got to.

A stream whose connection breaks (its broker crashed, a gateway went away)
is opened again, on the next broker URL (:mod:`minimq.client._failover`), and
carries on after the last record it delivered, without a gap or a repeat:

- A stream of one partition asks for ``from=<next offset>`` of that partition.
- A stream of every partition cannot name one offset per partition in its
  request, so it asks for ``from=earliest`` and skips, per partition, what it
  already delivered.  That re-reads each partition's retained records on the
  new connection: a cost paid once per reconnection, for no gap.

A stream that starts at ``latest`` learns each partition's end offset
(``describe_topic``) before its first connection, so "after the last record
delivered" is defined for partitions it has seen nothing of yet.

Not thread-safe: one position per stream, used by the stream's own iteration.
"""

from __future__ import annotations

from collections.abc import Iterable

from minimq.client import _calls
from minimq.client._calls import OffsetSpec, QueryValue
from minimq.client._models import Record, TopicInfo


class StreamPosition:
    """The next offset to deliver per partition, and the request that resumes there."""

    def __init__(self, topic: str, start: OffsetSpec, partition: int | None) -> None:
        self.topic = topic
        self.start = start
        self.partition = partition
        # Partition -> next offset to deliver; a partition missing here delivers from `start`.
        self._next: dict[int, int] = {}
        if partition is not None and isinstance(start, int):
            self._next[partition] = start
        self._connections = 0

    @property
    def needs_end_offsets(self) -> bool:
        """Whether :meth:`start_at_ends` must be called before the first connection."""
        return self.start == "latest"

    def start_at_ends(self, topic: TopicInfo) -> None:
        """Record the topic's end offsets as where a ``latest`` stream begins."""
        for info in topic.partition_info:
            if self.partition is None or info.partition == self.partition:
                self._next.setdefault(info.partition, info.end_offset)

    def request(self) -> tuple[str, dict[str, QueryValue]]:
        """Path and query of the next connection: the first as asked, later ones resuming."""
        self._connections += 1
        if self._connections == 1:
            start = self.start
        elif self.partition is not None:
            start = self._next.get(self.partition, self.start)
        else:
            start = "earliest"
        return _calls.stream_request(self.topic, start=start, partition=self.partition)

    def admit(self, records: Iterable[Record]) -> list[Record]:
        """The records not delivered before, in order; they count as delivered now."""
        fresh: list[Record] = []
        for record in records:
            if record.offset < self._next.get(record.partition, 0):
                continue
            self._next[record.partition] = record.offset + 1
            fresh.append(record)
        return fresh
