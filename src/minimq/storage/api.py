"""The narrow interface between the broker core and whatever stores the log.

``minimq.core`` depends only on these types and protocols; the on-disk engine
in this package implements them, and tests may swap in an in-memory fake.

Offsets follow Kafka: the *start offset* is the first offset still stored, the
*end offset* (high watermark) is the offset the next appended record gets.
Timestamps are milliseconds since the Unix epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from minimq.errors import InvalidConfig

if TYPE_CHECKING:
    from minimq.storage.batch import BatchHeader

Header = tuple[str, bytes]


class ClientBytes(bytes):
    """Bytes as a client sent them over Kafka, never checked by MiniMQ.

    A record value read back from a batch a Kafka client produced (stored
    verbatim by :meth:`PartitionLog.append_batches`) is of this type; a value
    from a batch MiniMQ encoded itself (:meth:`PartitionLog.append`, which
    the HTTP API uses) is plain ``bytes``.  The batch's origin is kept on disk
    (:mod:`minimq.storage.batch`), so the type tells a reader, for the cost of
    a type test, whether a transport checked the value before it was stored:
    the HTTP API serves values of its own batches as they are and checks only
    these (``minimq.server.value_rule``).  Keys and header values are plain
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


FsyncMode = Literal["always", "interval", "never"]


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """When an appended batch counts as durable.

    ``always``: acknowledged only after write + fsync (group-committed).
    ``interval``: acknowledged after write; fsync at most ``interval_ms`` later.
    ``never``: acknowledged after write; the OS decides when to flush.
    """

    mode: FsyncMode = "always"
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        text = text.strip()
        if text in ("always", "never"):
            return cls(mode=text)  # type: ignore[arg-type]
        if text.startswith("interval:"):
            raw = text.removeprefix("interval:")
            if raw.isdigit() and 0 < int(raw) <= 3_600_000:
                return cls(mode="interval", interval_ms=int(raw))
        raise InvalidConfig(f"fsync policy must be always, never or interval:<ms>, not {text!r}")

    def __str__(self) -> str:
        return f"interval:{self.interval_ms}" if self.mode == "interval" else self.mode


DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
# The largest timestamp bound, meaning "no bound": Kafka's Long.MAX_VALUE.
UNBOUNDED_MS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """Per-topic settings, persisted atomically with the topic.

    ``message_timestamp_before_max_ms`` / ``_after_max_ms`` (Kafka's
    ``message.timestamp.before.max.ms`` / ``after.max.ms``): how far before
    or after broker time a producer timestamp may lie, 0 to
    :data:`UNBOUNDED_MS`; ``None`` takes the broker-wide default.  The broker
    core enforces them at produce (``minimq.core.timestamps``); the log itself
    stores whatever timestamp it is given.

    ``topic_id`` is not a setting but the identity of one *incarnation* of the
    topic (a UUID, as Kafka has since 2.8), kept in the same metadata file: the
    log store gives every topic it creates a new one, so a topic deleted and
    created again under the same name is another topic, and committed offsets
    are keyed by it (:class:`OffsetStore`).  ``None`` only in a config that is
    being asked for (``create_topic``); it is left out of comparisons.
    """

    partitions: int = 1
    retention_ms: int | None = None
    retention_bytes: int | None = None
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    segment_ms: int | None = None
    fsync: FsyncPolicy | None = None  # None: the broker-wide policy
    message_timestamp_before_max_ms: int | None = None
    message_timestamp_after_max_ms: int | None = None
    topic_id: str | None = field(default=None, compare=False)


