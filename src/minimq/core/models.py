"""Plain data passed between the broker core and its transports.

Everything here is transport-agnostic: keys and header values are bytes and a
record value is opaque bytes (the HTTP transport stores JSON text there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from minimq.storage.api import Header, Record, TopicConfig

ResetPolicy = Literal["earliest", "latest"]


class ProduceRecord(NamedTuple):
    """One record to produce; ``partition=None`` lets the partitioner choose."""

    value: bytes
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    partition: int | None = None
    timestamp: int | None = None


class RecordPosition(NamedTuple):
    """Where one produced record was stored."""

    partition: int
    offset: int


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
class GroupFetchResult:
    group: str
    topic: str
    member_id: str
    assignment: list[int]
    records: list[PartitionRecord]
    positions: dict[int, int]


@dataclass(frozen=True, slots=True)
class MemberInfo:
    member_id: str
    topic: str
    partitions: list[int]
    last_seen_ms: int


@dataclass(frozen=True, slots=True)
class GroupOffset:
    topic: str
    partition: int
    committed_offset: int
    end_offset: int

    @property
    def lag(self) -> int:
        return max(0, self.end_offset - self.committed_offset)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group: str
    members: list[MemberInfo] = field(default_factory=list)
    offsets: list[GroupOffset] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group: str
    topics: list[str]
    members: int


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
