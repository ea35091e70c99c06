"""Plain data passed between the broker core and its transports.

Everything here is transport-agnostic: keys and header values are bytes and a
record value is opaque bytes (the HTTP transport stores JSON text there).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, overload

from minimq.core.records import Header, Record
from minimq.core.topic_config import TopicConfig

ResetPolicy = Literal["earliest", "latest"]


class ProduceRecord(NamedTuple):
    """One record to produce; ``partition=None`` lets the partitioner choose.

    ``value`` must be strict JSON text (the HTTP API's produce rule): it is
    stored in a batch of MiniMQ's own, whose values HTTP readers serve as they
    are, unchecked.  Bytes from a Kafka client go in by ``Broker.produce_raw``.
    """

    value: bytes
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    partition: int | None = None
    timestamp: int | None = None


class RecordPosition(NamedTuple):
    """Where one produced record was stored."""

    partition: int
    offset: int


class RecordPositions(Sequence[RecordPosition]):
    """Where each produced record was stored, in request order.

    Most produce calls land in one partition at consecutive offsets; that case
    is kept as one :attr:`run` instead of a tuple per record (building and then
    serializing a thousand tuples was a tenth of a 1,000-record batch's cost).
    Immutable once built.
    """

    __slots__ = ("_items", "run")

    def __init__(self, items: Sequence[RecordPosition]) -> None:
        self._items: Sequence[RecordPosition] = items
        # (partition, first offset, count) when every record is in one consecutive run.
        self.run: tuple[int, int, int] | None = None

    @classmethod
    def consecutive(cls, partition: int, base_offset: int, count: int) -> RecordPositions:
        """``count`` records of ``partition`` at offsets from ``base_offset``."""
        positions = cls(())
        positions.run = (partition, base_offset, count)
        return positions

    def __len__(self) -> int:
        return self.run[2] if self.run is not None else len(self._items)

    @overload
    def __getitem__(self, index: int) -> RecordPosition: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RecordPosition]: ...

    def __getitem__(self, index: int | slice) -> RecordPosition | Sequence[RecordPosition]:
        if self.run is None:
            return self._items[index]
        partition, base, count = self.run
        offsets = range(base, base + count)[index]
        if isinstance(offsets, int):
            return RecordPosition(partition, offsets)
        return [RecordPosition(partition, offset) for offset in offsets]

    def __iter__(self) -> Iterator[RecordPosition]:
        if self.run is None:
            return iter(self._items)
        partition, base, count = self.run
        return (RecordPosition(partition, offset) for offset in range(base, base + count))

    def __repr__(self) -> str:
        return f"RecordPositions({list(self)!r})"


class PartitionRecord(NamedTuple):
    """A stored record together with the partition it was read from."""

    partition: int
    record: Record


@dataclass(frozen=True, slots=True)
class StartPosition:
    """Where a fetch starts: ``earliest``, ``latest``, an offset or a timestamp."""

    kind: Literal["earliest", "latest", "offset", "timestamp"] = "earliest"
    value: int = 0

    @classmethod
    def earliest(cls) -> StartPosition:
        return cls("earliest")

    @classmethod
    def latest(cls) -> StartPosition:
        return cls("latest")

    @classmethod
    def at_offset(cls, offset: int) -> StartPosition:
        return cls("offset", offset)

    @classmethod
    def at_timestamp(cls, timestamp: int) -> StartPosition:
        return cls("timestamp", timestamp)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds of one fetch: record count, total bytes, and the long-poll wait."""

    max_records: int = 100
    max_bytes: int = 1024 * 1024
    wait_ms: int = 0


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    start_offset: int
    end_offset: int
    bytes: int

    @property
    def messages(self) -> int:
        return self.end_offset - self.start_offset


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    config: TopicConfig
    partitions: tuple[PartitionInfo, ...]

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.partitions)


@dataclass(frozen=True, slots=True)
class FetchResult:
    topic: str
    partition: int
    records: list[Record]
    next_offset: int
    high_watermark: int
    start_offset: int


@dataclass(frozen=True, slots=True)
class RawProduceResult:
    """A Kafka produce of one partition: where its first batch went.

    ``duplicate``: the batches were an idempotent producer's retry of batches
    already stored (``base_offset`` is theirs); nothing was stored again.
    ``log_append_time`` is -1: timestamps are the producer's (CreateTime).
    """

    base_offset: int
    log_start_offset: int
    log_append_time: int = -1
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class RawFetchResult:
    """Stored RecordBatch frames of one partition, verbatim, for a Kafka fetch.

    Each item of ``batches`` is one or more whole frames; sent one after the
    other they are the partition's ``records``.  The first frame is the one
    holding the fetch offset (a consumer skips the records before it).
    """

    batches: list[bytes | memoryview]
    high_watermark: int
    log_start_offset: int


class TimestampOffset(NamedTuple):
    """The first record at or after a timestamp: its offset and its own timestamp."""

    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class GroupMembership:
    """A member's place in its group: its id, the generation, and what it owns of a topic."""

    member_id: str
    generation: int
    assignment: list[int]


@dataclass(frozen=True, slots=True)
class GroupFetchResult:
    """Records handed out by a group fetch.

    ``member_id`` and ``generation`` are None for a read without membership
    (allowed only while the group has no live members).
    """

    group: str
    topic: str
    member_id: str | None
    generation: int | None
    assignment: list[int]
    records: list[PartitionRecord]
    positions: dict[int, int]


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member's partitions of one topic; ``client_*`` only for Kafka members."""

    member_id: str
    topic: str
    partitions: list[int]
    last_seen_ms: int
    client_id: str | None = None
    client_host: str | None = None


@dataclass(frozen=True, slots=True)
class GroupOffset:
    """A group's place on one partition; ``committed_offset`` None when nothing is committed.

    Lag counts the records still to read: from the committed offset, or from
    the log start when nothing is committed (or retention removed the
    committed position), to the end offset.
    """

    topic: str
    partition: int
    committed_offset: int | None
    end_offset: int
    start_offset: int = 0

    @property
    def lag(self) -> int:
        read_from = self.start_offset
        if self.committed_offset is not None:
            read_from = max(read_from, self.committed_offset)
        return max(0, self.end_offset - read_from)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group: str
    members: list[MemberInfo] = field(default_factory=list)
    offsets: list[GroupOffset] = field(default_factory=list)
    state: str = "Empty"
    protocol_type: str | None = None
    generation: int = 0

    @property
    def total_lag(self) -> int:
        return sum(offset.lag for offset in self.offsets)


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group: str
    topics: list[str]
    members: int
    state: str = "Empty"
    total_lag: int = 0
    protocol_type: str | None = None


class CommitOffset(NamedTuple):
    """The next offset ``group`` will read from ``(topic, partition)``."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ConsumedMessage:
    """What the original ``/consume`` hands out: one record and where it was."""

    partition: int
    record: Record
