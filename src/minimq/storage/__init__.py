"""Durable on-disk storage: Kafka RecordBatch v2 segments, indexes, recovery, retention.

The broker core uses only :func:`open_storage`, :func:`validate_topic_name`
and the protocols and types of :mod:`minimq.storage.api`.  The byte layout is
described in :mod:`minimq.storage.batch`, :mod:`minimq.storage.index` and
:mod:`minimq.storage.segment`, and for users in ``docs/storage-format.md``.
"""

from minimq.storage.api import (
    FsyncPolicy,
    LogStore,
    NewRecord,
    OffsetStore,
    PartitionLog,
    Record,
    Storage,
    TopicConfig,
)
from minimq.storage.engine import open_storage
from minimq.storage.limits import StorageLimits
from minimq.storage.topics import validate_topic_name

__all__ = [
    "FsyncPolicy",
    "LogStore",
    "NewRecord",
    "OffsetStore",
    "PartitionLog",
    "Record",
    "Storage",
    "StorageLimits",
    "TopicConfig",
    "open_storage",
    "validate_topic_name",
]
