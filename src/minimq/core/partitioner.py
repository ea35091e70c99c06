"""Choosing a partition for each produced record.

Keyed records go to ``crc32c(key) % partitions``: stable across restarts and
processes (unlike Python's salted ``hash``), so one key keeps its order.
Unkeyed records of one request are spread round-robin from a start that
rotates per request, so small requests still spread over every partition.
"""

from __future__ import annotations

from collections.abc import Sequence

import crc32c

from minimq.core.models import ProduceRecord
from minimq.errors import PartitionNotFound


def partition_for_key(key: bytes, partitions: int) -> int:
    """The stable partition of ``key`` among ``partitions``."""
    return int(crc32c.crc32c(key)) % partitions


class Partitioner:
    """Assigns partitions; one instance per broker.

    Not thread-safe; used from the event loop only.
    """

    def __init__(self) -> None:
        self._next_start: dict[str, int] = {}

    def assign(self, topic: str, partitions: int, records: Sequence[ProduceRecord]) -> list[int]:
        """The partition of each record, in order; raises for an explicit bad partition."""
        return self.assign_from(self.next_start(topic, partitions), topic, partitions, records)

    def next_start(self, topic: str, partitions: int) -> int:
        """Where the next request's unkeyed records start, moving the rotation on."""
        start = self._next_start.get(topic, 0)
        self._next_start[topic] = (start + 1) % partitions
        return start

    @staticmethod
    def assign_from(
        start: int, topic: str, partitions: int, records: Sequence[ProduceRecord]
    ) -> list[int]:
        """As :meth:`assign`, from round-robin start ``start``: the same records and
        start give the same partitions (an idempotent retry lands where its first
        attempt did)."""
        spread = start
        chosen: list[int] = []
        for record in records:
            if record.partition is not None:
                if not 0 <= record.partition < partitions:
                    raise PartitionNotFound(
                        f"topic {topic!r} has partitions 0..{partitions - 1},"
                        f" not {record.partition}"
                    )
                chosen.append(record.partition)
            elif record.key is not None:
                chosen.append(partition_for_key(record.key, partitions))
            else:
                chosen.append(spread % partitions)
                spread += 1
        return chosen

    def forget(self, topic: str) -> None:
        self._next_start.pop(topic, None)
