"""Producer ids from a replicated KV counter, incremented with compare-and-set.

The key ``last`` holds the last id handed out.  :meth:`KvProducerIds.allocate` reads it from
the leader and writes ``last + 1`` at the revision it read; only one of several gateways racing
can win a revision, so no id is handed out twice.  An increment whose answer was lost is
retried as a new increment: at worst an id is skipped, never reused.
"""

from __future__ import annotations

from minimq.errors import StorageError
from minimq.jetstream.buckets import LeaderBucket, RevisionConflict

_KEY = "last"
_MAX_CONFLICT_RETRIES = 1000


class KvProducerIds:
    """The ProducerIdStore of the JetStream backend."""

    def __init__(self, bucket: LeaderBucket) -> None:
        self._bucket = bucket

    async def allocate(self) -> int:
        for _ in range(_MAX_CONFLICT_RETRIES):
            entry = await self._bucket.get(_KEY)
            last = -1 if entry is None else int(entry.value)
            try:
                await self._bucket.put(
                    _KEY, str(last + 1).encode(), 0 if entry is None else entry.revision
                )
            except RevisionConflict:
                continue
            return last + 1
        raise StorageError("producer ids: too many concurrent allocations, try again")