class PartitionLog(Protocol):
    """One partition's append-only log.

    Appends are serialized by the log's writer; reads may run concurrently
    with appends and never see a batch that is not completely written.
    """

    @property
    def start_offset(self) -> int: ...

    @property
    def end_offset(self) -> int: ...

    @property
    def size_bytes(self) -> int: ...

    async def append(self, records: Sequence[NewRecord]) -> int:
        """Append one batch; return its base offset once the fsync policy is met.

        The batch is marked as MiniMQ's own, and its values read back as plain
        ``bytes`` that HTTP readers serve without checking them again: only
        values a transport has checked belong here (the HTTP API's are strict
        JSON).  Bytes from anywhere else go in by :meth:`append_batches`.
        """
        ...

    def read(self, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        """Records from ``offset`` (may be mid-batch), at most the given limits.

        Returns at least one record when ``offset < end_offset`` even if that
        record alone exceeds ``max_bytes``. Raises ``OffsetOutOfRange`` when
        ``offset`` is below the start or above the end offset.
        """
        ...

    def offset_for_timestamp(self, timestamp: int) -> int:
        """First offset whose timestamp is >= ``timestamp`` (end offset if none)."""
        ...

    async def append_batches(self, frames: Sequence[bytearray]) -> int:
        """Append checked RecordBatch v2 frames verbatim but for their base offsets.

        Each frame is marked as a client's batch (its ``partitionLeaderEpoch``,
        which the CRC does not cover), so its values read back as
        :class:`ClientBytes`.  Returns the first frame's base offset once the
        fsync policy is met.
        """
        ...

    def read_raw(self, offset: int, max_bytes: int) -> tuple[list[memoryview], int]:
        """Stored frames verbatim, from the one that *contains* ``offset``, and the next offset.

        Each item is one or more whole frames.  At most ``max_bytes`` in all,
        but at least the first frame whatever its size when ``offset <
        end_offset``; ``([], offset)`` at the end offset.  The next offset is
        the one after the last frame returned.  ``OffsetOutOfRange`` outside
        ``[start_offset, end_offset]``.
        """
        ...

    def recent_producer_batches(self, scan_bytes: int) -> Callable[[], list[BatchHeader]]:
        """Blocking work (for a worker thread) listing the headers of the frames
        with a producer id in about the last ``scan_bytes`` of the log, oldest first."""
        ...


class ProducerIdStore(Protocol):
    """Hands out producer ids that are never handed out again, across restarts."""

    async def allocate(self) -> int:
        """A new producer id (durably reserved before it is returned)."""
        ...


class LogStore(Protocol):
    """Every topic of one data directory."""

    def topic_names(self) -> list[str]: ...

    def topic_config(self, topic: str) -> TopicConfig:
        """The topic's config, its ``topic_id`` set (``TopicNotFound`` if there is none)."""
        ...

    async def create_topic(self, topic: str, config: TopicConfig) -> None:
        """Create ``topic`` with ``config`` under a new ``topic_id`` (``config``'s is ignored)."""
        ...

    async def delete_topic(self, topic: str) -> None: ...

    async def update_retention(
        self, topic: str, retention_ms: int | None, retention_bytes: int | None
    ) -> TopicConfig:
        """Set the topic's retention (None: unlimited), persisted; return the new config.

        Invalid settings raise ``InvalidConfig``; the next retention pass applies them.
        """
        ...

    def partition(self, topic: str, partition: int) -> PartitionLog: ...

    async def apply_retention(self) -> int:
        """Delete whole segments past each topic's retention; return how many."""
        ...

    async def close(self) -> None: ...


class OffsetStore(Protocol):
    """Committed consumer-group offsets, each for one topic incarnation (its ``topic_id``).

    A commit that returned survives kill -9.  A commit that was refused never
    takes effect, not even after a crash.  After a write whose outcome it
    cannot know (a failed fsync), the store refuses every later write with
    ``OffsetsFailed`` until it is reopened.  Offsets of a topic incarnation
    that no longer exists are never returned: a topic deleted and created
    again starts with no commits, even if the deletion was cut short by a
    crash (the open removes what it left).
    """

    async def commit(
        self,
        group: str,
        offsets: Iterable[tuple[str, int, int]],
        topic_ids: Mapping[str, str] | None = None,
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        """Durably store ``(topic, partition, offset)`` triples for ``group``.

        ``topic_ids`` names the incarnation of each topic the offsets were
        checked against (default: the current one).  A topic that no longer
        exists, or exists as another incarnation, raises ``TopicNotFound`` and
        nothing is stored.  ``metadata`` is a string per ``(topic, partition)``
        kept with its offset (Kafka's commit metadata); a partition committed
        without one has none.
        """
        ...

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        """``(topic, partition) -> offset`` of the group's commits on existing topics."""
        ...

    def metadata(self, group: str) -> dict[tuple[str, int], str]:
        """The non-empty commit metadata of :meth:`committed`'s partitions."""
        ...

    def group_names(self) -> list[str]: ...

    async def delete_group(self, group: str) -> None: ...

    async def delete_topic(self, topic: str) -> None:
        """Forget every group's offsets for a deleted topic.

        Never raises: a deleted incarnation's offsets are already invisible,
        and whatever is left on disk is removed at the next open.
        """
        ...

    async def close(self) -> None: ...


class Storage(Protocol):
    """An opened data directory: the topic logs and the group offsets.

    Opening takes the data directory's exclusive lock and runs recovery;
    ``close`` flushes, fsyncs and releases the lock.
    """

    @property
    def logs(self) -> LogStore: ...

    @property
    def offsets(self) -> OffsetStore: ...

    @property
    def producer_ids(self) -> ProducerIdStore: ...

    async def close(self) -> None: ...
