"""The v1 API as data: one :class:`Call` per endpoint, shared by the sync and async clients.

A ``Call`` says what to send (method, path, query, JSON body), how to turn the
decoded response body into the value the caller gets, and whether sending it
twice is harmless.  :class:`~minimq.client.Client` and
:class:`~minimq.client.AsyncClient` only differ in how they perform the I/O,
so every endpoint is described exactly once, here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeVar
from urllib.parse import quote

from minimq.client import strict_json
from minimq.client._models import (
    FetchResult,
    GroupFetchResult,
    GroupInfo,
    GroupMembership,
    GroupSummary,
    RecordMetadata,
    TopicInfo,
    _require,
)
from minimq.client._raw_fetch import RawFetchPage
from minimq.errors import InvalidRequest

T = TypeVar("T")

OffsetSpec = int | Literal["earliest", "latest"]
ResetTarget = Literal["earliest", "latest", "offset", "timestamp"]
QueryValue = str | int

_RECORD_FIELDS = frozenset({"value", "key", "headers", "partition", "timestamp"})
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and the parser for its JSON answer (``None`` for an empty body).

    ``idempotent`` calls may be retried after the request may have reached the
    broker (a read timeout, a dropped connection); the others only when the
    connection was refused before anything was sent.  ``wait_ms`` is how long
    the broker may legitimately hold the request (long polling), added to the
    client's read timeout.  ``headers`` are sent with this request only (an
    ``Idempotency-Key``), the same on every retry.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, QueryValue] = field(default_factory=dict)
    body: Any = None
    idempotent: bool = False
    wait_ms: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bool = False  # parse gets the body bytes, not decoded JSON


def segment(name: str) -> str:
    """``name`` as one URL path segment: nothing in it can change the route."""
    return quote(name, safe="")


def _nothing(_payload: Any) -> None:
    return None


def _topic_list(payload: Any) -> list[TopicInfo]:
    return [TopicInfo.from_json(t) for t in _require(payload, "topics")["topics"]]


def _group_list(payload: Any) -> list[GroupSummary]:
    return [GroupSummary.from_json(g) for g in _require(payload, "groups")["groups"]]


def _metadata_parser(topic: str) -> Callable[[Any], list[RecordMetadata]]:
    def parse(payload: Any) -> list[RecordMetadata]:
        offsets = _require(payload, "offsets")["offsets"]
        return [RecordMetadata(topic, int(o["partition"]), int(o["offset"])) for o in offsets]

    return parse


def _health(payload: Any) -> dict[str, Any]:
    return dict(_require(payload, "status"))


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/healthz", _health, idempotent=True)


def list_topics() -> Call[list[TopicInfo]]:
    return Call("GET", "/v1/topics", _topic_list, idempotent=True)


def create_topic(
    name: str,
    *,
    partitions: int,
    retention_ms: int | None,
    retention_bytes: int | None,
    segment_bytes: int | None,
    fsync: str | None,
    message_timestamp_before_max_ms: int | None = None,
    message_timestamp_after_max_ms: int | None = None,
) -> Call[TopicInfo]:
    body = _drop_none(
        {
            "name": name,
            "partitions": partitions,
            "retention_ms": retention_ms,
            "retention_bytes": retention_bytes,
            "segment_bytes": segment_bytes,
            "fsync": fsync,
            "message_timestamp_before_max_ms": message_timestamp_before_max_ms,
            "message_timestamp_after_max_ms": message_timestamp_after_max_ms,
        }
    )
    return Call("POST", "/v1/topics", TopicInfo.from_json, body=body)


def describe_topic(name: str) -> Call[TopicInfo]:
    return Call("GET", f"/v1/topics/{segment(name)}", TopicInfo.from_json, idempotent=True)


class _Unchanged(enum.Enum):
    UNCHANGED = "unchanged"


UNCHANGED: Final = _Unchanged.UNCHANGED
Setting = int | None | _Unchanged


def update_topic(name: str, *, retention_ms: Setting, retention_bytes: Setting) -> Call[TopicInfo]:
    """Change the settings given (None: unlimited); those left ``UNCHANGED`` keep their value."""
    body = {
        setting: value
        for setting, value in (("retention_ms", retention_ms), ("retention_bytes", retention_bytes))
        if value is not UNCHANGED
    }
    if not body:
        raise InvalidRequest("update_topic needs retention_ms or retention_bytes")
    # Setting the same values twice leaves the same topic: safe to retry.
    path = f"/v1/topics/{segment(name)}"
    return Call("PATCH", path, TopicInfo.from_json, body=body, idempotent=True)


def delete_topic(name: str) -> Call[None]:
    return Call("DELETE", f"/v1/topics/{segment(name)}", _nothing)


def record_body(record: Mapping[str, Any]) -> dict[str, Any]:
    """One produce entry from a mapping of ``value`` and the optional fields."""
    if "value" not in record:
        raise InvalidRequest("every record needs a 'value'")
    unknown = set(record) - _RECORD_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown record fields: {sorted(unknown)}")
    return record_entry(**record)


def record_entry(
    value: Any,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    partition: int | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """One produce entry; the optional fields are omitted when ``None`` (a null value is kept).

    Every way to produce (``Client``, ``AsyncClient``, ``Producer``) builds its
    records here, so this is where a record that is not strict JSON is refused
    (:class:`InvalidRequest`), before anything is sent or buffered.

    Called once per record by :class:`~minimq.client.Producer`, hence the plain ``if`` chain.
    """
    entry: dict[str, Any] = {"value": value}
    if key is not None:
        entry["key"] = key
    if headers is not None:
        entry["headers"] = dict(headers)
    if partition is not None:
        entry["partition"] = partition
    if timestamp is not None:
        entry["timestamp"] = timestamp
    strict_json.check_record(entry)
    return entry


def produce_batch(
    topic: str, records: Sequence[Mapping[str, Any]], idempotency_key: str | None = None
) -> Call[list[RecordMetadata]]:
    """A produce; with ``idempotency_key`` the broker stores it once however often it is sent,
    so the client may retry it whenever the outcome is unknown."""
    body = {"records": [record_body(r) for r in records]}
    path = f"/v1/topics/{segment(topic)}/records"
    if idempotency_key is None:
        return Call("POST", path, _metadata_parser(topic), body=body)
    headers = {IDEMPOTENCY_KEY_HEADER: idempotency_key}
    return Call("POST", path, _metadata_parser(topic), body=body, idempotent=True, headers=headers)


def fetch(
    topic: str,
    partition: int,
    *,
    offset: OffsetSpec,
    timestamp: int | None,
    limit: int,
    max_bytes: int | None,
    wait_ms: int,
) -> Call[FetchResult]:
    params: dict[str, QueryValue] = {"limit": limit, "wait_ms": wait_ms}
    if timestamp is not None:
        params["timestamp"] = timestamp
    else:
        params["offset"] = offset
    if max_bytes is not None:
        params["max_bytes"] = max_bytes
    path = f"/v1/topics/{segment(topic)}/partitions/{partition}/records"
    return Call("GET", path, FetchResult.from_json, params, idempotent=True, wait_ms=wait_ms)


def fetch_raw(
    topic: str, partition: int, *, offset: int, limit: int, max_bytes: int | None
) -> Call[RawFetchPage]:
    params: dict[str, QueryValue] = {"limit": limit, "offset": offset}
    if max_bytes is not None:
        params["max_bytes"] = max_bytes
    path = f"/v1/topics/{segment(topic)}/partitions/{partition}/records"

    def parse(body: bytes) -> RawFetchPage:
        return RawFetchPage.from_body(topic, partition, body)

    return Call("GET", path, parse, params, idempotent=True, raw_body=True)


def group_fetch(
    group: str,
    topic: str,
    *,
    member_id: str | None,
    generation: int | None = None,
    limit: int,
    wait_ms: int,
    commit: bool,
    auto_offset_reset: str,
) -> Call[GroupFetchResult]:
    params: dict[str, QueryValue] = {
        "limit": limit,
        "wait_ms": wait_ms,
        "commit": "true" if commit else "false",
        "auto_offset_reset": auto_offset_reset,
    }
    if member_id is not None:
        params["member_id"] = member_id
    if generation is not None:
        params["generation"] = generation
    path = f"/v1/groups/{segment(group)}/topics/{segment(topic)}/records"
    # Not idempotent: every group fetch advances the member's positions.
    return Call("GET", path, GroupFetchResult.from_json, params, wait_ms=wait_ms)


def commit(
    group: str,
    offsets: Sequence[tuple[str, int, int]],
    *,
    member_id: str | None,
    generation: int | None = None,
) -> Call[None]:
    body = _drop_none(
        {
            "offsets": [{"topic": t, "partition": p, "offset": o} for t, p, o in offsets],
            "member_id": member_id,
            "generation": generation,
        }
    )
    # Committing the same offsets twice leaves the same state: safe to retry.
    path = f"/v1/groups/{segment(group)}/commit"
    return Call("POST", path, _nothing, body=body, idempotent=True)


def join_group(
    group: str, topic: str, member_id: str | None, assignor: str | None = None
) -> Call[GroupMembership]:
    body = _drop_none({"topic": topic, "member_id": member_id, "assignor": assignor})
    path = f"/v1/groups/{segment(group)}/join"
    # Joining again as the same member changes nothing; without an id it makes a new one.
    return Call(
        "POST", path, GroupMembership.from_json, body=body, idempotent=member_id is not None
    )


def heartbeat(
    group: str, topic: str, member_id: str, generation: int | None = None
) -> Call[GroupMembership]:
    body = _drop_none({"topic": topic, "member_id": member_id, "generation": generation})
    path = f"/v1/groups/{segment(group)}/heartbeat"
    return Call("POST", path, GroupMembership.from_json, body=body, idempotent=True)


def leave_group(group: str, topic: str, member_id: str) -> Call[None]:
    body = {"topic": topic, "member_id": member_id}
    return Call("POST", f"/v1/groups/{segment(group)}/leave", _nothing, body=body, idempotent=True)


def list_groups() -> Call[list[GroupSummary]]:
    return Call("GET", "/v1/groups", _group_list, idempotent=True)


def describe_group(group: str) -> Call[GroupInfo]:
    return Call("GET", f"/v1/groups/{segment(group)}", GroupInfo.from_json, idempotent=True)


def reset_group(
    group: str,
    topic: str,
    *,
    to: ResetTarget,
    offset: int | None,
    timestamp: int | None,
    partition: int | None,
) -> Call[GroupInfo]:
    body = _drop_none(
        {
            "topic": topic,
            "to": to,
            "offset": offset,
            "timestamp": timestamp,
            "partition": partition,
        }
    )
    path = f"/v1/groups/{segment(group)}/reset"
    return Call("POST", path, GroupInfo.from_json, body=body, idempotent=True)


def delete_group(group: str) -> Call[None]:
    return Call("DELETE", f"/v1/groups/{segment(group)}", _nothing)


def stream_request(
    topic: str, *, start: OffsetSpec, partition: int | None
) -> tuple[str, dict[str, QueryValue]]:
    """Path and query of the server-sent-events stream of ``topic``."""
    params: dict[str, QueryValue] = {"from": start}
    if partition is not None:
        params["partition"] = partition
    return f"/v1/topics/{segment(topic)}/stream", params


def stream_call(topic: str) -> Call[None]:
    """The stream as a call, for the failover rules: a read, safe to open again anywhere."""
    return Call("GET", f"/v1/topics/{segment(topic)}/stream", _nothing, idempotent=True)
