"""Records as the broker core sees them: what a produce appends and what a read returns.

The core owns these types; every storage backend (the disk engine, the
JetStream backend, the in-memory fake of the tests) speaks them at the seam
(:mod:`minimq.core.storage_seam`).  Timestamps are milliseconds since the
Unix epoch.
"""

from __future__ import annotations

from typing import NamedTuple

Header = tuple[str, bytes]


class ClientBytes(bytes):
    """Bytes as a client sent them over Kafka, never checked by MiniMQ.

    A record value read back from a batch a Kafka client produced (stored
    verbatim by :meth:`~minimq.core.storage_seam.PartitionLog.append_batches`)
    is of this type; a value from a batch MiniMQ encoded itself
    (:meth:`~minimq.core.storage_seam.PartitionLog.append`, which the HTTP API
    uses) is plain ``bytes``.  A backend keeps the batch's origin with the
    records (the disk engine in the batch header, :mod:`minimq.recordbatch.frames`),
    so the type tells a reader, for the cost of a type test, whether a
    transport checked the value before it was stored: the HTTP API serves
    values of its own batches as they are and checks only these
    (``minimq.server.value_rule``).  Keys and header values are plain
    ``bytes`` either way.
    """

    __slots__ = ()


class Record(NamedTuple):
    """One stored record, as read back from a partition.

    ``value`` is :class:`ClientBytes` when the record came from a Kafka client.
    """

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]


class NewRecord(NamedTuple):
    """One record to append; ``timestamp=None`` means broker time at append."""

    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    timestamp: int | None = None
