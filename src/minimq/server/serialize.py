"""Core results to JSON-ready values; record bytes by :mod:`minimq.server.value_rule`.

A record value produced over HTTP (the JSON text the producer sent,
re-encoded by orjson) is read back as plain ``bytes`` and goes back out
verbatim, unchecked; a Kafka client's value (``ClientBytes``) goes out
verbatim when it is strict JSON, else as base64 beside a null ``value``, by
the value rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from minimq.core import GroupInfo, MemberInfo, RecordPositions, TopicInfo
from minimq.core.records import Record
from minimq.core.topic_config import TopicConfig
from minimq.server.value_rule import headers_text, key_text, value_texts

_EMPTY_ARRAY = orjson.Fragment(b"[]")
_POSITION = b'{"partition":%d,"offset":%d}'
# Formatted once per run with the partition; "%%d" stays a placeholder for the offsets.
_RUN_POSITION = b',{"partition":%d,"offset":%%d}'
_FETCH_HEAD = b'{"topic":%b,"partition":%d,"records":['
_FETCH_TAIL = b'],"next_offset":%d,"high_watermark":%d,"start_offset":%d}'
_FETCH_TAIL_MAX_BYTES = len(_FETCH_TAIL % (2**63 - 1, 2**63 - 1, 2**63 - 1))
_RECORD = b'{"topic":%b,"partition":%d,"offset":%d,"timestamp":%d,"key":%b,"value":%b,"headers":%b}'


def record_texts(topic: str, items: Iterable[tuple[int, Record]]) -> list[bytes]:
    """``(partition, record)`` pairs as the JSON text of API Record objects.

    The fetch hot path. One bytes ``%`` per record instead of a dict that
    orjson then walks: measured 45% less time for 10,000 records, with
    byte-identical output. The values are checked as one page
    (:func:`~minimq.server.value_rule.value_texts`): a page of MiniMQ's own
    values costs one type scan, not a parse per value.
    """
    pairs = items if isinstance(items, list) else list(items)
    values = value_texts([record[3] for _, record in pairs])  # Record.value
    topic_json = orjson.dumps(topic)
    return [
        _RECORD
        % (
            topic_json,
            partition,
            offset,
            timestamp,
            b"null" if key is None else key_text(key),
            value,
            headers_text(headers) if headers else b"{}",
        )
        for (partition, (offset, timestamp, key, _, headers)), value in zip(
            pairs, values, strict=True
        )
    ]


def fetch_envelope_bytes(topic: str, partition: int) -> int:
    """The most bytes :func:`fetch_body` adds around its record texts (offsets at 19 digits)."""
    return len(_FETCH_HEAD % (orjson.dumps(topic), partition)) + _FETCH_TAIL_MAX_BYTES


def fetch_body(
    topic: str,
    partition: int,
    texts: list[bytes],
    *,
    next_offset: int,
    high_watermark: int,
    start_offset: int,
) -> bytes:
    """A fetch answer around ``texts`` (:func:`record_texts`), as ``orjson.dumps`` of its dict.

    The envelope goes onto the end records, so the body is copied by one join
    only (``texts`` is changed). Byte for byte what ``orjson.dumps`` gives for
    ``{"topic", "partition", "records", "next_offset", "high_watermark",
    "start_offset"}``.
    """
    head = _FETCH_HEAD % (orjson.dumps(topic), partition)
    tail = _FETCH_TAIL % (next_offset, high_watermark, start_offset)
    if not texts:
        return head + tail
    texts[0] = head + texts[0]
    texts[-1] += tail
    return b",".join(texts)


def records(topic: str, items: Iterable[tuple[int, Record]]) -> orjson.Fragment:
    """``(partition, record)`` pairs as a JSON array of API Record objects."""
    texts = record_texts(topic, items)
    if not texts:
        return _EMPTY_ARRAY
    # Brackets onto the end records, so the megabytes are copied by one join only.
    texts[0] = b"[" + texts[0]
    texts[-1] += b"]"
    return orjson.Fragment(b",".join(texts))


def topic_config(config: TopicConfig) -> dict[str, Any]:
    return {
        "partitions": config.partitions,
        "retention_ms": config.retention_ms,
        "retention_bytes": config.retention_bytes,
        "segment_bytes": config.segment_bytes,
        "fsync": str(config.fsync) if config.fsync is not None else None,
        # null, like fsync's: the broker-wide default applies.
        "message_timestamp_before_max_ms": config.message_timestamp_before_max_ms,
        "message_timestamp_after_max_ms": config.message_timestamp_after_max_ms,
    }


def topic_info(info: TopicInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "partitions": len(info.partitions),
        "config": topic_config(info.config),
        "messages": info.messages,
        "bytes": info.bytes,
        "partition_info": [
            {
                "partition": p.partition,
                "start_offset": p.start_offset,
                "end_offset": p.end_offset,
                "messages": p.messages,
                "bytes": p.bytes,
            }
            for p in info.partitions
        ],
    }


def positions(items: RecordPositions) -> orjson.Fragment:
    """A JSON array of ``{"partition", "offset"}`` objects, one per produced record."""
    if items.run is None:
        return orjson.Fragment(b"[" + b",".join(map(_POSITION.__mod__, items)) + b"]")
    # One run: a single bytes ``%`` over the whole batch, no object per record
    # (a fifth of the time of a dict per record that orjson then walks).
    partition, base, count = items.run
    texts = (_RUN_POSITION % partition) * count % tuple(range(base, base + count))
    return orjson.Fragment(b"[" + texts[1:] + b"]")


def _member(member: MemberInfo) -> dict[str, Any]:
    found: dict[str, Any] = {
        "member_id": member.member_id,
        "topic": member.topic,
        "partitions": member.partitions,
        "last_seen_ms": member.last_seen_ms,
    }
    if member.client_id is not None:  # a Kafka member
        found["client_id"] = member.client_id
        found["client_host"] = member.client_host or ""
    return found


def group_info(info: GroupInfo) -> dict[str, Any]:
    return {
        "group": info.group,
        "state": info.state,
        "protocol_type": info.protocol_type,
        "generation": info.generation,
        "total_lag": info.total_lag,
        "members": [_member(m) for m in info.members],
        "offsets": [
            {
                "topic": o.topic,
                "partition": o.partition,
                "committed_offset": o.committed_offset,
                "start_offset": o.start_offset,
                "end_offset": o.end_offset,
                "lag": o.lag,
            }
            for o in info.offsets
        ],
    }
