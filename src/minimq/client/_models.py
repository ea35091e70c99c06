"""The values the client returns: slotted dataclasses (frozen but for ``Record``) from JSON.

Each ``from_json`` takes one decoded JSON object in the shape ``docs/http-api.md``
documents and raises :class:`minimq.errors.MiniMQError` when the broker answered
something else, so a contract mismatch surfaces as one clear error instead of a
``KeyError`` deep inside a caller.
"""

from __future__ import annotations

from base64 import b64decode
from dataclasses import dataclass, field
from typing import Any

from minimq.errors import MiniMQError

JSONObject = dict[str, Any]


def _require(payload: Any, *fields: str) -> JSONObject:
    if not isinstance(payload, dict) or any(name not in payload for name in fields):
        raise MiniMQError(f"unexpected broker response (wanted fields {fields}): {payload!r:.200}")
    return payload


@dataclass(slots=True)
class Record:
    """One record as stored: ``value`` comes back exactly as it was produced.

    Bytes that are not JSON (a value from a Kafka producer: Avro, Protobuf,
    plain text) come as bytes, by the broker's value rule (``docs/http-api.md``,
    "Keys, values and headers"): ``value_bytes`` holds such a value and
    ``value`` is then None; ``key_bytes`` a key that is not UTF-8 (``key`` is
    then None); ``headers_bytes`` the headers whose values are not UTF-8
    (they are not in ``headers``). Each is None or empty otherwise, so
    ``record.value_bytes is not None`` tells such a record apart.

    Unlike the other result types this dataclass is not ``frozen``: a frozen
    dataclass sets every field through ``object.__setattr__``, which made
    building records slower than parsing their JSON.  Treat it as read-only.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: str | None
    value: Any
    headers: dict[str, str]
    value_bytes: bytes | None = None
    key_bytes: bytes | None = None
    headers_bytes: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_json(cls, payload: Any) -> Record:
        return records_from_json([payload])[0]


# Fields of a record whose bytes are all JSON or text: the broker then sends no *_b64 field.
_PLAIN_RECORD_FIELDS = 7


def records_from_json(payload: Any) -> list[Record]:
    """The records of a fetched page, built positionally in one pass.

    This is the consumer's hot path, so there is no per-field check: a record
    missing a field (or a page that is not a list of objects) surfaces as one
    ``KeyError``/``TypeError``, reported once as a broker contract mismatch.
    A record with any other number of fields than the usual seven (one with
    base64 fields, say) is built by :func:`_record_with_bytes`.
    """
    try:
        return [
            Record(
                r["topic"],
                r["partition"],
                r["offset"],
                r["timestamp"],
                r["key"],
                r["value"],
                r["headers"] or {},
            )
            if len(r) == _PLAIN_RECORD_FIELDS
            else _record_with_bytes(r)
            for r in payload
        ]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MiniMQError(
            f"unexpected record in broker response ({exc!r}): {payload!r:.200}"
        ) from exc


def _record_with_bytes(r: JSONObject) -> Record:
    """A record that may carry ``key_b64``, ``value_b64`` or ``headers_b64``.

    Raises ``ValueError`` for base64 that is not valid (``binascii.Error``).
    """
    key_b64 = r.get("key_b64")
    value_b64 = r.get("value_b64")
    return Record(
        r["topic"],
        r["partition"],
        r["offset"],
        r["timestamp"],
        r.get("key"),
        r["value"],
        r.get("headers") or {},
        None if value_b64 is None else b64decode(value_b64, validate=True),
        None if key_b64 is None else b64decode(key_b64, validate=True),
        {
            name: b64decode(text, validate=True)
            for name, text in (r.get("headers_b64") or {}).items()
        },
    )


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where a produced record was stored."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """Offsets and size of one partition; ``end_offset`` is the next offset to be written."""

    partition: int
    start_offset: int
    end_offset: int
    messages: int
    bytes: int

    @classmethod
    def from_json(cls, payload: Any) -> PartitionInfo:
        data = _require(payload, "partition", "start_offset", "end_offset")
        return cls(
            partition=int(data["partition"]),
            start_offset=int(data["start_offset"]),
            end_offset=int(data["end_offset"]),
            messages=int(data.get("messages", data["end_offset"] - data["start_offset"])),
            bytes=int(data.get("bytes", 0)),
        )


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic's configuration and per-partition offsets."""

    name: str
    partitions: int
    messages: int
    bytes: int
    partition_info: list[PartitionInfo]
    config: dict[str, Any]

    @classmethod
    def from_json(cls, payload: Any) -> TopicInfo:
        data = _require(payload, "name", "partitions")
        return cls(
            name=data["name"],
            partitions=int(data["partitions"]),
            messages=int(data.get("messages", 0)),
            bytes=int(data.get("bytes", 0)),
            partition_info=[PartitionInfo.from_json(p) for p in data.get("partition_info", [])],
            config=dict(data.get("config") or {}),
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A page of one partition; fetch again from ``next_offset`` for the next page."""

    topic: str
    partition: int
    records: list[Record]
    next_offset: int
    high_watermark: int
    start_offset: int

    @classmethod
    def from_json(cls, payload: Any) -> FetchResult:
        data = _require(payload, "topic", "partition", "records", "next_offset", "high_watermark")
        return cls(
            topic=data["topic"],
            partition=int(data["partition"]),
            records=records_from_json(data["records"]),
            next_offset=int(data["next_offset"]),
            high_watermark=int(data["high_watermark"]),
            start_offset=int(data.get("start_offset", 0)),
        )


@dataclass(frozen=True, slots=True)
class GroupFetchResult:
    """Records handed to one group member, with its generation, assignment and new positions.

    ``member_id`` and ``generation`` are None for a read without membership.
    """

    group: str
    topic: str
    member_id: str | None
    generation: int | None
    assignment: list[int]
    records: list[Record]
    positions: dict[int, int]

    @classmethod
    def from_json(cls, payload: Any) -> GroupFetchResult:
        data = _require(payload, "group", "topic", "member_id", "assignment", "records")
        generation = data.get("generation")
        return cls(
            group=data["group"],
            topic=data["topic"],
            member_id=data["member_id"],
            generation=None if generation is None else int(generation),
            assignment=[int(p) for p in data["assignment"]],
            records=records_from_json(data["records"]),
            positions={int(p["partition"]): int(p["offset"]) for p in data.get("positions") or []},
        )


@dataclass(frozen=True, slots=True)
class GroupMembership:
    """A member's place in its group: id, generation, and its partitions of the topic."""

    member_id: str
    generation: int
    assignment: list[int]

    @classmethod
    def from_json(cls, payload: Any) -> GroupMembership:
        data = _require(payload, "member_id", "generation", "assignment")
        return cls(
            member_id=data["member_id"],
            generation=int(data["generation"]),
            assignment=[int(p) for p in data["assignment"]],
        )


@dataclass(frozen=True, slots=True)
class GroupOffset:
    """A group's place on one partition: committed offset (None: nothing yet) and lag.

    Lag counts the records still to read, from the committed offset or, with
    nothing committed, from the log start.
    """

    topic: str
    partition: int
    committed_offset: int | None
    end_offset: int
    lag: int
    start_offset: int = 0

    @classmethod
    def from_json(cls, payload: Any) -> GroupOffset:
        data = _require(payload, "topic", "partition", "end_offset")
        committed = data.get("committed_offset")
        return cls(
            topic=data["topic"],
            partition=int(data["partition"]),
            committed_offset=None if committed is None else int(committed),
            end_offset=int(data["end_offset"]),
            lag=int(data.get("lag", 0)),
            start_offset=int(data.get("start_offset", 0)),
        )


@dataclass(frozen=True, slots=True)
class GroupMember:
    """A live member of a group and the partitions it owns."""

    member_id: str
    topic: str
    partitions: list[int]
    last_seen_ms: int

    @classmethod
    def from_json(cls, payload: Any) -> GroupMember:
        data = _require(payload, "member_id", "topic")
        return cls(
            member_id=data["member_id"],
            topic=data["topic"],
            partitions=[int(p) for p in data.get("partitions", [])],
            last_seen_ms=int(data.get("last_seen_ms", 0)),
        )


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A group's state, live members, and its place on every partition it reads."""

    group: str
    members: list[GroupMember]
    offsets: list[GroupOffset]
    state: str = "Empty"
    generation: int = 0
    protocol_type: str | None = None
    total_lag: int = 0

    @classmethod
    def from_json(cls, payload: Any) -> GroupInfo:
        data = _require(payload, "group")
        offsets = [GroupOffset.from_json(o) for o in data.get("offsets", [])]
        return cls(
            group=data["group"],
            members=[GroupMember.from_json(m) for m in data.get("members", [])],
            offsets=offsets,
            state=str(data.get("state", "Empty")),
            generation=int(data.get("generation", 0)),
            protocol_type=data.get("protocol_type"),
            total_lag=int(data.get("total_lag", sum(o.lag for o in offsets))),
        )


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """One line of the group list."""

    group: str
    topics: list[str]
    members: int
    state: str = "Empty"
    total_lag: int = 0

    @classmethod
    def from_json(cls, payload: Any) -> GroupSummary:
        data = _require(payload, "group")
        return cls(
            group=data["group"],
            topics=list(data.get("topics", [])),
            members=int(data.get("members", 0)),
            state=str(data.get("state", "Empty")),
            total_lag=int(data.get("total_lag", 0)),
        )
